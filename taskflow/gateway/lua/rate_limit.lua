-- GCRA rate limits, several at once, all or nothing: a request passes only if every
-- limit lets it, and only then does it count against them. Shared by every replica.
-- KEYS[i] the i-th limit's key (its theoretical arrival time, ms)
-- ARGV[1] now (ms)  ARGV[2] period (ms)  then ARGV[2+i] the i-th limit (requests / period)
-- Returns {allowed 1|0, retry after (ms), then per limit: remaining, reset (ms)}.
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local new_tats = {}
local answer = {1, 0}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 + i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if now < allow_at then
    answer[1] = 0
    answer[2] = math.max(answer[2], math.ceil(allow_at - now))
  end
  new_tats[i] = new_tat
  local remaining = math.floor((now + period - new_tat) / interval)
  if answer[1] == 0 and now < allow_at then remaining = 0 end
  table.insert(answer, math.max(remaining, 0))
  table.insert(answer, math.ceil(new_tat - now))
end
if answer[1] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], new_tats[i], 'PX', math.ceil(new_tats[i] - now))
  end
end
return answer
