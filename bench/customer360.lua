-- wrk script: GET a path over random customers, e.g. /v1/customers/{id}/360; counts responses
-- by status, prints WRK_JSON with p95.
--
-- Env: BENCH_IDS_FILE (one customer id a line), BENCH_PATH (with "{id}" where the id goes),
--      BENCH_AUTH_HEADER / BENCH_AUTH_VALUE (optional).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  statuses = {}
  headers = {}
  local auth_header = os.getenv("BENCH_AUTH_HEADER")
  if auth_header and auth_header ~= "" then
    headers[auth_header] = os.getenv("BENCH_AUTH_VALUE")
  end
  path = os.getenv("BENCH_PATH")
  ids = {}
  for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
    if line ~= "" then table.insert(ids, line) end
  end
  if #ids == 0 then error("no ids in BENCH_IDS_FILE") end
  math.randomseed(os.time() + tid * 7919)
end

function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", (path:gsub("{id}", id)), headers, nil)
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for code, n in pairs(s) do merged[code] = (merged[code] or 0) + n end
    end
  end
  local parts = {}
  for code, n in pairs(merged) do table.insert(parts, string.format('"%d":%d', code, n)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ",")))
end
