"""The Lua scripts of the Redis state backend (``redis.py``), apart from the Python that runs them.

Each script is atomic in Redis: a count, a presence change or a metering flush either happens
whole or not at all, however many processes write at once.

Every key a script touches is passed in ``KEYS`` (no key name is built inside a script), and
all keys of one call share a hash tag, so each script runs on one slot of a Redis Cluster: the
global ``{p}`` (the nodes ZSET, the usage source) or one app's ``{p:a}``.

Scripts that add up the entries of live nodes (``LIVE``) cannot know which nodes are live
before they run, so the caller *declares* the nodes it believes hold entries of the app, with
their keys, and the script checks that against the app's own nodes ZSET (``{p:a}:nodes``,
node -> expiry ms, written by each node in the same scripts that write its entries and renewed
by its heartbeat): a live node that was not declared fails the script, before any write, with
``TCNODES <node>,<node>,...`` (the live list), and the caller runs it again with that list.
Declared nodes that are not live are skipped; this node (the first declared) always counts.
"""

USAGE_KEEP_HOURS = 48  # a new bucket drops buckets older than this many hours from the list (as MemoryState does)

NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# The declared-nodes protocol. KEYS[1]: the app's nodes ZSET; KEYS[2 .. N+1]: one key per declared
# node (KEYS[2]: this node's). ARGV[1]: N; ARGV[2 .. N+1]: the declared node ids (ARGV[2]: this
# node); ARGV[N+2]: how many ms this node stays live (its heartbeat's remaining life; 0 for reads);
# ARGV[N+3]: how long this node's keys live (ms); the script's own arguments start at ARGV[A].
LIVE = NOW + """
local N = tonumber(ARGV[1])
local ME = ARGV[2]
local A = N + 4
local NOW = now_ms()
-- This node's key, then the key of every other live node (but `skip`); nil if a live node was
-- not declared.
local function live_keys(skip)
  local at = {}
  for i = 2, N do at[ARGV[i + 1]] = i + 1 end
  local keys = {KEYS[2]}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. NOW, '+inf')) do
    if node ~= ME and node ~= skip then
      local i = at[node]
      if not i then return nil end
      keys[#keys + 1] = KEYS[i]
    end
  end
  return keys
end
local function stale()
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. NOW, '+inf')
  return redis.error_reply('TCNODES ' .. table.concat(live, ','))
end
-- This node holds entries of the app: live in its nodes ZSET until its heartbeat expires (never
-- shortened); entries of nodes dead for longer than keys live are dropped. Usually the node is
-- registered already (by an earlier write or its heartbeat, with this same expiry): one ZSCORE.
local function register()
  local until_ms = NOW + tonumber(ARGV[N + 2])
  local score = tonumber(redis.call('ZSCORE', KEYS[1], ME))
  if score and score >= until_ms - 100 then return end
  redis.call('ZADD', KEYS[1], 'GT', until_ms, ME)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW - tonumber(ARGV[N + 3]))
  redis.call('PEXPIRE', KEYS[1], ARGV[N + 3])
end
"""

# Node keys: each node's hash (subs or conns). ARGV[A]: write (1/0), then field, value, ...
# Writes this node's values (value "0" deletes the field), returns each field's sum over live nodes.
SET_AND_SUM = LIVE + """
local keys = live_keys()
if not keys then return stale() end
local write = ARGV[A] == '1'
local fields = {}
for i = A + 1, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  if write then
    if ARGV[i + 1] == '0' then redis.call('HDEL', KEYS[2], ARGV[i])
    else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  end
end
if write then
  redis.call('PEXPIRE', KEYS[2], ARGV[N + 3])
  register()
end
local sums = {}
for i = 1, #fields do sums[i] = 0 end
for _, key in ipairs(keys) do
  local values = redis.call('HMGET', key, unpack(fields))
  for i = 1, #fields do sums[i] = sums[i] + (tonumber(values[i]) or 0) end
end
return sums
"""

# Node keys: each node's subs hash. ARGV[A]: channel-name prefix.
# Returns channel, count, channel, count, ... summed over live nodes.
CHANNELS = LIVE + """
local keys = live_keys()
if not keys then return stale() end
local wanted = ARGV[A]
local totals, order = {}, {}
for _, key in ipairs(keys) do
  local flat = redis.call('HGETALL', key)
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

# Node keys: each node's members hash of the channel. ARGV[A]: user, ARGV[A+1]: member.
# Atomic: of two nodes adding the same user at once, exactly one is told it is the first.
ADD_MEMBER = LIVE + """
local keys = live_keys()
if not keys then return stale() end
local first = 1
for _, key in ipairs(keys) do
  if redis.call('HEXISTS', key, ARGV[A]) == 1 then first = 0; break end
end
redis.call('HSET', KEYS[2], ARGV[A], ARGV[A + 1])
redis.call('PEXPIRE', KEYS[2], ARGV[N + 3])
register()
return first
"""

# Node keys: each node's members hash of the channel. ARGV[A]: user.
# Removes this node's entry; 1 if no live node has the user any more (send member_removed).
REMOVE_MEMBER = LIVE + """
local keys = live_keys()
if not keys then return stale() end
redis.call('HDEL', KEYS[2], ARGV[A])
for _, key in ipairs(keys) do
  if redis.call('HEXISTS', key, ARGV[A]) == 1 then return 0 end
