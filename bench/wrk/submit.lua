-- POST /ai/jobs (or the reference endpoint) with a unique client_request_id per request.
-- BENCH_RUN makes ids unique across runs; BENCH_AUTH is the Authorization header, if any.
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local auth = os.getenv("BENCH_AUTH")
local counter = 0
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_number", next_thread)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"client_request_id":"%s-%d-%d","prompt":"Summarise the benchmark in one line."}',
    run, thread_number, counter)
  local headers = { ["Content-Type"] = "application/json" }
  if auth then headers["Authorization"] = auth end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
