-- Create a match, atomically: its stream with the first op, its epoch, its place in the
-- set of matches, and the record that makes a retry of this very call safe.
-- KEYS[1] the match stream, KEYS[2] the creation record, KEYS[3] the epoch key,
-- KEYS[4] the set of match ids.
-- ARGV[1] the first op's id, ARGV[2] its JSON, ARGV[3] a token of this creation,
-- ARGV[4] record TTL in seconds, ARGV[5] the new epoch, ARGV[6] the match id.
-- Returns {'ok', epoch} | {'dup', 'id token'} (a creation was recorded: ours if the token
-- is ours) | {'exists', ''}.
local seen = redis.call('GET', KEYS[2])
if seen then
  -- Rewritten as it is: a write, so a WAIT after this call covers the match (see redis.py).
  redis.call('SET', KEYS[2], seen, 'KEEPTTL')
  return {'dup', seen}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', ''}
end
redis.call('XADD', KEYS[1], ARGV[1], 'o', ARGV[2])
redis.call('SET', KEYS[3], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[6])
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[3], 'EX', ARGV[4])
return {'ok', ARGV[5]}
