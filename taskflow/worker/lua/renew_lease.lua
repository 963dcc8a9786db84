-- Reset the idle time of the entries this consumer still owns, so XAUTOCLAIM with
-- min-idle = lease never takes them from a live worker (ARCHITECTURE invariant 5).
-- KEYS[1] dispatch stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3..] entry ids
-- Returns the ids that were renewed; an id missing from the answer was lost.
local owned = {}
for i = 3, #ARGV do
  local owner = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #owner == 1 and owner[1][2] == ARGV[2] then
    owned[#owned + 1] = ARGV[i]
  end
end
if #owned > 0 then
  -- JUSTID: renewing is not a delivery, so the delivery count stays as it is.
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(owned) do
    args[#args + 1] = id
  end
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return owned
