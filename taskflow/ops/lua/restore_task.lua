-- Put a task Redis lost back in line, once, atomically (taskflow reconcile --repair).
-- KEYS[1] task marker hash  KEYS[2] dispatch stream  KEYS[3] held-due zset
-- KEYS[4] held hash  KEYS[5] waiting zset  KEYS[6] events stream
-- ARGV[1] task id  ARGV[2] TaskSubmitted event id  ARGV[3] TaskSubmitted payload
-- ARGV[4] TaskQueued payload  ARGV[5] its type (taskflow.events)
-- ARGV[6] "dispatch" | "schedule" | "wait"  ARGV[7] due time (ms)  ARGV[8] priority
-- ARGV[9] marker ttl (s)
-- Returns {"restored", TaskQueued event id} or {"present", where}: the marker (written
-- below in the same step) or a held / waiting entry says it is in line already, so a
-- second run, or a second operator, never dispatches it twice. A dispatch entry without
-- a marker (a marker outlived by a long backlog) is found by the caller's scan instead.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'present', 'marker'}
end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 or redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  return {'present', 'held'}
end
-- In line as submit.lua puts a new submission (Lua scripts cannot share code).
if ARGV[6] == 'dispatch' then
  redis.call('XADD', KEYS[2], '*', 'task_id', ARGV[1], 'event_id', ARGV[2], 'event', ARGV[3], 'retry_count', '0')
else
  redis.call('HSET', KEYS[4], ARGV[1],
    cjson.encode({task_id = ARGV[1], event_id = ARGV[2], event = ARGV[3], retry_count = 0, priority = ARGV[8]}))
  if ARGV[6] == 'wait' then redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
  else redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1]) end
end
local state = ({dispatch = 'pending', schedule = 'scheduled', wait = 'waiting'})[ARGV[6]]
-- No fingerprint: the archive does not hold the first request's, so a client retrying
-- that submission with its Idempotency-Key is refused as it was while the marker was gone.
redis.call('HSET', KEYS[1], 'event_id', ARGV[2], 'state', state)
redis.call('EXPIRE', KEYS[1], ARGV[9])
return {'restored', redis.call('XADD', KEYS[6], '*', 'type', ARGV[5], 'data', ARGV[4])}
