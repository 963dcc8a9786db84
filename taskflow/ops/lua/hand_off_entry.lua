-- `taskflow streams claim`: hand a pending dispatch entry to the live workers now. It stays
-- its owner's but looks idle for a whole lease, so the next XAUTOCLAIM pass of any live
-- worker takes it over (JUSTID: no delivery counted), instead of after the lease.
-- KEYS[1] dispatch stream  KEYS[2] events stream
-- ARGV[1] group  ARGV[2] entry id  ARGV[3] the owner it had when looked up  ARGV[4] idle (ms)
-- ARGV[5] OperatorActed payload  ARGV[6] its type
-- Returns {"done", audit event id} or {"moved", owner now ('' when no longer pending)}.
local owner = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #owner == 0 then
  return {'moved', ''}
end
if owner[1][2] ~= ARGV[3] then
  return {'moved', owner[1][2]}
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', ARGV[4], 'JUSTID')
return {'done', redis.call('XADD', KEYS[2], '*', 'type', ARGV[6], 'data', ARGV[5])}
