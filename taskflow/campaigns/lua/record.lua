-- A recipient's fate: the ledger change, the campaign's counters and the campaign event,
-- in one step (ARCHITECTURE invariant 2); the counters move exactly once per recipient.
-- KEYS[1] campaign hash  KEYS[2] campaign ledger hash  KEYS[3] the campaign's events stream
-- ARGV[1] recipient id  ARGV[2] outcome: sent | failed | bounced | skipped | unsubscribed
-- ARGV[3] event type  ARGV[4] event payload (JSON)
-- ARGV[5] CampaignCompleted's type  ARGV[6] its payload with sent/failed/skipped = 0
-- ARGV[7] the ledger state the caller saw ('' for any): the coordinator's stalled-send
--   sweep records only if the recipient is still held as it saw it
-- Returns {"recorded", event id, completed event id or ""} | {"already", final state}
-- | {"unknown", ""} (the recipient is not in the ledger).
local FINAL = {sent = true, failed = true, bounced = true, skipped = true, unsubscribed = true}
local state = redis.call('HGET', KEYS[2], ARGV[1])
if not state then
  return {'unknown', ''}
end
if ARGV[7] and ARGV[7] ~= '' and state ~= ARGV[7] then
  return {'already', state}
end
local outcome = ARGV[2]
-- An unsubscribe after the mail went out still counts (the ledger then says so, the
-- counters keep the send); any other outcome comes only once.
if state == 'unsubscribed' or (FINAL[state] and outcome ~= 'unsubscribed') then
  return {'already', state}
end
redis.call('HSET', KEYS[2], ARGV[1], outcome)
local event_id = redis.call('XADD', KEYS[3], '*', 'type', ARGV[3], 'data', ARGV[4])
if FINAL[state] then
  return {'recorded', event_id, ''}
end
local pending = redis.call('HINCRBY', KEYS[1], 'pending', -1)
if outcome == 'sent' then
  redis.call('HINCRBY', KEYS[1], 'sent', 1)
elseif outcome == 'failed' or outcome == 'bounced' then
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
else
  redis.call('HINCRBY', KEYS[1], 'skipped', 1)
end
local completed_id = ''
if pending <= 0 and redis.call('HGET', KEYS[1], 'status') == 'running' then
  local counts = redis.call('HMGET', KEYS[1], 'sent', 'failed', 'skipped')
  local completed = cjson.decode(ARGV[6])
  completed['sent'] = tonumber(counts[1] or '0')
  completed['failed'] = tonumber(counts[2] or '0')
  completed['skipped'] = tonumber(counts[3] or '0')
  completed_id = redis.call('XADD', KEYS[3], '*', 'type', ARGV[5], 'data', cjson.encode(completed))
  redis.call('HSET', KEYS[1], 'status', 'completed')
end
return {'recorded', event_id, completed_id}
