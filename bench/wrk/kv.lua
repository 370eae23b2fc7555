-- wrk request script for the distkv benchmarks (scripts/bench.sh).
--
--   BENCH_OP=get   GET /kv/<key>, keys chosen at random from the key set
--   BENCH_OP=put   PUT /kv/<key> with a BENCH_VALUE_BYTES value: new keys
--                  ("new:<random tag>:<n>") unless BENCH_KEY_FILE is given,
--                  then the keys of the file in turn (overwrites)
--   BENCH_OP=load  PUT every key of the key set, in order, and stop once as
--                  many 2xx answers as keys (plus one round of connections)
--                  have come back. wrk cannot tell which request an answer
--                  belongs to, so the caller checks the store's key count
--                  afterwards and loads again if a key is missing.
--
-- The key set is BENCH_KEY_FILE (one key per line) or "key:<i>" for
-- i < BENCH_KEYS (default 10000). Keys are used as they are in the path:
-- give URL-safe keys.
local op = os.getenv("BENCH_OP") or "get"
local nkeys = tonumber(os.getenv("BENCH_KEYS") or "10000")
local value = string.rep("v", tonumber(os.getenv("BENCH_VALUE_BYTES") or "100"))
local file = os.getenv("BENCH_KEY_FILE")
local connections = tonumber(os.getenv("BENCH_CONNECTIONS") or "50")
local list = nil
if file and file ~= "" then
  list = {}
  for line in io.lines(file) do list[#list + 1] = line end
  nkeys = #list
end

math.randomseed(os.time())
local tag = tostring(math.random(1, 1000000000))
local n = 0
local acked = 0

local function key(i)  -- i >= 0
  if list then return list[(i % nkeys) + 1] end
  return "key:" .. (i % nkeys)
end

request = function()
  n = n + 1
  if op == "put" then
    if list then return wrk.format("PUT", "/kv/" .. key(n - 1), nil, value) end
    return wrk.format("PUT", "/kv/new:" .. tag .. ":" .. n, nil, value)
  elseif op == "load" then
    return wrk.format("PUT", "/kv/" .. key(n - 1), nil, value)
  end
  return wrk.format("GET", "/kv/" .. key(math.random(0, nkeys - 1)))
end

-- Only the load needs to look at answers; defining response() for every run
-- would make wrk parse each one into Lua and cost throughput.
if op == "load" then
  response = function(status, headers, body)
    if status >= 200 and status < 300 then acked = acked + 1 end
    if acked >= nkeys + connections then wrk.thread:stop() end
  end
end
