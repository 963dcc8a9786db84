-- A campaign's send rate, shared by every worker (GCRA, no burst: sends are spaced
-- 60000 / rate_limit_per_minute ms apart). Each call reserves the next free slot, so
-- concurrent workers get distinct ones. The state outlives pause and resume: a resumed
-- campaign does not get a burst.
-- KEYS[1] campaign hash  KEYS[2] campaign rate key (theoretical arrival time, ms)
-- ARGV[1] now (ms)  ARGV[2] longest wait (ms) a caller will sleep for a reservation
-- Returns the wait (ms) before sending when a slot was reserved (>= 0); when the next
-- free slot is further off than ARGV[2], nothing is reserved and the answer is minus
-- that wait (the caller comes back later instead of holding a slot it cannot use soon).
local now = tonumber(ARGV[1])
local limit = tonumber(redis.call('HGET', KEYS[1], 'rate_limit_per_minute') or '0')
if not limit or limit <= 0 then
  return 0
end
local interval = 60000 / limit
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local wait = math.ceil(tat - now)
if wait > tonumber(ARGV[2]) then
  return -wait
end
local new_tat = tat + interval
redis.call('SET', KEYS[2], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 60000)
return wait
