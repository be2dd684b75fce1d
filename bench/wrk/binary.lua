-- wrk script for bench/grpc.sh: POSTs one v2 REST infer request with the binary tensor data
-- extension on every call, and prints one machine-readable result line when the run is done:
--
--   wrk-result: {"requests":...,"rps":...,"p50_us":...,"p99_us":...,"bad_status":...,"bad_length":...,...,"errors":...}
--
-- The body (a JSON header followed by the tensor's bytes) is read from a file written by
-- bench/Client (`bodies`); environment:
--
--   BENCH_BODY            the body file (required)
--   BENCH_HEADER_LENGTH   the JSON header's length in bytes, sent as Inference-Header-Content-Length (required)
--   BENCH_RESPONSE_BYTES  the length every correct answer has (bench/grpc.sh learns it from a checked call);
--                         an answer of another length counts in bad_length. Unset or 0: not checked.
--
-- Every response goes through the `response` callback: a status outside 200-299 counts in
-- bad_status, a 2xx answer of the wrong length in bad_length (a binary answer's length is fixed
-- by its JSON header and its tensors, so a wrong one is a wrong answer). "errors" is their sum
-- plus wrk's socket errors and timeouts.
--
-- Alone: BENCH_BODY=f.body BENCH_HEADER_LENGTH=175 wrk -t2 -c32 -d10s -s bench/wrk/binary.lua \
--            http://127.0.0.1:PORT/v2/models/double/infer

local body_path = os.getenv("BENCH_BODY")
local header_length = tonumber(os.getenv("BENCH_HEADER_LENGTH") or "")
local expected_length = tonumber(os.getenv("BENCH_RESPONSE_BYTES") or "0") or 0

if not body_path or not header_length then
   io.stderr:write("binary.lua: set BENCH_BODY (the body file) and BENCH_HEADER_LENGTH (its JSON header's length)\n")
   os.exit(2)
end

local file = io.open(body_path, "rb")
if not file then
   io.stderr:write("binary.lua: cannot open BENCH_BODY '" .. body_path .. "'\n")
   os.exit(2)
end
local body = file:read("*a")
file:close()
if header_length < 0 or header_length > #body then
   io.stderr:write(string.format("binary.lua: BENCH_HEADER_LENGTH %d does not fit the %d-byte body\n", header_length, #body))
   os.exit(2)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = tostring(header_length)
wrk.body = body

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   bad_status = 0
   bad_length = 0
end

function response(status, headers, response_body)
   if status < 200 or status > 299 then
      bad_status = bad_status + 1
   elseif expected_length > 0 and #response_body ~= expected_length then
      bad_length = bad_length + 1
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   local status_total, length_total = 0, 0
   for _, thread in ipairs(threads) do
      status_total = status_total + (thread:get("bad_status") or 0)
      length_total = length_total + (thread:get("bad_length") or 0)
   end
   local seconds = summary.duration / 1e6
   local rps = 0
   if seconds > 0 then
      rps = summary.requests / seconds
   end
   io.write(string.format(
      'wrk-result: {"requests":%d,"duration_s":%.3f,"rps":%.2f,"bytes":%d,' ..
      '"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"bad_status":%d,"bad_length":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
      '"errors":%d}\n',
      summary.requests, seconds, rps, summary.bytes,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      status_total, length_total, errors.connect, errors.read, errors.write, errors.timeout,
      status_total + length_total + errors.connect + errors.read + errors.write + errors.timeout))
end
