-- Shared by the bench's wrk scripts: per-thread ids, status counts, and one JSON line at the end
-- ("BENCH {...}") that bench/wrk.py reads.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

statuses = {}
answered = 0
limit = 0          -- responses this thread answers before it stops (0: run for the duration)

function response(status, headers, body)
  statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  answered = answered + 1
  if limit > 0 and answered == limit then
    -- wrk itself sleeps for the whole -d duration: tell bench/wrk.py this thread is done, so it
    -- interrupts wrk (SIGINT) once every thread is, and the duration wrk reports is the real one.
    io.write("BENCH-THREAD-DONE\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do
      total[k] = (total[k] or 0) + v
    end
  end
  local lag = 0      -- the largest lateness of a paced script's requests (0 for the others)
  for _, t in ipairs(threads) do
    lag = math.max(lag, t:get("max_lag_ms") or 0)
  end
  local parts = {}
  for k, v in pairs(total) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_lag_ms":%d,'
    .. '"statuses":{%s}}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), lag, table.concat(parts, ",")))
end
