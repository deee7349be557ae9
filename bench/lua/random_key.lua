-- GET /v1/organization with a different API key on every request, drawn at random from the file
-- named by the script's first argument (one key per line; bench/bulk_seed.py writes it). The
-- keys are read once per wrk thread, in init; the Authorization header given with -H is replaced
-- on every request.
local keys = {}

function init(args)
   local path = args[1]
   local file = assert(io.open(path or "", "r"), "random_key.lua: cannot open " .. tostring(path))
   for line in file:lines() do
      if #line > 0 then
         keys[#keys + 1] = line
      end
   end
   file:close()
   assert(#keys > 0, "random_key.lua: no keys in " .. path)
   math.randomseed(os.time())
end

function request()
   wrk.headers["Authorization"] = "Bearer " .. keys[math.random(#keys)]
   return wrk.format()
end
