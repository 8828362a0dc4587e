"""The Lua scripts of the Redis state backend (``redis.py``), apart from the Python that runs them.

Each script is atomic in Redis: a count, a presence change or a metering flush either happens
whole or not at all, however many processes write at once. ``LIVE`` is a prelude most of them
share (which nodes are alive); key names are passed in ``KEYS`` by ``redis.py``.
"""

USAGE_KEEP_HOURS = 48  # a new bucket drops buckets older than this many hours (as MemoryState does)

LIVE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- This node first, then every other node whose heartbeat has not expired.
local function nodes(nodes_key, me)
  local list = {me}
  for _, n in ipairs(redis.call('ZRANGEBYSCORE', nodes_key, '(' .. now_ms(), '+inf')) do
    if n ~= me then list[#list + 1] = n end
  end
  return list
end
"""

# KEYS: nodes. ARGV: key prefix before the node id, me, ttl ms, write (1/0), field, value, ...
# Writes this node's values (value "0" deletes the field), returns each field's sum over live nodes.
SET_AND_SUM = LIVE + """
local prefix, me, ttl = ARGV[1], ARGV[2], ARGV[3]
local mine = prefix .. me
local fields = {}
for i = 5, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  if ARGV[4] == '1' then
    if ARGV[i + 1] == '0' then redis.call('HDEL', mine, ARGV[i])
    else redis.call('HSET', mine, ARGV[i], ARGV[i + 1]) end
  end
end
if ARGV[4] == '1' then redis.call('PEXPIRE', mine, ttl) end
local sums = {}
for i = 1, #fields do sums[i] = 0 end
for _, node in ipairs(nodes(KEYS[1], me)) do
  local values = redis.call('HMGET', prefix .. node, unpack(fields))
  for i = 1, #fields do sums[i] = sums[i] + (tonumber(values[i]) or 0) end
end
return sums
"""

# KEYS: nodes. ARGV: subs key prefix before the node id, me, channel-name prefix.
# Returns channel, count, channel, count, ... summed over live nodes.
CHANNELS = LIVE + """
local prefix, me, wanted = ARGV[1], ARGV[2], ARGV[3]
local totals, order = {}, {}
for _, node in ipairs(nodes(KEYS[1], me)) do
  local flat = redis.call('HGETALL', prefix .. node)
  for i = 1, #flat, 2 do
    local channel = flat[i]
    if string.sub(channel, 1, #wanted) == wanted then
      if totals[channel] == nil then totals[channel] = 0; order[#order + 1] = channel end
      totals[channel] = totals[channel] + tonumber(flat[i + 1])
    end
  end
end
local out = {}
for _, channel in ipairs(order) do
  if totals[channel] > 0 then out[#out + 1] = channel; out[#out + 1] = totals[channel] end
end
return out
"""

# KEYS: nodes. ARGV: members key prefix before the node id, ":" .. channel, me, user, member, ttl ms.
# Atomic: of two nodes adding the same user at once, exactly one is told it is the first.
ADD_MEMBER = LIVE + """
local prefix, suffix, me, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local first = 1
for _, node in ipairs(nodes(KEYS[1], me)) do
  if redis.call('HEXISTS', prefix .. node .. suffix, user) == 1 then first = 0; break end
end
local mine = prefix .. me .. suffix
redis.call('HSET', mine, user, ARGV[5])
redis.call('PEXPIRE', mine, ARGV[6])
return first
"""

# KEYS: nodes. ARGV: members key prefix before the node id, ":" .. channel, me, user.
# Removes this node's entry; 1 if no live node has the user any more (send member_removed).
REMOVE_MEMBER = LIVE + """
local prefix, suffix, me, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('HDEL', prefix .. me .. suffix, user)
for _, node in ipairs(nodes(KEYS[1], me)) do
  if redis.call('HEXISTS', prefix .. node .. suffix, user) == 1 then return 0 end
end
return 1
"""

# KEYS: nodes. ARGV: members key prefix before the node id, ":" .. channel, me.
# Returns user, member, ... over live nodes, each user once.
MEMBERS = LIVE + """
local prefix, suffix, me = ARGV[1], ARGV[2], ARGV[3]
local seen, out = {}, {}
for _, node in ipairs(nodes(KEYS[1], me)) do
  local flat = redis.call('HGETALL', prefix .. node .. suffix)
  for i = 1, #flat, 2 do
    if not seen[flat[i]] then
      seen[flat[i]] = true; out[#out + 1] = flat[i]; out[#out + 1] = flat[i + 1]
    end
  end
end
return out
"""

# KEYS: hours zset. ARGV: bucket key prefix, hour, keep seconds, mode ("add" or "max"), field, value, ...
# A new bucket drops the buckets older than 48 hours before it, like MemoryState.
BUCKET_WRITE = """
local function bucket_write(hours_key, prefix, hour_s, keep, mode)
  local hour = tonumber(hour_s)
  local bucket = prefix .. hour_s
  if not redis.call('ZSCORE', hours_key, hour_s) then
    local cutoff = '(' .. (hour - """ + str(USAGE_KEEP_HOURS) + """)
    for _, old in ipairs(redis.call('ZRANGEBYSCORE', hours_key, '-inf', cutoff)) do
      redis.call('DEL', prefix .. old)
    end
    redis.call('ZREMRANGEBYSCORE', hours_key, '-inf', cutoff)
    redis.call('ZADD', hours_key, hour, hour_s)
    redis.call('HSETNX', bucket, 'hour', hour_s)
  end
  for i = 5, #ARGV, 2 do
    if mode == 'max' then
      if tonumber(ARGV[i + 1]) > (tonumber(redis.call('HGET', bucket, ARGV[i])) or 0) then
        redis.call('HSET', bucket, ARGV[i], ARGV[i + 1])
      end
    elseif string.find(ARGV[i + 1], '.', 1, true) then
      redis.call('HINCRBYFLOAT', bucket, ARGV[i], ARGV[i + 1])
    else
      redis.call('HINCRBY', bucket, ARGV[i], ARGV[i + 1])
    end
  end
  redis.call('EXPIRE', bucket, keep)
  redis.call('EXPIRE', hours_key, keep)
end
"""

BUCKET = BUCKET_WRITE + """
bucket_write(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""

# KEYS: hours zset, traffic totals, this node's last applied flush. ARGV: bucket key prefix, hour,
# keep seconds, flush seq (0: none), field, value, ... (tab_seconds goes to the bucket only).
# One flush, all or nothing: totals and bucket together, and a flush already applied (its reply
# was lost, so the node retries it) is not counted again. Returns 1 if applied, 0 if skipped.
METER = BUCKET_WRITE + """
local seq = tonumber(ARGV[4])
if seq > 0 and (tonumber(redis.call('GET', KEYS[3])) or 0) >= seq then return 0 end
for i = 5, #ARGV, 2 do  -- checked before any write: a script that fails halfway keeps its writes
  if not tonumber(ARGV[i + 1]) then return redis.error_reply('not a number: ' .. ARGV[i]) end
end
if seq > 0 then redis.call('SET', KEYS[3], ARGV[4], 'EX', 3600) end
for i = 5, #ARGV, 2 do
  if ARGV[i] ~= 'tab_seconds' and ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
bucket_write(KEYS[1], ARGV[1], ARGV[2], ARGV[3], 'add')
return 1
"""

# KEYS: hours zset. ARGV: bucket key prefix, since hour. Returns one flat field list per bucket.
USAGE = """
local out = {}
for _, hour in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  local flat = redis.call('HGETALL', ARGV[1] .. hour)
  if #flat > 0 then out[#out + 1] = flat end
end
return out
"""

# KEYS: nodes, usage source. ARGV: me, ttl ms, a new usage source id.
# Renews this node; returns {1 if Redis did not know this node, usage source}.
HEARTBEAT = LIVE + """
local now = now_ms()
local unknown = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'NX')
return {unknown, redis.call('GET', KEYS[2])}
"""


# KEYS: nodes. Claims the nodes whose heartbeat expired: each is returned to one caller only.
CLAIM_DEAD = LIVE + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms())
for _, node in ipairs(dead) do redis.call('ZREM', KEYS[1], node) end
return dead
"""

# KEYS: nodes. ARGV: members key prefix before the node id, ":" .. channel, dead node.
# Deletes a dead node's members of one channel; returns user, member, ... for the users that
# no live node has (they left with the dead node: member_removed is due).
REAP_MEMBERS = LIVE + """
local prefix, suffix = ARGV[1], ARGV[2]
local key = prefix .. ARGV[3] .. suffix
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
local flat = redis.call('HGETALL', key)
local out = {}
for i = 1, #flat, 2 do
  local present = false
  for _, node in ipairs(live) do
    if redis.call('HEXISTS', prefix .. node .. suffix, flat[i]) == 1 then present = true; break end
  end
  if not present then out[#out + 1] = flat[i]; out[#out + 1] = flat[i + 1] end
end
redis.call('DEL', key)
return out
"""

# KEYS: nodes. ARGV: members key prefix before the node id, ":" .. channel, me, user, user, ...
# The given users present on some live node (watchlist status: which watched users are online).
USERS_PRESENT = LIVE + """
local prefix, suffix, me = ARGV[1], ARGV[2], ARGV[3]
local users, found, out = {}, {}, {}
for i = 4, #ARGV do users[#users + 1] = ARGV[i] end
for _, node in ipairs(nodes(KEYS[1], me)) do
  local values = redis.call('HMGET', prefix .. node .. suffix, unpack(users))
  for i = 1, #users do
    if values[i] and not found[i] then found[i] = true; out[#out + 1] = users[i] end
  end
end
return out
"""
