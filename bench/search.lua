-- wrk script: GET /v1/tickets?q=<term> cycling through Chinese and English search terms of
-- varied selectivity; counts responses by status, prints WRK_JSON with p95.
--
-- Env: BENCH_AUTH_HEADER / BENCH_AUTH_VALUE.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- percent-encoded UTF-8: 退款 申请退款 发票 物流 打印机 登录失败, then English words
local terms = {
  "%E9%80%80%E6%AC%BE", "%E7%94%B3%E8%AF%B7%E9%80%80%E6%AC%BE", "%E5%8F%91%E7%A5%A8",
  "%E7%89%A9%E6%B5%81", "%E6%89%93%E5%8D%B0%E6%9C%BA", "%E7%99%BB%E5%BD%95%E5%A4%B1%E8%B4%A5",
  "refund", "invoice", "printer+offline", "password", "damaged", "shipping+delay", "warranty", "B-4242",
}

function init(args)
  counter = 0
  statuses = {}
  headers = {}
  local auth_header = os.getenv("BENCH_AUTH_HEADER")
  if auth_header and auth_header ~= "" then
    headers[auth_header] = os.getenv("BENCH_AUTH_VALUE")
  end
end

function request()
  counter = counter + 1
  local term = terms[((counter + tid * 7) % #terms) + 1]
  return wrk.format("GET", "/v1/tickets?limit=25&q=" .. term, headers, nil)
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
