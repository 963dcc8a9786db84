-- Where every consumer group of one stream stands, read in one atomic step so that a group's
-- last-delivered id and its pending entries describe the same instant (trimming, invariant 8).
-- KEYS[1] the stream
-- Returns a flat list: group name, last-delivered id, oldest pending id ('' when none), for
-- each group; an empty list when the stream does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local cursors = {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do
    fields[group[i]] = group[i + 1]
  end
  local summary = redis.call('XPENDING', KEYS[1], fields['name'])
  table.insert(cursors, fields['name'])
  table.insert(cursors, fields['last-delivered-id'])
  table.insert(cursors, summary[2] or '')
end
return cursors
