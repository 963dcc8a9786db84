-- Take or keep the coordinator leadership of one partition: a lease with a fencing token.
-- KEYS[1] leader key  KEYS[2] fence counter
-- ARGV[1] candidate id  ARGV[2] lease (ms)
-- Returns "candidate|fence" while the caller leads, false otherwise. Every write a leader
-- makes passes this value back and is refused once it no longer matches.
local current = redis.call('GET', KEYS[1])
if current then
  if string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return current
  end
  return false
end
local value = ARGV[1] .. '|' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
