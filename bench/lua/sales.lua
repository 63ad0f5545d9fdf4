-- POS receipts, each with its own receipt_id: args store, key, sku count, receipts per request (0: single),
-- run prefix, sold_at.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local counter = 0

function init(args)
  store, skus, batch, prefix, sold_at = args[1], tonumber(args[3]), tonumber(args[4]), args[5], args[6]
  wrk.method = "POST"
  wrk.path = "/api/v1/stores/" .. store .. "/sales"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  math.randomseed(os.time() + thread_id)
end

local function receipt()
  counter = counter + 1
  return string.format('{"receipt_id":"%s-%d-%d","sold_at":"%s","lines":[{"sku":"BENCH-%03d","qty":1}]}',
    prefix, thread_id, counter, sold_at, math.random(0, skus - 1))
end

function request()
  if batch == 0 then
    return wrk.format(nil, nil, nil, receipt())
  end
  local parts = {}
  for i = 1, batch do parts[i] = receipt() end
  return wrk.format(nil, nil, nil, '{"receipts":[' .. table.concat(parts, ",") .. ']}')
end
