-- The same request every time: GET the URL's path, or BENCH_METHOD with BENCH_BODY (JSON).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

if bench_needs_response() then
  function response(status, headers, body)
    bench_count()
  end
end
