-- wrk request script for distkv benchmarks (scripts/bench.sh).
--   BENCH_OP=get   GET /kv/<key> of existing keys, chosen at random
--   BENCH_OP=put   PUT /kv/<key> with a BENCH_VALUE_BYTES value; new keys unless BENCH_KEY_FILE
-- Keys come from BENCH_KEY_FILE (one per line) or are "key:<i>" for i < BENCH_KEYS.
local op = os.getenv("BENCH_OP") or "get"
local nkeys = tonumber(os.getenv("BENCH_KEYS") or "10000")
local value = string.rep("v", tonumber(os.getenv("BENCH_VALUE_BYTES") or "100"))
local file = os.getenv("BENCH_KEY_FILE")
local list = nil
if file and file ~= "" then
  list = {}
  for line in io.lines(file) do list[#list + 1] = line end
  nkeys = #list
end
local n = 0
local tag = tostring(math.random(1, 1000000000))

local function key(i)
  if list then return list[(i % nkeys) + 1] end
  return "key:" .. (i % nkeys)
end

request = function()
  n = n + 1
  if op == "put" then
    if list then
      return wrk.format("PUT", "/kv/" .. key(n), nil, value)
    end
    return wrk.format("PUT", "/kv/new:" .. tag .. ":" .. n, nil, value)
  end
  return wrk.format("GET", "/kv/" .. key(math.random(0, nkeys - 1)))
end
