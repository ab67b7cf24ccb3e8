-- wrk script: POST a realistic ~600-byte ticket, one distinct requester per request, no
-- Idempotency-Key; counts responses by status and prints one line of JSON at the end.
--
-- Env: BENCH_AUTH_HEADER / BENCH_AUTH_VALUE (e.g. "Authorization" / "Bearer hdk_..."),
--      BENCH_TAG (makes requester emails distinct between phases and runs),
--      BENCH_PATH (default /v1/tickets).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)           -- a global in that thread's Lua state
end

function init(args)
  counter = 0
  statuses = {}
  path = os.getenv("BENCH_PATH") or "/v1/tickets"
  tag = os.getenv("BENCH_TAG") or "bench"
  headers = {["Content-Type"] = "application/json"}
  local auth_header = os.getenv("BENCH_AUTH_HEADER")
  if auth_header and auth_header ~= "" then
    headers[auth_header] = os.getenv("BENCH_AUTH_VALUE")
  end
end

local template = '{"subject":"Order %s-%d-%d arrived damaged",' ..
  '"description":"The parcel arrived with a broken corner and the item inside is scratched. ' ..
  'I would like a replacement, or a refund if none is in stock. Photos are attached to the order page. ' ..
  '包裹一角破损，商品有划痕，请协助换货或退款。",' ..
  '"requester":{"name":"Bench User %d","email":"requester-%s-%d-%d@example.com","phone":"+86 138 %04d %04d"},' ..
  '"priority":"%s","type":"complaint","tags":["bench","damaged","logistics"],' ..
  '"custom_fields":{"order_no":"B-%d-%d","channel_ref":"wrk","region":"cn-east","value_cents":%d}}'
local priorities = {"low", "normal", "normal", "high", "urgent"}

function request()
  counter = counter + 1
  local body = string.format(template,
    tag, tid, counter,
    counter, tag, tid, counter, tid, counter % 10000,
    priorities[(counter % #priorities) + 1],
    tid, counter, (counter * 7919) % 100000)
  return wrk.format("POST", path, headers, body)
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
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ",")))
end
