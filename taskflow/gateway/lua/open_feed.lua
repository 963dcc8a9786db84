-- Count a user's open SSE feeds across every gateway replica, atomically.
-- KEYS[1] the user's open-feeds sorted set (feed id -> when it lapses, ms)
-- ARGV[1] "open" | "renew" | "close"  ARGV[2] feed id  ARGV[3] now (ms)
-- ARGV[4] lapse (ms): a feed whose gateway died drops out after it  ARGV[5] cap
-- Returns 1 (open / renewed / closed), 0 when "open" finds the cap reached.
if ARGV[1] == 'close' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 1
end
local lapses = tonumber(ARGV[3]) + tonumber(ARGV[4])
if ARGV[1] == 'renew' then
  redis.call('ZADD', KEYS[1], 'XX', lapses, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return 0
end
redis.call('ZADD', KEYS[1], lapses, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
