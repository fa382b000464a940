//! The Lua scripts of the Redis tier (see `redis.rs` for the layout they keep).

pub(super) const READ: &str = r"
-- KEYS: value. Returns nil, {0, raw} (not ours), 2 (stale) or {1, bytes, pttl}.
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local nl = string.find(v, '\n', 1, true)
if not nl then return {0, v} end
local ok, meta = pcall(cjson.decode, string.sub(v, 1, nl - 1))
if not ok or type(meta) ~= 'table' then return {0, v} end
for i = 1, #meta, 2 do
  if (redis.call('GET', meta[i]) or '0') ~= meta[i + 1] then return 2 end
end
return {1, string.sub(v, nl + 1), redis.call('PTTL', KEYS[1])}
";

pub(super) const INSERT: &str = r"
-- KEYS: value, global version, key-slot version, n tag versions, n tag sets
-- ARGV: bytes, ttl ms, check ('1' or '0'), max set size, expected versions (global, slot, tags)
local n = (#KEYS - 3) / 2
local current = {}
for i = 2, n + 3 do current[i - 1] = redis.call('GET', KEYS[i]) or '0' end
if ARGV[3] == '1' then
  for i = 1, n + 2 do
    if current[i] ~= ARGV[4 + i] then return 0 end
  end
end
local meta = {KEYS[2], current[1]}
for i = 1, n do
  meta[#meta + 1] = KEYS[3 + i]
  meta[#meta + 1] = current[2 + i]
end
redis.call('SET', KEYS[1], cjson.encode(meta) .. '\n' .. ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[4])
for i = 1, n do
  local set = KEYS[3 + n + i]
  if redis.call('SCARD', set) >= max then
    for _, member in ipairs(redis.call('SRANDMEMBER', set, 16)) do
      if redis.call('EXISTS', member) == 0 then redis.call('SREM', set, member) end
    end
  end
  -- A full set only costs early reclaiming: the version check keeps reads right.
  if redis.call('SCARD', set) < max then
    redis.call('SADD', set, KEYS[1])
    if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ttl) end
  end
end
return 1
";

pub(super) const INVALIDATE_TAG: &str = r"#!lua flags=allow-oom
-- KEYS: tag version, tag set; ARGV: channel, message, prefix of the set's new name
local v = redis.call('INCR', KEYS[1])
local garbage = ''
if redis.call('EXISTS', KEYS[2]) == 1 then
  garbage = ARGV[3] .. v
  redis.call('RENAME', KEYS[2], garbage)
end
return {redis.call('PUBLISH', ARGV[1], ARGV[2]), garbage}
";

pub(super) const INVALIDATE_KEY: &str = r"#!lua flags=allow-oom
-- KEYS: key-slot version, value; ARGV: channel, message
redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
return redis.call('PUBLISH', ARGV[1], ARGV[2])
";

pub(super) const CLEAR: &str = r"#!lua flags=allow-oom
-- KEYS: global version; ARGV: channel, message
redis.call('INCR', KEYS[1])
return redis.call('PUBLISH', ARGV[1], ARGV[2])
";
