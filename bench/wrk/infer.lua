-- wrk script for bench/rest.sh: POSTs one Open Inference Protocol v2 infer request for the
-- `double` model (a 2x2 FP32 tensor) on every call, and prints one machine-readable result
-- line when the run is done:
--
--   wrk-result: {"requests":...,"rps":...,"p50_us":...,"p99_us":...,"non2xx":...,...}
--
-- By default every response goes through the Lua `response` callback so that non2xx counts
-- each status outside 200-299 exactly. With BENCH_STRICT=0 that callback is not defined and
-- non2xx falls back to wrk's own counter, which only sees statuses >= 400 (and spares wrk
-- the per-response Lua call; at these rates the difference measured was within noise).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"bench","inputs":[{"name":"input","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}'

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local strict = os.getenv("BENCH_STRICT") ~= "0"

if strict then
   function init(args)
      non2xx = 0
   end

   function response(status, headers, body)
      if status < 200 or status > 299 then
         non2xx = non2xx + 1
      end
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   local non2xx = errors.status
   if strict then
      non2xx = 0
      for _, thread in ipairs(threads) do
         non2xx = non2xx + (thread:get("non2xx") or 0)
      end
   end
   local seconds = summary.duration / 1e6
   local rps = 0
   if seconds > 0 then
      rps = summary.requests / seconds
   end
   io.write(string.format(
      'wrk-result: {"requests":%d,"duration_s":%.3f,"rps":%.2f,"bytes":%d,' ..
      '"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"strict":%s}\n',
      summary.requests, seconds, rps, summary.bytes,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      non2xx, errors.connect, errors.read, errors.write, errors.timeout, tostring(strict)))
end
