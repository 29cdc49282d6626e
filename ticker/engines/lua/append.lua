-- Append one op to a match stream, atomically, if the caller's copy is still the stream.
-- KEYS[1] the match stream, KEYS[2] the idempotency record for this request, KEYS[3] the
-- match's epoch (a random value set when the match was created).
-- ARGV[1] id of the last entry the caller read, ARGV[2] how many entries it read, ARGV[3]
-- the epoch it read, ARGV[4] the new op's id, ARGV[5] the op's JSON, ARGV[6] digest of the
-- request, ARGV[7] record TTL in seconds.
-- Returns {'ok', epoch} | {'dup', 'id digest'} (key seen before; nothing appended)
--       | {'gone', ''} (no such stream) | {'stale', last id} (the caller's copy is not the
--         stream: someone appended first, or the stream lost entries or was made again).
local seen = redis.call('GET', KEYS[2])
if seen then
  -- Rewritten as it is: a write, so a WAIT after this call covers the op (see redis.py).
  redis.call('SET', KEYS[2], seen, 'KEEPTTL')
  return {'dup', seen}
end
local n = redis.call('XLEN', KEYS[1])
if n == 0 then
  return {'gone', ''}
end
local epoch = redis.call('GET', KEYS[3]) or ''
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = top[1][1]
if epoch ~= ARGV[3] or last ~= ARGV[1] or n ~= tonumber(ARGV[2]) then
  return {'stale', last}
end
redis.call('XADD', KEYS[1], ARGV[4], 'o', ARGV[5])
redis.call('SET', KEYS[2], ARGV[4] .. ' ' .. ARGV[6], 'EX', ARGV[7])
return {'ok', epoch}
