-- Read the next batch for the projector only while it still holds the partition's lock,
-- in one atomic step: a projector that was paused past its lock (and replaced) can no
-- longer take entries from the group (ARCHITECTURE invariants 4 and 6).
-- KEYS[1] projector lock   KEYS[2] events stream
-- ARGV[1] lock token  ARGV[2] group  ARGV[3] consumer  ARGV[4] count  ARGV[5] start id ("0" or ">")
-- Returns false when the lock is not ours, else the XREADGROUP answer (maybe empty).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local answer = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[2], ARGV[5])
if not answer then
  return {}
end
return answer[1][2]
