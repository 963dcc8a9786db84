-- Put a finished task (failed, timed out, cancelled) back in line, once, atomically.
-- KEYS[1] task marker hash  KEYS[2] dispatch stream  KEYS[3] events stream
-- ARGV[1] task id  ARGV[2] TaskSubmitted event id  ARGV[3] TaskSubmitted payload
-- ARGV[4] TaskQueued payload  ARGV[5] marker ttl (s)  ARGV[6] state the projection shows
-- ARGV[7] the TaskQueued type (taskflow.events)
-- ARGV[8] an OperatorActed payload (appended after the TaskQueued)  ARGV[9] its type
-- Returns {"requeued", event id} or {"conflict", state}.
local state = redis.call('HGET', KEYS[1], 'state') or ARGV[6]
if state ~= 'failed' and state ~= 'timed_out' and state ~= 'cancelled' then
  return {'conflict', state}
end
redis.call('XADD', KEYS[2], '*', 'task_id', ARGV[1], 'event_id', ARGV[2], 'event', ARGV[3], 'retry_count', '0')
redis.call('HSET', KEYS[1], 'state', 'pending', 'event_id', ARGV[2])
redis.call('HDEL', KEYS[1], 'cancel', 'outcome', 'progress')
redis.call('EXPIRE', KEYS[1], ARGV[5])
local queued = redis.call('XADD', KEYS[3], '*', 'type', ARGV[7], 'data', ARGV[4])
redis.call('XADD', KEYS[3], '*', 'type', ARGV[9], 'data', ARGV[8])
return {'requeued', queued}
