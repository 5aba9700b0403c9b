-- Page through a source like a client does: each answer's iterkey is continued exactly once
-- (BENCH_PREFIX .. ITERKEY .. "/" .. BENCH_CHUNK); when no continuation is pending, a new pass
-- starts with BENCH_PREFIX .. BENCH_CHUNK. So every connection walks the whole source.
local prefix = os.getenv("BENCH_PREFIX")
local chunk = os.getenv("BENCH_CHUNK")
local pending = {}

function request()
  local iterkey = table.remove(pending)
  if iterkey then
    return wrk.format("GET", prefix .. iterkey .. "/" .. chunk)
  end
  return wrk.format("GET", prefix .. chunk)
end

function response(status, headers, body)
  local at = string.find(body, '"iterkey"', 1, true)
  if at then
    local iterkey = string.match(body, '^"iterkey":%s*"([^"]+)"', at)
    if iterkey then
      table.insert(pending, iterkey)
    end
  end
  bench_count()
end
