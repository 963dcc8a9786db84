-- Create a recurring schedule with its event, atomically.
-- KEYS[1] cron schedules hash  KEYS[2] cron due zset  KEYS[3] events stream
-- ARGV[1] schedule id  ARGV[2] definition JSON (without created_event_id)
-- ARGV[3] first tick (ms)  ARGV[4] ScheduleCreated payload  ARGV[5] its type (taskflow.events)
-- Returns the ScheduleCreated event id.
local event_id = redis.call('XADD', KEYS[3], '*', 'type', ARGV[5], 'data', ARGV[4])
local definition = cjson.decode(ARGV[2])
definition.created_event_id = event_id
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(definition))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return event_id
