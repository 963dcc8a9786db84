-- Append an event for a dispatch entry only while this consumer still owns the entry
-- (ARCHITECTURE invariant 2). A worker whose entry was taken over (a zombie) writes nothing.
-- KEYS[1] dispatch stream  KEYS[2] events stream  KEYS[3] starts hash (entry id -> runs begun)
-- KEYS[4] held-due zset    KEYS[5] held hash (task id -> dispatch fields as JSON)
-- KEYS[6] task marker hash (the task's state, see submit.lua)
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] entry id  ARGV[4] event type  ARGV[5] payload
-- ARGV[6] "start": the run begins (count it) | "finish": the outcome (XACK + XDEL + forget)
--         | "retry": an outcome that books another attempt (finish + hold until ARGV[7])
--         | "progress": a progress step (the marker points at the latest) | "note": anything else
-- ARGV[7] retry due time (ms)  ARGV[8] task id  ARGV[9] held dispatch fields (JSON)
-- ARGV[10] the task's state after this event (finish: succeeded|failed|timed_out|cancelled)
-- Returns the new event id; "cancelled" when a start finds the task cancelled (the entry
-- is dropped, nothing appended); false when the entry is not ours (anymore).
local owner = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #owner == 0 or owner[1][2] ~= ARGV[2] then
  return false
end
-- The marker expires with the idempotency window; never bring back an expired one (a
-- marker without its TTL and event id would let a resubmit pass as a new task).
local function set_state(state)
  if redis.call('EXISTS', KEYS[6]) == 1 then
    redis.call('HSET', KEYS[6], 'state', state)
  end
end
local function forget_entry()
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  -- Only the workers group reads dispatch streams, so an acknowledged entry is garbage.
  redis.call('XDEL', KEYS[1], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
end
if ARGV[6] == 'start' and redis.call('HGET', KEYS[6], 'state') == 'cancelled' then
  -- Cancelled while it waited in line: it never runs (the cancel already has its event).
  forget_entry()
  return 'cancelled'
end
local event_id = redis.call('XADD', KEYS[2], '*', 'type', ARGV[4], 'data', ARGV[5])
if ARGV[6] == 'start' then
  -- Runs begun, not deliveries, decide poison: an entry claimed by a worker that died
  -- before starting it did nothing wrong.
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  if redis.call('EXISTS', KEYS[6]) == 1 then
    redis.call('HSET', KEYS[6], 'state', 'running', 'worker', ARGV[2])
  end
elseif ARGV[6] == 'finish' or ARGV[6] == 'retry' then
  forget_entry()
  if ARGV[6] == 'retry' then
    redis.call('HSET', KEYS[5], ARGV[8], ARGV[9])
    redis.call('ZADD', KEYS[4], ARGV[7], ARGV[8])
    set_state('scheduled')
  else
    set_state(ARGV[10])
    -- Where the outcome is, for a producer's handle.result(): one XRANGE, no scan.
    if redis.call('EXISTS', KEYS[6]) == 1 then
      redis.call('HSET', KEYS[6], 'outcome', event_id)
    end
  end
  redis.call('HDEL', KEYS[6], 'cancel')
elseif ARGV[6] == 'progress' and redis.call('EXISTS', KEYS[6]) == 1 then
  -- The latest progress step, for a producer's handle.progress().
  redis.call('HSET', KEYS[6], 'progress', event_id)
end
return event_id
