-- A plain-order rush (no flash sale): every attempt its own Idempotency-Key and buyer, a pickup of one unit.
-- args: channel key, sku, store, attempts per thread, run prefix.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local counter = 0

function init(args)
  sku, store, prefix = args[2], args[3], args[5]
  limit = tonumber(args[4])
  wrk.method = "POST"
  wrk.path = "/api/v1/orders"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
end

function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d", prefix, thread_id, counter)
  wrk.headers["Idempotency-Key"] = id
  return wrk.format(nil, nil, nil, string.format(
    '{"lines":[{"sku":"%s","qty":1}],"buyer":{"id":"%s","name":"Rush","phone":"13800000000"},'
    .. '"fulfillment":{"type":"pickup","store_id":"%s"}}', sku, id, store))
end
