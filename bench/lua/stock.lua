-- Stock lookups of random SKUs. args: channel key, SKU count.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

function init(args)
  key, skus = args[1], tonumber(args[2])
  wrk.headers["Authorization"] = "Bearer " .. key
  math.randomseed(os.time() + thread_id)
end

function request()
  return wrk.format("GET", string.format("/api/v1/stock/SCALE-%05d", math.random(0, skus - 1)))
end
