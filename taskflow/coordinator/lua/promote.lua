-- Move one held task onto its dispatch stream, with its TaskQueued event, at most once:
-- ZREM decides who promotes it, and a stale leader writes nothing. Held means in the
-- schedule (its time came) or waiting on parents (they all completed).
-- KEYS[1] leader key  KEYS[2] held-due or waiting zset  KEYS[3] held hash  KEYS[4] dispatch stream
-- KEYS[5] events stream  KEYS[6] task marker hash
-- ARGV[1] leader value ("id|fence")  ARGV[2] task id  ARGV[3] TaskQueued payload
-- ARGV[4] its type (taskflow.events)
-- Returns the TaskQueued event id, or false (not leader, or already promoted).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
if redis.call('ZREM', KEYS[2], ARGV[2]) == 0 then
  return false
end
local held = redis.call('HGET', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
if not held then
  return false
end
local fields = cjson.decode(held)
redis.call('XADD', KEYS[4], '*', 'task_id', fields.task_id, 'event_id', fields.event_id,
  'event', fields.event, 'retry_count', tostring(fields.retry_count))
if redis.call('EXISTS', KEYS[6]) == 1 then  -- never revive an expired marker
  redis.call('HSET', KEYS[6], 'state', 'pending')
end
return redis.call('XADD', KEYS[5], '*', 'type', ARGV[4], 'data', ARGV[3])
