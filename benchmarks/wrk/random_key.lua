-- GET BENCH_PREFIX .. K for a key K drawn uniformly from 0 .. BENCH_KEYS - 1.
local prefix = os.getenv("BENCH_PREFIX")
local keys = tonumber(os.getenv("BENCH_KEYS"))
math.randomseed(7)

function request()
  return wrk.format("GET", prefix .. math.random(0, keys - 1))
end

if bench_needs_response() then
  function response(status, headers, body)
    bench_count()
  end
end
