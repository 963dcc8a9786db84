-- Move a schedule to its next tick once the current tick's task is submitted; only the
-- current leader may, and only from the tick it read (compare-and-set).
-- KEYS[1] leader key  KEYS[2] cron due zset
-- ARGV[1] leader value ("id|fence")  ARGV[2] schedule id  ARGV[3] tick read (ms)  ARGV[4] next tick (ms)
-- Returns 1 when advanced, false otherwise (not leader, deleted, or advanced already).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local current = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not current or tonumber(current) ~= tonumber(ARGV[3]) then
  return false
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
