#!/usr/bin/env bash
# Redocly CLI lint over both specs, as configured in redocly.yaml (`make lint-specs`).
#
# Redocly CLI 2.x ends every run under Node.js 20 with a boxed "Deprecation warning: Node.js
# 20 support is ending" notice on stderr, and has no option to turn it off. It is about the
# machine's Node.js (Debian's nodejs 20 here), not about this project: the pinned Redocly CLI
# supports Node.js 20; only its future releases will need Node.js 22.12+. The box is replaced
# by one line saying so; any other output (every finding) passes through unchanged, and
# Redocly's exit status is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
tools/node_modules/.bin/redocly lint "$@" 2>&1 | awk '
  /╔/ { boxed = 1; box = $0 "\n"; node20 = 0; next }
  boxed {
    box = box $0 "\n"
    if ($0 ~ /Node\.js 20 support is ending/) node20 = 1
    if ($0 ~ /╚/) {
      boxed = 0
      if (node20) print "(Redocly CLI notes that Node.js 20 is end-of-life; this pinned Redocly" \
        " runs on it, a later major will need Node.js 22.12+. See tools/redocly-lint.sh.)"
      else printf "%s", box
    }
    next
  }
  { print }
  END { if (boxed) printf "%s", box }
'
