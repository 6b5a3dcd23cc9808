# imgdrop — the commands a newcomer can guess. `make dev` and `make test` install what they need.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: use it locally too. The first one that runs wins (a pyenv
# shim on PATH may exist and still refuse to run when 3.13 is not the selected version).
PYTHON313 ?= $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null) \
	$$(command -v python3.13); do "$$p" -c '' 2>/dev/null && echo "$$p" && break; done)
VENV := .venv
TOOLS := .venv-tools
CHECKOV := .venv-checkov
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_WORKERS ?= 2

.PHONY: help dev test unit integration e2e lint bench build deploy fuzz install tools web browser ts-client validate clean

help:
	@echo "make dev          run imgdrop locally (API :3000, emulated AWS :4566)"
	@echo "make test         install everything and run the whole suite (what CI runs)"
	@echo "make unit | integration | e2e | lint | bench | build | deploy | fuzz"

$(STAMP): requirements-dev.txt layers/core/requirements.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (install it, e.g. pyenv install 3.13)"; exit 1; }
	test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON313) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

tools: $(TOOLS_STAMP)

$(CHECKOV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV)/bin/python || $(PYTHON313) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

web: $(STAMP)
	bash web/build.sh

# The generated-client test's npm packages (openapi-typescript, openapi-fetch, typescript), as web/build.sh
# installs Uppy's: from tests/e2e/ts_client/package-lock.json, again only when the lock file changes.
ts-client:
	bash tests/e2e/ts_client/install.sh

# Debian's Chromium for the browser tests (no browser download: none is reachable here).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: apt-get install chromium"; fi; }

dev: $(STAMP)
	@[ -f web/examples/uppy.bundle.js ] || bash web/build.sh || echo "(the Uppy example was not built; the uploader page works without it)"
	exec $(PY) -m imgdrop_local

validate: $(TOOLS_STAMP)
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint

build: $(TOOLS_STAMP)
	PATH="$(dir $(PYTHON313)):$$PATH" $(TOOLS)/bin/sam build --cached --parallel
	$(PY) infra/layer_sizes.py

deploy: build
	$(TOOLS)/bin/sam deploy --config-env $${ENV:-dev}

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q -n $(PYTEST_WORKERS)

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q -n $(PYTEST_WORKERS)

e2e: $(STAMP) web browser ts-client
	$(PY) -m pytest tests/e2e -q

lint: $(STAMP) $(TOOLS_STAMP) $(CHECKOV)/.installed
	$(PY) -m ruff check layers functions infra cli
	$(PY) -m mypy layers/core/imgdrop
	$(TOOLS)/bin/bandit -r layers functions infra cli -q
	$(CHECKOV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

test: $(STAMP) validate lint build web browser ts-client
	$(PY) -m pytest tests -q -n $(PYTEST_WORKERS)

# Every figure of the issues' targets, each as a ratio against a baseline taken in the same run.
# partitions.py exits 1 when a key is over its per-partition limit.
bench: $(STAMP)
	$(PY) bench/bench_coldstart.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_formats.py
	$(PY) bench/bench_large.py
	$(PY) bench/bench_dedupe.py
	$(PY) bench/partitions.py
	$(PY) bench/cost.py
	$(PY) bench/bench_load.py

fuzz: $(STAMP)
	$(PY) -m pytest tests/e2e -q -m fuzz --fuzz-long

clean:
	rm -rf .aws-sam $(VENV) $(TOOLS) $(CHECKOV) web/examples/uppy-src/node_modules tests/e2e/ts_client/node_modules
