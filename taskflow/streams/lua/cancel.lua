-- Cancel a task according to its live state, in one atomic step.
-- KEYS[1] task marker hash  KEYS[2] held-due zset  KEYS[3] held hash  KEYS[4] events stream
-- KEYS[5] waiting zset
-- ARGV[1] task id  ARGV[2] TaskCancelled payload  ARGV[3] TaskCancelRequested payload
-- ARGV[4], ARGV[5] their types (taskflow.events)
-- ARGV[6] an OperatorActed payload ('' when no person asked)  ARGV[7] its type
-- The OperatorActed is appended only when the cancel took effect: the audit trail holds
-- what happened, not what was tried.
-- Returns {outcome, event id}: outcome "cancelled" (it will never run), "cancelling" (it
-- runs now; its worker is told to stop it), "terminal:<state>" (too late) or "unknown".
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'unknown', ''}
end
if state == 'succeeded' or state == 'failed' or state == 'timed_out' or state == 'cancelled' then
  return {'terminal:' .. state, ''}
end
if state == 'running' then
  if redis.call('HSETNX', KEYS[1], 'cancel', '1') == 0 then
    return {'cancelling', ''}  -- asked already
  end
  local requested = redis.call('XADD', KEYS[4], '*', 'type', ARGV[5], 'data', ARGV[3])
  if ARGV[6] ~= '' then
    redis.call('XADD', KEYS[4], '*', 'type', ARGV[7], 'data', ARGV[6])
  end
  return {'cancelling', requested}
end
-- scheduled, waiting or pending: it has not started, so it never will.
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local event_id = redis.call('XADD', KEYS[4], '*', 'type', ARGV[4], 'data', ARGV[2])
-- 'outcome' points at the event that ended it (see owned_append.lua).
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'outcome', event_id)
if ARGV[6] ~= '' then
  redis.call('XADD', KEYS[4], '*', 'type', ARGV[7], 'data', ARGV[6])
end
return {'cancelled', event_id}
