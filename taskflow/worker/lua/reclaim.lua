-- Take over entries whose owner stopped renewing its lease (ARCHITECTURE invariant 5).
-- XPENDING runs first, in the same atomic step, only to learn each entry's previous owner
-- for the TaskReclaimed event; XAUTOCLAIM then claims exactly those entries.
-- KEYS[1] dispatch stream   KEYS[2] starts hash (entry id -> runs begun)
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] min idle ms (the lease)  ARGV[4] count
-- Returns {{id, previous owner, idle ms, delivery count now, runs begun, fields}, ...}.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
if #pending == 0 then
  return {}
end
local previous = {}
for _, p in ipairs(pending) do
  previous[p[1]] = p
end
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, entry in ipairs(claimed[2]) do
  local p = previous[entry[1]]
  if not p then
    -- Not in the XPENDING page (count cut it off): still ours now, so report it.
    local now = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)[1]
    p = {entry[1], '', 0, now[4] - 1}
  end
  local runs = tonumber(redis.call('HGET', KEYS[2], entry[1]) or '0')
  out[#out + 1] = {entry[1], p[2], p[3], p[4] + 1, runs, entry[2]}
end
return out
