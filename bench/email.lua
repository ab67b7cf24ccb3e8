-- wrk script: POST a realistic raw e-mail (message/rfc822) with a unique Message-ID and sender
-- per request to the e-mail channel's intake; counts responses by status, prints WRK_JSON.
--
-- Env: BENCH_AUTH_HEADER / BENCH_AUTH_VALUE, BENCH_TAG, BENCH_PATH (default /v1/channels/email/inbound).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  counter = 0
  statuses = {}
  path = os.getenv("BENCH_PATH") or "/v1/channels/email/inbound"
  tag = os.getenv("BENCH_TAG") or "bench"
  headers = {["Content-Type"] = "message/rfc822"}
  local auth_header = os.getenv("BENCH_AUTH_HEADER")
  if auth_header and auth_header ~= "" then
    headers[auth_header] = os.getenv("BENCH_AUTH_VALUE")
  end
end

-- "订单问题 / order problem" as an RFC 2047 encoded word, a multipart/alternative body
local template = table.concat({
  "From: =?UTF-8?B?546L5bCP5piO?= <mail-%s-%d-%d@example.com>",
  "To: support@example.com",
  "Subject: =?UTF-8?B?6K6i5Y2V6Zeu6aKY?= / order problem %d",
  "Date: Mon, 23 Nov 2026 10:00:00 +0800",
  "Message-ID: <bench-%s-%d-%d@mail.example.com>",
  "MIME-Version: 1.0",
  "Content-Type: multipart/alternative; boundary=\"b1\"",
  "",
  "--b1",
  "Content-Type: text/plain; charset=UTF-8",
  "Content-Transfer-Encoding: 8bit",
  "",
  "Hello, my order B-%d arrived damaged. Please send a replacement.",
  "您好，我的订单到货时已损坏，请尽快补发。",
  "--b1",
  "Content-Type: text/html; charset=UTF-8",
  "",
  "<p>Hello, my order <b>B-%d</b> arrived damaged.</p><p>您好，我的订单到货时已损坏。</p>",
  "--b1--",
  ""}, "\r\n")

function request()
  counter = counter + 1
  local body = string.format(template, tag, tid, counter, counter, tag, tid, counter, counter, counter)
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
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ",")))
end
