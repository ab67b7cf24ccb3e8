-- wrk script: POST a ~600-byte ticket whose requester varies per request, then print JSON stats.
-- Env: BENCH_PATH, BENCH_AUTH_HEADER, BENCH_AUTH_VALUE.
local counter = 0
local thread_id = 0
local threads = {}
local path = os.getenv("BENCH_PATH") or "/v1/tickets"
local auth_header = os.getenv("BENCH_AUTH_HEADER")
local auth_value = os.getenv("BENCH_AUTH_VALUE")

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

local template = '{"subject":"Order %d-%d arrived damaged / 订单货物破损",' ..
  '"description":"The parcel arrived with a broken corner and the item inside is scratched. Please advise on a replacement or refund. 包裹一角破损，商品有划痕，请协助换货或退款。",' ..
  '"requester":{"name":"Bench User %d","email":"bench-%d-%d@example.com","phone":"+86 138 0000 %04d"},' ..
  '"priority":"%s","type":"complaint","tags":["bench","damaged","logistics"],' ..
  '"custom_fields":{"order_no":"B-%d-%d","channel_ref":"wrk","region":"cn-east"}}'
local priorities = {"low", "normal", "high", "urgent"}

function request()
  counter = counter + 1
  local user = counter % 5000
  local body = string.format(template, thread_id, counter, user, thread_id, user, user % 10000,
    priorities[(counter % 4) + 1], thread_id, counter)
  local headers = {["Content-Type"] = "application/json"}
  if auth_header then headers[auth_header] = auth_value end
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