end
return 1
"""

# Node keys: each node's members hash of the channel. Returns user, member, ... over live nodes,
# each user once.
MEMBERS = LIVE + """
local keys = live_keys()
if not keys then return stale() end
local seen, out = {}, {}
for _, key in ipairs(keys) do
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    if not seen[flat[i]] then
      seen[flat[i]] = true; out[#out + 1] = flat[i]; out[#out + 1] = flat[i + 1]
    end
  end
end
return out
"""

# Node keys: each node's members hash of the channel. ARGV[A ..]: users.
# The given users present on some live node (watchlist status: which watched users are online).
USERS_PRESENT = LIVE + """
local keys = live_keys()
if not keys then return stale() end
local users, found, out = {}, {}, {}
for i = A, #ARGV do users[#users + 1] = ARGV[i] end
for _, key in ipairs(keys) do
  local values = redis.call('HMGET', key, unpack(users))
  for i = 1, #users do
    if values[i] and not found[i] then found[i] = true; out[#out + 1] = users[i] end
  end
end
return out
"""

# Node keys: each live node's members hash of the channel; KEYS[N+2]: the dead node's.
# ARGV[A]: the dead node. Deletes the dead node's members of the channel; returns user, member, ...
# for the users that no live node has (they left with the dead node: member_removed is due).
REAP_MEMBERS = LIVE + """
local dead = ARGV[A]
local keys = live_keys(dead)
if not keys then return stale() end
local flat = redis.call('HGETALL', KEYS[N + 2])
local out = {}
for i = 1, #flat, 2 do
  local present = false
  for _, key in ipairs(keys) do
    if redis.call('HEXISTS', key, flat[i]) == 1 then present = true; break end
  end
  if not present then out[#out + 1] = flat[i]; out[#out + 1] = flat[i + 1] end
end
redis.call('DEL', KEYS[N + 2])
redis.call('ZREM', KEYS[1], dead)
return out
"""

# KEYS: the app's nodes ZSET, then this node's keys of the app. ARGV: me, live ms, keys ttl ms.
# The heartbeat, per app: renews this node in the app's nodes ZSET and the life of its keys;
# returns how many of the keys Redis no longer had (then the node rewrites them).
RENEW = NOW + """
local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local lost = 0
for i = 2, #KEYS do
  if redis.call('PEXPIRE', KEYS[i], ARGV[3]) == 0 then lost = lost + 1 end
end
return lost
"""

# KEYS: the app's nodes ZSET, then this node's keys of the app. ARGV: me, live ms, keys ttl ms,
# then per key: its field count, field, value, ... (0 fields: the key is deleted).
# Replaces this node's keys of one app with what the node holds (after Redis lost some).
REWRITE = NOW + """
local at = 4
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
  local n = tonumber(ARGV[at])
  at = at + 1
  for j = 0, n - 1 do
    redis.call('HSET', KEYS[i], ARGV[at + 2 * j], ARGV[at + 2 * j + 1])
  end
  if n > 0 then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  at = at + 2 * n
end
local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The usage buckets of one app: KEYS[1] its hours ZSET, KEYS[2] the bucket of ARGV[1] (hour).
# ARGV: hour, keep seconds, then the caller's own arguments, fields from ARGV[first].
# A new bucket drops hours older than 48 from the list, like MemoryState (their hashes expire
# on their own, ``keep`` after their last write).
BUCKET_WRITE = """
local function bucket_write(hours_key, bucket, hour_s, keep, mode, first)
  local hour = tonumber(hour_s)
  if not redis.call('ZSCORE', hours_key, hour_s) then
    redis.call('ZREMRANGEBYSCORE', hours_key, '-inf', '(' .. (hour - """ + str(USAGE_KEEP_HOURS) + """))
    redis.call('ZADD', hours_key, hour, hour_s)
    redis.call('HSETNX', bucket, 'hour', hour_s)
  end
  for i = first, #ARGV, 2 do
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

# KEYS: hours zset, bucket. ARGV: hour, keep seconds, mode ("add" or "max"), field, value, ...
BUCKET = BUCKET_WRITE + """
bucket_write(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], 4)
"""

# KEYS: hours zset, traffic totals, this node's last applied flush, bucket. ARGV: hour, keep
# seconds, flush seq (0: none), field, value, ... (tab_seconds goes to the bucket only).
# One flush, all or nothing: totals and bucket together, and a flush already applied (its reply
# was lost, so the node retries it) is not counted again. Returns 1 if applied, 0 if skipped.
METER = BUCKET_WRITE + """
local seq = tonumber(ARGV[3])
if seq > 0 and (tonumber(redis.call('GET', KEYS[3])) or 0) >= seq then return 0 end
for i = 4, #ARGV, 2 do  -- checked before any write: a script that fails halfway keeps its writes
  if not tonumber(ARGV[i + 1]) then return redis.error_reply('not a number: ' .. ARGV[i]) end
end
if seq > 0 then redis.call('SET', KEYS[3], ARGV[3], 'EX', 3600) end
for i = 4, #ARGV, 2 do
  if ARGV[i] ~= 'tab_seconds' and ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
bucket_write(KEYS[1], KEYS[4], ARGV[1], ARGV[2], 'add', 4)
return 1
"""

# KEYS: nodes, usage source (the global slot). ARGV: me, ttl ms, a new usage source id.
# Renews this node; returns {1 if Redis did not know this node, usage source}.
HEARTBEAT = NOW + """
local now = now_ms()
local unknown = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'NX')
return {unknown, redis.call('GET', KEYS[2])}
"""

# KEYS: nodes. Claims the nodes whose heartbeat expired: each is returned to one caller only.
CLAIM_DEAD = NOW + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms())
for _, node in ipairs(dead) do redis.call('ZREM', KEYS[1], node) end
return dead
"""

# KEYS: a held-back webhook's mark. ARGV: the token of the hold. Deletes the mark only if it is
# still that hold (a later leave may have held the same key again): 1 if deleted.
RELEASE_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
