# The two commands: `make run` and `make test`. Both do their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV_VERSION := 0.13.9
TOOLS := .uv
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: help run test lint bench deploy-check clean sync sync-dev

help:
	@echo "make run    - set up and start web + worker + beat on embedded defaults"
	@echo "make test   - set up services and run the whole suite on PostgreSQL and Redis"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - benchmarks (ONLY=<name> for one); results in var/bench/results.json"

# uv itself lives in its own small venv; fall back to pip --user where venv is missing.
$(UV):
	@python3 -m venv $(TOOLS) && $(TOOLS)/bin/pip install -q "uv==$(UV_VERSION)" \
	  || { rm -rf $(TOOLS); python3 -m pip install -q --user "uv==$(UV_VERSION)" \
	       && mkdir -p $(TOOLS)/bin && ln -sf "$$(python3 -m site --user-base)/bin/uv" $(UV); }

sync: $(UV)
	@$(UV) sync --frozen --no-dev --inexact -q

sync-dev: $(UV)
	@$(UV) sync --frozen -q

run: sync
	@mkdir -p var
	@$(PY) manage.py migrate --noinput -v 0
	@$(PY) manage.py demo_data
	@$(PY) scripts/run.py

test: sync-dev
	@$(PY) scripts/testenv.py -- $(PY) -m pytest $(PYTEST_ARGS)

lint: sync-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	APP_ENV=test $(VENV)/bin/mypy .
	APP_ENV=test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# `check --deploy` under production-like settings, failing on warnings too.
deploy-check: sync
	@APP_ENV=production SECRET_KEY="$$($(PY) -c 'import secrets;print(secrets.token_urlsafe(60))')" \
	  ALLOWED_HOSTS=photos.example.org DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
	  REDIS_URL=redis://127.0.0.1:6379/0 CLAMD_ADDRESS=127.0.0.1:3310 \
	  SITE_URL=https://photos.example.org SELLER_ADDRESS="1 Example Street, Dublin" \
	  STRIPE_SECRET_KEY=sk_test_deploycheck STRIPE_WEBHOOK_SECRET=whsec_deploycheck \
	  $(PY) manage.py check --deploy --fail-level WARNING

bench: sync-dev
	@$(PY) scripts/testenv.py -- $(PY) -m tests.bench.run $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf $(VENV) $(TOOLS) var/bench
