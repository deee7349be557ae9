-- POST /v1/missed_calls. Script arguments (after --): TAG FIRST AT.
-- Every request is a new call ("bench-TAG-N", TAG unique per wrk run) from a NEW caller, so
-- every one is a write: the remembered answer and the caller's contact-protection row, in one
-- transaction. Callers are counted from FIRST (run.py hands each wrk run the next unused one)
-- through +1 AAA 3XX XXXX: 1,000,000 per area code, area codes in AREAS order, all in
-- America/Los_Angeles and valid canonical E.164 (bench/README.md says how that was checked);
-- inbound.lua's STOPs use 2XX exchanges, so no caller is opted out. AT is the call's instant
-- (11:00 Pacific: outside quiet hours, so the answer is send). Authorization: wrk's -H.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local AREAS = { 415, 628, 510, 650, 408, 925, 707, 209 }
local PER_AREA = 1000000

local tag, first, at
local n = 0

function init(args)
   tag, first, at = args[1], tonumber(args[2] or "0"), args[3]
   assert(tag and #tag > 0, "missed_call.lua: TAG missing")
   assert(at and #at > 0, "missed_call.lua: AT missing")
end

local function caller(index)
   local area = AREAS[math.floor(index / PER_AREA) + 1]
   assert(area, "missed_call.lua: out of new callers")
   local rest = index % PER_AREA
   return string.format("+1%d%03d%04d", area, 300 + math.floor(rest / 10000), rest % 10000)
end

function request()
   local body = string.format(
      '{"id": "bench-%s-%d", "from": "%s", "contact_name": "Dana", "at": "%s"}',
      tag, n, caller(first + n), at
   )
   n = n + 1
   return wrk.format(nil, nil, nil, body)
end
