-- POST one fixed JSON body, given as the script's first argument (after --): the same bytes on
-- every request (run.py passes the endpoint's body, the one its preflight sent). The request is
-- built once per thread (wrk.init formats it after init). Authorization comes from wrk's -H.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
   assert(args[1] and #args[1] > 0, "body.lua: BODY missing")
   wrk.body = args[1]
end
