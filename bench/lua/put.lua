-- PUT .../contact-protection-settings with a contactProtectionPeriod that changes on every
-- request (0..720). Authorization comes from wrk's -H option; the URL carries the org id.
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"

local n = 0

function request()
   n = n + 1
   local body = string.format('{"contactProtectionPeriod": %d}', n % 721)
   return wrk.format(nil, nil, nil, body)
end
