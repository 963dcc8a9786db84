-- Record a silent worker's death, once, and only by the current coordinator leader.
-- KEYS[1] leader key  KEYS[2] worker registry zset  KEYS[3] events stream
-- ARGV[1] leader value ("id|fence")  ARGV[2] worker id  ARGV[3] latest heartbeat (ms) still
-- counted as silent  ARGV[4] WorkerDied payload  ARGV[5] its type (taskflow.events)
-- Returns the WorkerDied event id, or false (not leader, alive again, or buried already).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local last = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not last or tonumber(last) > tonumber(ARGV[3]) then
  return false
end
redis.call('ZREM', KEYS[2], ARGV[2])
return redis.call('XADD', KEYS[3], '*', 'type', ARGV[5], 'data', ARGV[4])
