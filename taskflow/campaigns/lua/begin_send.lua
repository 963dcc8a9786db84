-- Before a send_email task mails a recipient: may it, and when? One atomic look at the
-- campaign's status and the recipient's ledger state, the claim "sending:<task id>" on a
-- go, and the go's slot of the campaign's shared send rate.
-- A task mails only the recipient the ledger assigns to it ("pending:<task id>", written
-- by campaign_control.lua), or the one it was already sending when its worker died (the
-- same Message-ID): a pause unassigns the queued recipients and a resume assigns them to
-- new tasks, so no recipient is ever mailed by two tasks.
-- The rate (GCRA, no burst): sends are spaced 60000 / rate_limit_per_minute ms apart,
-- and each go reserves the next free slot, so concurrent workers get distinct ones. The
-- state outlives pause and resume: a resumed campaign does not get a burst. When the
-- next free slot is further off than ARGV[4], the answer is "later": nothing is claimed
-- or reserved (the task comes back later rather than hold a worker slot it cannot use
-- soon, and a pause can still take its recipient back). Each "later" is told a slot of
-- its own, the one after every slot told before ("deferred_until" in the campaign hash,
-- cleared by every campaign action): the waiting tasks come back one per slot, in order,
-- each about once, instead of all trying again and again. The slot is a time to come
-- back, not a reservation: a task that never comes back leaves its slot to the next one.
-- A go whose recipient then turns out suppressed leaves its slot unused: the campaign
-- runs at most at its limit, never above it.
-- KEYS[1] campaign hash  KEYS[2] campaign ledger hash  KEYS[3] campaign rate key (ms)
-- ARGV[1] recipient id  ARGV[2] task id  ARGV[3] now (ms)  ARGV[4] longest wait (ms)
-- Returns {answer, wait}: answer "go" | "later" | "done" (a final state: never a second
-- mail) | "superseded" (another task has the recipient, or a pause took it back) |
-- "paused" (assigned, but the campaign is not running) | "unknown" (no such campaign or
-- recipient); wait: for a go, the ms before its reserved slot; for "later", the ms to the
-- slot it was told.
local state = redis.call('HGET', KEYS[2], ARGV[1])
if not state then
  return {'unknown', 0}
end
if state == 'sent' or state == 'failed' or state == 'bounced' or state == 'skipped' or state == 'unsubscribed' then
  return {'done', 0}
end
local campaign = redis.call('HMGET', KEYS[1], 'status', 'rate_limit_per_minute', 'deferred_until')
local status = campaign[1]
if not status then
  return {'unknown', 0}
end
if status == 'completed' then
  return {'done', 0}
end
local mine = state == 'pending:' .. ARGV[2] or state == 'sending:' .. ARGV[2]
if not mine then
  return {'superseded', 0}
end
if status ~= 'running' then
  return {'paused', 0}
end
local limit = tonumber(campaign[2] or '0')
if not limit or limit <= 0 then
  redis.call('HSET', KEYS[2], ARGV[1], 'sending:' .. ARGV[2])
  return {'go', 0}
end
local interval = 60000 / limit
local now = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
if tat < now then tat = now end
local wait = math.ceil(tat - now)
if wait > tonumber(ARGV[4]) then
  local told = tonumber(campaign[3] or '0')
  if told < tat then told = tat end
  redis.call('HSET', KEYS[1], 'deferred_until', tostring(told + interval))
  return {'later', math.ceil(told - now)}
end
redis.call('HSET', KEYS[2], ARGV[1], 'sending:' .. ARGV[2])
local new_tat = tat + interval
redis.call('SET', KEYS[3], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 60000)
return {'go', wait}
