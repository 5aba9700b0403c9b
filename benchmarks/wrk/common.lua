-- Shared by every workload: an optional request cap and a machine-readable summary.
-- The runner concatenates this file with one workload file and passes settings in BENCH_* vars.
local cap = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local answered = 0

-- Count one response; stop this thread once the cap is reached (wrk itself stops at -d).
function bench_count()
  answered = answered + 1
  if cap > 0 and answered >= cap then
    wrk.thread:stop()
  end
end

-- Only workloads that need a response hook pay for one: wrk skips Lua per response otherwise.
function bench_needs_response()
  return cap > 0
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
