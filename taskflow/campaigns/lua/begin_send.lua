-- Before a send_email task mails a recipient: may it? One atomic look at the campaign's
-- status and the recipient's ledger state, and the claim "sending:<task id>" on a go.
-- A task mails only the recipient the ledger assigns to it ("pending:<task id>", written
-- by campaign_control.lua), or the one it was already sending when its worker died (the
-- same Message-ID): a pause unassigns the queued recipients and a resume assigns them to
-- new tasks, so no recipient is ever mailed by two tasks.
-- KEYS[1] campaign hash  KEYS[2] campaign ledger hash
-- ARGV[1] recipient id  ARGV[2] task id
-- Returns "go" | "done" (a final state: never a second mail) | "superseded" (another
-- task has the recipient, or a pause took it back) | "paused" (assigned, but the campaign
-- is not running) | "unknown" (no such campaign or recipient).
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
local mine = state == 'pending:' .. ARGV[2] or state == 'sending:' .. ARGV[2]
if not mine then
  return 'superseded'
end
if status ~= 'running' then
  return 'paused'
end
redis.call('HSET', KEYS[2], ARGV[1], 'sending:' .. ARGV[2])
return 'go'
