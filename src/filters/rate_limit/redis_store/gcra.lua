-- switchyard's token bucket (GCRA), run atomically by Redis: one EVALSHA per request.
--
-- KEYS[1]  the bucket
-- ARGV[1]  rate: tokens added per `per`
-- ARGV[2]  per, in microseconds
-- ARGV[3]  burst: capacity in tokens
--
-- Time is Redis's own clock (TIME), so instances with skewed clocks agree.
-- Amounts are in units of microseconds x rate: one token is `per` units and
-- refill adds `rate` units per microsecond, so every number is an integer and
-- nothing drifts (exact while burst x per < 2^53, e.g. 10^6 tokens per hour).
-- The value is "<t> <m>": Redis time of the last take (us) and how many units
-- the bucket was below full just after it. The key expires when the bucket
-- would be full again, so an idle client costs nothing.
--
-- Returns {allowed 0|1, whole tokens remaining, microseconds until a token}.

-- Redis < 5 replicates scripts verbatim and refuses writes after TIME unless
-- told to replicate effects; later versions always do (and keep a no-op).
if redis.replicate_commands then
  redis.replicate_commands()
end

local rate = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cap = burst * per

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local missing = 0
local state = redis.call('GET', KEYS[1])
if state then
  local last, m = string.match(state, '^(%d+) (%d+)$')
  if last then
    local elapsed = now - tonumber(last)
    if elapsed < 0 then
      -- Redis's clock stepped back (e.g. a failover): count no refill.
      elapsed = 0
    end
    missing = tonumber(m) - elapsed * rate
    if missing < 0 then
      missing = 0
    end
  end
end

local after = missing + per
if after <= cap then
  local ttl_ms = math.ceil(after / rate / 1000)
  redis.call('SET', KEYS[1], string.format('%.0f %.0f', now, after),
    'PX', string.format('%.0f', ttl_ms))
  return {1, math.floor((cap - after) / per), 0}
end
return {0, math.floor((cap - missing) / per), math.ceil((after - cap) / rate)}
