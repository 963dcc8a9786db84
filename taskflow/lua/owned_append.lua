-- Append an event for a dispatch entry only while this consumer still owns the entry
-- (ARCHITECTURE invariant 2). A worker whose entry was taken over (a zombie) writes nothing.
-- KEYS[1] dispatch stream   KEYS[2] events stream   KEYS[3] starts hash (entry id -> runs begun)
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] entry id  ARGV[4] event type  ARGV[5] payload
-- ARGV[6] "start": the run begins (count it) | "finish": the outcome (XACK + XDEL + forget)
--         | "note": anything else
-- Returns the new event id, or false when the entry is not ours (anymore).
local owner = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #owner == 0 or owner[1][2] ~= ARGV[2] then
  return false
end
local event_id = redis.call('XADD', KEYS[2], '*', 'type', ARGV[4], 'data', ARGV[5])
if ARGV[6] == 'start' then
  -- Runs begun, not deliveries, decide poison: an entry claimed by a worker that died
  -- before starting it did nothing wrong.
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
elseif ARGV[6] == 'finish' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  -- Only the workers group reads dispatch streams, so an acknowledged entry is garbage.
  redis.call('XDEL', KEYS[1], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
end
return event_id
