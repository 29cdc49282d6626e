-- Append one op to a match stream, atomically.
-- KEYS[1] the match stream, KEYS[2] the idempotency record for this request.
-- ARGV[1] the id the caller saw last ('' for a new match), ARGV[2] the new op's id,
-- ARGV[3] the op's JSON, ARGV[4] digest of the request, ARGV[5] record TTL in seconds.
-- Returns {'ok', id} | {'dup', 'id digest'} (key seen before; nothing appended)
--       | {'stale', last id} (someone appended first; build again and retry).
local seen = redis.call('GET', KEYS[2])
if seen then
  return {'dup', seen}
end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = ''
if #top > 0 then
  last = top[1][1]
end
if last ~= ARGV[1] then
  return {'stale', last}
end
redis.call('XADD', KEYS[1], ARGV[2], 'o', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[4], 'EX', ARGV[5])
return {'ok', ARGV[2]}
