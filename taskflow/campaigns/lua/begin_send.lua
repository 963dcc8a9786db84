-- Before a send_email task mails a recipient: may it? One atomic look at the campaign's
-- status and the recipient's ledger state, and the claim "sending:<task id>" on a go.
-- KEYS[1] campaign hash  KEYS[2] campaign ledger hash
-- ARGV[1] recipient id  ARGV[2] task id
-- Returns "go" | "done" (a final state: never a second mail) | "paused" (not yet: draft,
-- scheduled or paused) | "unknown" (no such campaign or recipient).
local state = redis.call('HGET', KEYS[2], ARGV[1])
if not state then
  return 'unknown'
end
if state == 'sent' or state == 'failed' or state == 'bounced' or state == 'skipped' or state == 'unsubscribed' then
  return 'done'
end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'unknown'
end
if status == 'completed' then
  return 'done'
end
if status ~= 'running' then
  return 'paused'
end
-- "pending", or "sending:<a task>" left by an attempt that died mid-send: a resend after
-- a crash is allowed (it carries the same Message-ID, so mailbox providers drop it).
redis.call('HSET', KEYS[2], ARGV[1], 'sending:' .. ARGV[2])
return 'go'
