-- Re-append a quarantined event to its partition's events stream, at most once.
-- KEYS[1] the partition's quarantine-retried hash  KEYS[2] the partition's events stream
-- ARGV[1] the quarantined entry's id  ARGV[2] event type  ARGV[3] event payload
-- Returns {1, new id} appended now, or {0, new id} appended by an earlier retry (which
-- then stopped before deleting the quarantine row): the append and its record are one
-- step, so no crash or second operator can append the event twice.
local done = redis.call('HGET', KEYS[1], ARGV[1])
if done then
  return {0, done}
end
local id = redis.call('XADD', KEYS[2], '*', 'type', ARGV[2], 'data', ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], id)
return {1, id}
