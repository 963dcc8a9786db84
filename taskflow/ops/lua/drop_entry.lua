-- `taskflow streams ack` and `requeue`: take a pending dispatch entry from its (dead or
-- stuck) owner. "ack": the task ends CANCELLED (the work is given up). "requeue": the same
-- fields go back on the stream as a new entry (deliveries and runs begun start again).
-- Either way the owner, should it wake up, no longer owns the entry and records nothing.
-- KEYS[1] dispatch stream  KEYS[2] events stream  KEYS[3] starts hash  KEYS[4] task marker
-- ARGV[1] group  ARGV[2] entry id  ARGV[3] the owner it had when looked up  ARGV[4] "ack"|"requeue"
-- ARGV[5] the task's event (TaskCancelled | TaskQueued) payload  ARGV[6] its type
-- ARGV[7] OperatorActed payload  ARGV[8] its type
-- Returns {"done", task event id, new entry id ('' for ack)} or {"moved", owner now}.
local owner = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #owner == 0 then
  return {'moved', '', ''}
end
if owner[1][2] ~= ARGV[3] then
  return {'moved', owner[1][2], ''}
end
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
local new_id = ''
if ARGV[4] == 'requeue' and #entry == 1 then
  new_id = redis.call('XADD', KEYS[1], '*', unpack(entry[1][2]))
end
local event_id = redis.call('XADD', KEYS[2], '*', 'type', ARGV[6], 'data', ARGV[5])
-- The marker expires with the idempotency window: never bring back an expired one.
if redis.call('EXISTS', KEYS[4]) == 1 then
  if ARGV[4] == 'ack' then
    redis.call('HSET', KEYS[4], 'state', 'cancelled', 'outcome', event_id)
  else
    redis.call('HSET', KEYS[4], 'state', 'pending')
    redis.call('HDEL', KEYS[4], 'cancel', 'outcome', 'progress')
  end
end
redis.call('XADD', KEYS[2], '*', 'type', ARGV[8], 'data', ARGV[7])
return {'done', event_id, new_id}
