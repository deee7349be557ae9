-- PATCH /v1/organization with a message_retention_days that changes on every request (30..365),
-- so each PATCH is an effective change. Authorization comes from wrk's -H option.
wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/json"

local n = 0

function request()
   n = n + 1
   local body = string.format('{"message_retention_days": %d}', 30 + n % 336)
   return wrk.format(nil, nil, nil, body)
end
