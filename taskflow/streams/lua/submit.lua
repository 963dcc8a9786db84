-- Append TaskSubmitted and put the task in line, in one atomic step (ARCHITECTURE
-- invariants 2, 3): on its dispatch stream now, or held in the schedule until its time.
-- KEYS[1] events stream  KEYS[2] dispatch stream  KEYS[3] task marker hash
-- KEYS[4] held-due zset  KEYS[5] held hash (task id -> dispatch fields as JSON)
-- ARGV[1] event type  ARGV[2] event payload  ARGV[3] task id  ARGV[4] request fingerprint
-- KEYS[6] waiting zset (tasks held until their parents complete)
-- ARGV[5] marker ttl seconds  ARGV[6] "dispatch" | "schedule" | "wait"  ARGV[7] due time (ms)
-- ARGV[8] priority
-- The marker remembers the submit (idempotency) and the task's state while it is live:
-- scheduled | waiting | pending | running | succeeded | failed | timed_out | cancelled.
-- Returns {created (1|0), event id, fingerprint of the first submit}.
local first = redis.call('HMGET', KEYS[3], 'event_id', 'fingerprint')
if first[1] then
  return {0, first[1], first[2]}
end
local event_id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[1], 'data', ARGV[2])
local state = 'pending'
if ARGV[6] == 'dispatch' then
  redis.call('XADD', KEYS[2], '*', 'task_id', ARGV[3], 'event_id', event_id, 'event', ARGV[2], 'retry_count', '0')
else
  local held = cjson.encode({task_id = ARGV[3], event_id = event_id, event = ARGV[2], retry_count = 0, priority = ARGV[8]})
  redis.call('HSET', KEYS[5], ARGV[3], held)
  if ARGV[6] == 'wait' then
    redis.call('ZADD', KEYS[6], ARGV[7], ARGV[3])
    state = 'waiting'
  else
    redis.call('ZADD', KEYS[4], ARGV[7], ARGV[3])
    state = 'scheduled'
  end
end
redis.call('HSET', KEYS[3], 'event_id', event_id, 'fingerprint', ARGV[4], 'state', state)
redis.call('EXPIRE', KEYS[3], ARGV[5])
return {1, event_id, ARGV[4]}
