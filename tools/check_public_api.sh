#!/usr/bin/env bash
# Fails when handlers/ or storage/ use a private name of a framework (Connexion, Starlette, the
# ASGI server, sqlite-utils, psycopg) or a raw connexion_* scope key: they break on the next
# release. Frameworks are used through their public, documented API only.
set -u
cd "$(dirname "$0")/.."
fw='connexion|starlette|flask|werkzeug|uvicorn|granian|hypercorn|sqlite_utils|psycopg'
found=$( {
  grep -rnE "from ($fw)[a-z_.]* import [^#]*\b_[a-z]" handlers storage
  grep -rnE "\b($fw)(\.[a-z_]+)*\._[a-z]" handlers storage
  grep -rnE "\._(middleware_app|build_middleware_stack|uri_parser_class|validator_map|accepts_kwarg|insert_messages|schema|nullable|required|operation)\b|connexion_routing|connexion_context" handlers storage
} 2>/dev/null | sort -u)
if [ -n "$found" ]; then
  echo "Private framework names in use (use the public API):"
  echo "$found"
  exit 1
fi
echo "public API only: ok"
