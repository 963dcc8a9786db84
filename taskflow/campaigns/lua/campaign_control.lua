-- Start, pause, resume and resend the failed of a campaign, in one step each: the status
-- change, the ledger assignments and the campaign's events together.
-- KEYS[1] campaign hash  KEYS[2] ledger hash  KEYS[3] events stream (the campaign's)
-- KEYS[4] the partition's due set (a start, early or on time, takes the campaign out)
-- KEYS[5] the partition's set of started campaigns (watched for stalled sends)
-- ARGV[1] action: start | pause | resume | resend
-- ARGV[2] the campaign event payload  ARGV[3] its type; what only this step knows is
--   filled in: "send_tasks":-1 gets how many were assigned, "recipients":[] which ones
-- ARGV[4] OperatorActed payload ('' for none)  ARGV[5] its type
-- ARGV[6] CampaignCompleted's payload (counts 0, filled in here)  ARGV[7] its type
-- ARGV[8] the campaign id
-- ARGV[9..] recipient id, task id pairs to assign (start, resume, resend)
-- Ledger values: pending:<task> (assigned, not begun) | pending (unassigned) |
-- sending:<task> | sent | failed | bounced | skipped | unsubscribed.
-- A send task sends only while the ledger assigns its recipient to it, so a pause that
-- unassigns the queued ones stops them without cancelling anything, and a recipient is
-- never assigned to two tasks.
-- Returns {"ok", event id, assigned ids...} | {"conflict", status} | {"unknown", ""}.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'unknown', ''}
end
local action = ARGV[1]
local allowed = {
  start = {draft = true, scheduled = true, running = true},
  pause = {running = true},
  resume = {paused = true},
  resend = {running = true, completed = true},
}
if not allowed[action][status] then
  return {'conflict', status}
end
local assigned = {}
local function assign(from_failed)
  for i = 9, #ARGV, 2 do
    local recipient, task = ARGV[i], ARGV[i + 1]
    local state = redis.call('HGET', KEYS[2], recipient)
    local free = (not from_failed) and (not state or state == 'pending' or string.sub(state, 1, 8) == 'pending:')
    if from_failed then
      free = state == 'failed'
    end
    if free then
      -- An existing assignment to the same task is kept (a start retried after a crash).
      if state ~= 'pending:' .. task then
        redis.call('HSET', KEYS[2], recipient, 'pending:' .. task)
      end
      assigned[#assigned + 1] = recipient
      if from_failed then
        redis.call('HINCRBY', KEYS[1], 'failed', -1)
        redis.call('HINCRBY', KEYS[1], 'pending', 1)
      end
    end
  end
end
if action == 'start' then
  if status ~= 'running' then
    -- Every recipient not final counts as pending from now on (assigned below).
    local pending = 0
    for i = 9, #ARGV, 2 do
      local state = redis.call('HGET', KEYS[2], ARGV[i])
      if not state or state == 'pending' or string.sub(state, 1, 8) == 'pending:' then
        pending = pending + 1
      end
    end
    redis.call('HSET', KEYS[1], 'pending', pending, 'sent', 0, 'failed', 0, 'skipped', 0)
  end
  assign(false)
  redis.call('HSET', KEYS[1], 'status', 'running')
elseif action == 'pause' then
  redis.call('HSET', KEYS[1], 'status', 'paused')
  local ledger = redis.call('HGETALL', KEYS[2])
  for i = 1, #ledger, 2 do
    if string.sub(ledger[i + 1], 1, 8) == 'pending:' then
      redis.call('HSET', KEYS[2], ledger[i], 'pending')
    end
  end
elseif action == 'resume' then
  assign(false)
  redis.call('HSET', KEYS[1], 'status', 'running')
else
  assign(true)
  if #assigned == 0 then
    return {'conflict', 'nothing failed'}
  end
  redis.call('HSET', KEYS[1], 'status', 'running')
end
redis.call('HINCRBY', KEYS[1], 'runs', 1)
-- The slots told to waiting tasks (begin_send.lua) are theirs no more: a pause sends them
-- away, a start, resume or resend has new tasks to tell.
redis.call('HDEL', KEYS[1], 'deferred_until')
local event_id = ''
if not (action == 'start' and status == 'running') then
  local ids = {}
  for i, recipient in ipairs(assigned) do
    ids[i] = '"' .. recipient .. '"'
  end
  local payload = string.gsub(ARGV[2], '"send_tasks":%-1', '"send_tasks":' .. #assigned, 1)
  payload = string.gsub(payload, '"recipients":%[%]', '"recipients":[' .. table.concat(ids, ',') .. ']', 1)
  event_id = redis.call('XADD', KEYS[3], '*', 'type', ARGV[3], 'data', payload)
  if ARGV[4] ~= '' then
    redis.call('XADD', KEYS[3], '*', 'type', ARGV[5], 'data', ARGV[4])
  end
end
if action ~= 'pause' then
  redis.call('ZREM', KEYS[4], ARGV[8])
  redis.call('SADD', KEYS[5], ARGV[8])
  -- Every recipient may have reached its end while the campaign was paused (sends that
  -- were in flight, unsubscribes): nothing would record again, so it completes here.
  if tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') <= 0 then
    local counts = redis.call('HMGET', KEYS[1], 'sent', 'failed', 'skipped')
    local completed = cjson.decode(ARGV[6])
    completed['sent'] = tonumber(counts[1] or '0')
    completed['failed'] = tonumber(counts[2] or '0')
    completed['skipped'] = tonumber(counts[3] or '0')
    redis.call('XADD', KEYS[3], '*', 'type', ARGV[7], 'data', cjson.encode(completed))
    redis.call('HSET', KEYS[1], 'status', 'completed')
  end
end
local answer = {'ok', event_id}
for _, recipient in ipairs(assigned) do
  answer[#answer + 1] = recipient
end
return answer
