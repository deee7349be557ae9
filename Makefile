# orgsettings: `make run` serves the demo, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 2212

.PHONY: install npm run test unit unit-sqlite unit-postgresql contract-local contract lint lint-specs \
	format bench clean

# pip (26.x here) passes on the build backend's warnings for a local project. setuptools' editable
# install of this flat layout (handlers/ and storage/ at the root) always adds an informational
# "Editable installation. Please be careful with folders in your working directory with the
# same name as your package" note; it asks nothing of anyone, so that one note is filtered
# (by its message; any other backend warning still shows).
PIP := PYTHONWARNINGS='ignore:Editable installation:UserWarning' $(BIN)/python -m pip

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## create .venv and install pinned dependencies

# Pinned Node tools (Redocly CLI, Spectral and its OWASP ruleset, openapi-typescript, TypeScript)
# from tools/package-lock.json; `npm ci` reinstalls them whenever the lock file changes.
# SCARF_ANALYTICS=false: Spectral depends on @scarf/scarf, whose install script would report
# the install to its vendor.
NPM_STAMP := tools/node_modules/.installed
$(NPM_STAMP): tools/package.json tools/package-lock.json
	SCARF_ANALYTICS=false npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

npm: $(NPM_STAMP) ## install the pinned Node tools into tools/node_modules

run: install ## create the demo organization, keys and tokens, then serve on $(HOST):$(PORT)
	$(BIN)/orgsettings demo --host $(HOST) --port $(PORT)
	$(BIN)/orgsettings serve --host $(HOST) --port $(PORT)

# Schemathesis runs first and pytest last, so the run ends on pytest's summary line. Both run
# once over SQLite and once over PostgreSQL.
test: install lint contract-local unit ## every test: lint, Schemathesis against live servers, pytest

# The PostgreSQL passes run inside a throwaway cluster: tools/postgres_cluster.py installs
# Debian's `postgresql` when its server binaries are missing, starts a cluster as an
# unprivileged user in a temporary directory on a free loopback port, runs the command with
# ORGSETTINGS_TEST_POSTGRES set to it, then stops the cluster and removes the directory.
PG_CLUSTER := $(BIN)/python tools/postgres_cluster.py run --
# Each backend's suite runs in TEST_PROCESSES processes (pytest-xdist), a whole test file per
# process at a time (`--dist loadfile`: module fixtures and module-wide figures stay in one
# process). Two cut the wall time by 30-40% on a two-core machine; the tests that depend on timing
# already pass with the other core saturated. TEST_PROCESSES=0 runs one process, as before.
TEST_PROCESSES ?= 2
PYTEST     := $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) --dist loadfile

unit: unit-sqlite unit-postgresql

unit-sqlite: install npm ## pytest over SQLite
	$(PYTEST)

unit-postgresql: install npm ## pytest over PostgreSQL (a throwaway cluster)
	$(PG_CLUSTER) env ORGSETTINGS_TEST_BACKEND=postgresql $(PYTEST)

# Schemathesis against a throwaway live server: the v1 spec with a key holding every scope, the
# dashboard spec with an ADMIN token and again with a SUPERADMIN token, paths steered to a real
# organization. `--checks all`, all four phases, CONTRACT_MAX_EXAMPLES (40) examples per
# operation, stateful scenarios of up to CONTRACT_STATEFUL_MAX_STEPS (20) linked calls; the v1
# pass repeats fuzzing and stateful suites for CONTRACT_V1_MAX_TIME (60) seconds, so the
# stateful phase follows every link of the spec. No check is excluded. positive_data_acceptance also accepts, on a few operations
# only, the statuses of rules JSON Schema cannot express (v1 PATCH: 412 stale If-Match, 422
# cross-field and state rules; v1 audit_events and opt_outs lists: 422 forged cursor; the
# ledger, inbound, send-decision and missed-call operations: 422 a phone number phonenumbers
# finds impossible, an unknown zone, an `at` out of range; dashboard missed-call PUT: 400
# placeholder/enable rules); the reasons are in tests/contract.py. Every pass runs against a
# server over SQLite, then against one over PostgreSQL.
contract-local: install
	$(BIN)/python tests/contract.py --local
	$(PG_CLUSTER) $(BIN)/python tests/contract.py --local --postgresql

# The same Schemathesis configuration against any deployment:
#   make contract URL=https://staging.example.com/v1 TOKEN=am_live_... [SPEC=openapi/v1.yaml]
#   make contract URL=https://staging.example.com/api TOKEN=<jwt> SPEC=openapi/dashboard.yaml ORG=<id>
contract: install
	@test -n "$(URL)" -a -n "$(TOKEN)" || { echo "usage: make contract URL=... TOKEN=... [SPEC=...] [ORG=...]"; exit 2; }
	$(BIN)/python tests/contract.py --url "$(URL)" --token "$(TOKEN)" --spec "$(or $(SPEC),openapi/v1.yaml)" $(if $(ORG),--org-id "$(ORG)")

lint: install lint-specs ## ruff, openapi-spec-validator, Redocly and Spectral lint, public framework API only
	$(BIN)/ruff check handlers storage tests bench
	bash tools/check_public_api.sh
	$(BIN)/python -m openapi_spec_validator openapi/v1.yaml openapi/dashboard.yaml

# Redocly CLI `recommended-strict` (the `recommended` rules, warnings counted as errors) over
# both specs, as configured in redocly.yaml (tools/redocly-lint.sh says why it filters one
# notice).
# Then Spectral: `spectral:oas` and the OWASP API Security ruleset, configured in
# tools/spectral.yaml, which names every rule turned off and why. Errors fail the build;
# warnings are printed (there are none today).
SPECTRAL := tools/node_modules/.bin/spectral lint --ruleset tools/spectral.yaml --fail-severity=error
lint-specs: npm
	tools/redocly-lint.sh
	$(SPECTRAL) openapi/v1.yaml openapi/dashboard.yaml

format: install
	$(BIN)/ruff format handlers storage tests bench
	$(BIN)/ruff check --fix handlers storage tests bench

# Benchmark (bench/README.md): orgsettings against stock Connexion (FlaskApp and AsyncApp), FastAPI and a Starlette
# ceiling, server pinned to CPU 0 and wrk to CPU 1. BENCH_SECONDS (5) sets each measured run, BENCH_ROUNDS (3) the interleaved rounds.
# Installs the `bench` extra, and wrk from Debian when it is missing. Then the opt-out ledger at
# 1,000,000 entries against one (bench/ledger_scale.py; BENCH_LEDGER=0 skips it).
bench: install
	$(PIP) install --quiet -e '.[bench]'
	command -v wrk >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y wrk; }
	$(BIN)/python bench/run.py
	test "$${BENCH_LEDGER:-1}" = 0 || $(BIN)/python bench/ledger_scale.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# The figures of the last reliability run (tests/test_{concurrency,crash_safety,hostile_input,
# auth_hardening,graceful_stop}.py write var/reliability.json), for README's "Reliability".
.PHONY: reliability
reliability: install
	$(BIN)/python tests/reliability.py
