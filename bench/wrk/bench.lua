-- wrk script for bench/run.sh. Everything comes from the environment, so one script serves
-- every workload:
--   BENCH_METHOD   GET | POST | PUT                    (default GET)
--   BENCH_BODY     request body file                  (optional)
--   BENCH_BODY_B   a second body file: requests alternate between the two (writes that
--                  always change something)
--   BENCH_H1..H6   "Name: value" request headers
--   BENCH_DELAY_MS per-connection pause before each request (a rate-limited run)
--   BENCH_MULTI    a file of "app key" lines: requests go round the apps in turn, each to
--                  BENCH_MULTI_PATH with "{app}" replaced, "Authorization: Bearer key", and
--                  the body's "app" set to the app; each app alternates BENCH_BODY/BENCH_BODY_B
-- `done` prints one machine-readable RESULT line (latencies in microseconds).

local function slurp(path)
  if path == nil or path == "" then return nil end
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local method = os.getenv("BENCH_METHOD") or "GET"
local body_a = slurp(os.getenv("BENCH_BODY"))
local body_b = slurp(os.getenv("BENCH_BODY_B"))
local headers = {}
for i = 1, 6 do
  local h = os.getenv("BENCH_H" .. i)
  if h and h ~= "" then
    local k, v = h:match("^([^:]+):%s*(.*)$")
    headers[k] = v
  end
end
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

local multi = slurp(os.getenv("BENCH_MULTI"))
if multi then
  local apps = {}
  for app, key in multi:gmatch("(%S+)%s+(%S+)") do apps[#apps + 1] = { app = app, key = key, n = 0 } end
  assert(#apps > 0, "BENCH_MULTI lists no apps")
  local template = os.getenv("BENCH_MULTI_PATH") or "/api/v1/apps/{app}/flags"
  local i = 0
  request = function()
    i = i % #apps + 1
    local a = apps[i]
    a.n = a.n + 1
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    h["Authorization"] = "Bearer " .. a.key
    local b = body_a
    if body_b and a.n % 2 == 1 then b = body_b end
    if b then b = b:gsub('"app"%s*:%s*"[^"]*"', '"app":"' .. a.app .. '"', 1) end
    return wrk.format(method, (template:gsub("{app}", a.app)), h, b)
  end
elseif body_b then
  local n = 0
  request = function()
    n = n + 1
    if n % 2 == 0 then
      return wrk.format(method, nil, headers, body_a)
    end
    return wrk.format(method, nil, headers, body_b)
  end
else
  wrk.method = method
  wrk.body = body_a
  for k, v in pairs(headers) do wrk.headers[k] = v end
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f bytes=%d err_status=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, summary.bytes,
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
