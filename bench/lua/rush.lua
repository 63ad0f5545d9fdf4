-- A flash-sale rush: every attempt its own Idempotency-Key and buyer. args: sale id, channel key,
-- attempts per thread, run prefix.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local counter = 0

function init(args)
  sale, prefix = args[1], args[4]
  limit = tonumber(args[3])
  wrk.method = "POST"
  wrk.path = "/api/v1/flash-sales/" .. sale .. "/orders"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d", prefix, thread_id, counter)
  wrk.headers["Idempotency-Key"] = id
  return wrk.format(nil, nil, nil, string.format('{"qty":1,"buyer":{"id":"%s"}}', id))
end
