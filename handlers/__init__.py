"""HTTP handlers, app factory, auth, error mapping and the operator CLI of orgsettings."""

import warnings

# Connexion imports Starlette's test client at import time, and Starlette 1.x warns there that
# it prefers httpx2; the server never uses the test client, so keep that out of server logs.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
