-- Append TaskSubmitted and its dispatch entry in one atomic step (ARCHITECTURE invariants 2, 3).
-- KEYS[1] events stream   KEYS[2] dispatch stream   KEYS[3] task marker hash
-- ARGV[1] event type  ARGV[2] event payload  ARGV[3] task id  ARGV[4] request fingerprint
-- ARGV[5] marker ttl seconds  ARGV[6] "1" to dispatch now, "0" to only record the event
-- Returns {created (1|0), event id, fingerprint of the first submit}.
local first = redis.call('HMGET', KEYS[3], 'event_id', 'fingerprint')
if first[1] then
  return {0, first[1], first[2]}
end
local event_id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[1], 'data', ARGV[2])
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[2], '*', 'task_id', ARGV[3], 'event_id', event_id, 'event', ARGV[2])
end
redis.call('HSET', KEYS[3], 'event_id', event_id, 'fingerprint', ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return {1, event_id, ARGV[4]}
