-- POST /v1/inbound_messages. Script arguments (after --): MODE TAG FIRST.
--   MODE "stop": body "STOP" from a NEW number on every request, so every request is a write
--     (ledger entry, opt_out.created event, remembered answer). The numbers are counted from
--     FIRST (run.py hands each wrk run the next unused one) through +1 AAA 2XX XXXX: 1,000,000
--     per area code, area codes in AREAS order (every one possible, valid and canonical E.164
--     for the phonenumbers library; bench/README.md says how that was checked).
--   MODE "chat": body "See you at 5" (not a keyword: read-only, one lookup of the remembered
--     id) from one fixed number.
-- Every request has a new message id, "bench-TAG-N" (TAG is unique per wrk run), so no request
-- is a replay of an earlier one. Authorization comes from wrk's -H option.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local AREAS = { 415, 628, 510, 650, 408, 925, 707, 209 }
local PER_AREA = 1000000
local TO = "+14155550100"
local CHAT_FROM = "+14155550123"

local mode, tag, first
local n = 0

function init(args)
   mode, tag, first = args[1], args[2], tonumber(args[3] or "0")
   assert(mode == "stop" or mode == "chat", "inbound.lua: MODE must be stop or chat")
   assert(tag and #tag > 0, "inbound.lua: TAG missing")
end

local function number(index)
   local area = AREAS[math.floor(index / PER_AREA) + 1]
   assert(area, "inbound.lua: out of new numbers")
   local rest = index % PER_AREA
   return string.format("+1%d%03d%04d", area, 200 + math.floor(rest / 10000), rest % 10000)
end

function request()
   local from, text
   if mode == "stop" then
      from, text = number(first + n), "STOP"
   else
      from, text = CHAT_FROM, "See you at 5"
   end
   local body = string.format(
      '{"id": "bench-%s-%d", "from": "%s", "to": "%s", "body": "%s"}', tag, n, from, TO, text
   )
   n = n + 1
   return wrk.format(nil, nil, nil, body)
end
