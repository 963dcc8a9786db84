-- Delete a recurring schedule with its event, atomically; no tick fires after this.
-- KEYS[1] cron schedules hash  KEYS[2] cron due zset  KEYS[3] events stream
-- ARGV[1] schedule id  ARGV[2] ScheduleDeleted payload  ARGV[3] its type (taskflow.events)
-- Returns the ScheduleDeleted event id, or false when there is no such schedule.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return false
end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('XADD', KEYS[3], '*', 'type', ARGV[3], 'data', ARGV[2])
