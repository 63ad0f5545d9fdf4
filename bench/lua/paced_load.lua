-- The sync figure's background load, open loop on the clock: POS sales and pickup orders at a fixed pace.
-- args: store, store key, channel key, SKU count, sales/s, orders/s, run prefix, sold_at.
-- Each thread owns an equal share of the pace as a row of due times; a connection that is free takes the next
-- due time and waits for it (delay), so a slow hub makes requests late (the lag, reported as a backlog), never
-- fewer asked. wrk has no wall clock for Lua: LuaJIT's ffi reads CLOCK_MONOTONIC.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local counter, due, step, order_every, threads_n = 0, nil, nil, 0, 1
max_lag_ms = 0

function init(args)
  store, store_key, channel_key, skus = args[1], args[2], args[3], tonumber(args[4])
  local sales, orders = tonumber(args[5]), tonumber(args[6])
  prefix, sold_at, threads_n = args[7], args[8], tonumber(args[9])
  step = 1000 * threads_n / (sales + orders)                  -- ms between this thread's requests
  order_every = orders > 0 and math.floor((sales + orders) / orders + 0.5) or 0
  due = now_ms()
  math.randomseed(os.time() + thread_id)
end

function delay()
  local now, slot = now_ms(), due
  due = due + step
  if now - slot > max_lag_ms then max_lag_ms = now - slot end
  return slot > now and math.floor(slot - now) or 0
end

function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d", prefix, thread_id, counter)
  local sku = string.format("BENCH-%03d", math.random(0, skus - 1))
  if order_every > 0 and counter % order_every == 0 then
    return wrk.format("POST", "/api/v1/orders",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. channel_key,
       ["Idempotency-Key"] = id},
      string.format('{"lines":[{"sku":"%s","qty":1}],"buyer":{"id":"load-%s","name":"Load","phone":"13800000000"},'
        .. '"fulfillment":{"type":"pickup","store_id":"%s"}}', sku, id, store))
  end
  return wrk.format("POST", "/api/v1/stores/" .. store .. "/sales",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. store_key},
    string.format('{"receipt_id":"L%s","sold_at":"%s","lines":[{"sku":"%s","qty":1}]}', id, sold_at, sku))
end
