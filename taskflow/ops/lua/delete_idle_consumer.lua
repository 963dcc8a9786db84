-- Delete one consumer of a group, only if it still holds no pending entry and has been
-- idle longer than ARGV[3] ms, checked and done in one step. XGROUP DELCONSUMER drops the
-- consumer's pending entries with it, acked by no one and never delivered again: a worker
-- that read an entry between `taskflow streams consumers` listing it and this call keeps
-- its entry and its name.
-- KEYS[1] stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] min idle (ms)
-- Returns 1 deleted, 0 kept (it holds entries or was seen since), -1 no such consumer.
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do
    info[consumer[i]] = consumer[i + 1]
  end
  if info['name'] == ARGV[2] then
    if info['pending'] == 0 and info['idle'] > tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return -1
