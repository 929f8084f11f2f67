# The README's two commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run web realtime worker beat media test test-fast typecheck pre-commit lint format migrations-check
.PHONY: check-deploy ci clean docs
.PHONY: tts-install tts-node tts-test tts-bench browser-install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip check
	touch $@

install: $(VENV)/.installed  ## Create .venv and install the platform and its test tools

run: install  ## Migrate, seed the demo and serve HTTP + websockets on embedded defaults
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_periodic_tasks
	@# The demo's tools call the demo backend (/demo-backend/) of this very server.
	$(BIN)/python manage.py seed_demo --base-url http://$(HOST):$(PORT)
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: /admin/, probes: /health /ready, metrics: /metrics)"
	@# No broker on embedded defaults: run_outbox sends due webhooks and runs the schedule in-process.
	$(BIN)/python manage.py run_outbox & OUTBOX=$$!; trap 'kill $$OUTBOX 2>/dev/null' EXIT INT TERM; \
	$(BIN)/daphne -b $(HOST) -p $(PORT) voiceapp.asgi:application

web: install  ## Production-style web process (WSGI) for the admin and API
	$(BIN)/gunicorn voiceapp.wsgi --bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}

realtime: install  ## Websockets (and HTTP) under Daphne
	$(BIN)/daphne -b $(HOST) -p $(PORT) voiceapp.asgi:application

media: install  ## Media worker: GoToConnect events, the WebRTC bridge and agent sessions (GOTO_* for the PBX)
	$(BIN)/python manage.py run_media

worker: install  ## Celery worker for all queues (needs REDIS_URL)
	$(BIN)/celery -A voiceapp worker -Q default,webhooks,reports --loglevel INFO

beat: install  ## Celery beat with the database scheduler (needs REDIS_URL)
	$(BIN)/celery -A voiceapp beat --scheduler django_celery_beat.schedulers:DatabaseScheduler --loglevel INFO

test: install tts-install browser-install  ## Run the test suite (SQLite unless DATABASE_URL is set), then the TTS node's
	TTS_NODE_REQUIRED=1 $(BIN)/pytest -q $(PYTEST_ARGS)
	@if [ "$(TTS_TESTS)" != "0" ]; then $(MAKE) --no-print-directory tts-test; fi

# The edit loop: everything but the browser, end-to-end, fuzz, chaos and slow tests (pyproject.toml lists
# the markers), on every core with pytest-xdist. Redis is left out (REDIS_URL unset): the suite clears the
# cache between tests, and parallel workers would clear each other's. DATABASE_URL is kept: each worker gets
# its own test database, and --reuse-db keeps them between runs (new migrations are applied; after editing
# one in place, `PYTEST_ARGS=--create-db`).
FAST_MARKERS := not slow and not e2e and not fuzz and not browser and not chaos
FAST_WORKERS ?= auto
test-fast: install  ## The edit loop: the unmarked tests in parallel, in about a third of `make test`'s time
	env -u REDIS_URL $(BIN)/pytest -q -m "$(FAST_MARKERS)" -n $(FAST_WORKERS) --reuse-db $(PYTEST_ARGS)

typecheck: install  ## mypy (Django and DRF plugins) over calls, voice, telephony and the integration gateway
	$(BIN)/mypy

pre-commit: install  ## Install the git hooks: ruff and the migrations check on commit, mypy on push
	$(BIN)/pre-commit install --hook-type pre-commit --hook-type pre-push

browser-install:  ## Debian's Chromium for the browser tests and Flite for callers with other voices (nothing downloaded)
	@missing=""; for tool in chromium flite; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ "$(BROWSER_TESTS)" = "0" ]; then missing=$$(echo "$$missing" | sed 's/chromium//'); fi; \
	if [ -z "$$(echo $$missing)" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's$$missing for the tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "Could not install$$missing: the tests that need it will be skipped"; \
	else echo "Not installed:$$missing (sudo apt-get install$$missing): the tests that need it will be skipped"; fi

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: install  ## Fail if models changed without a migration
	$(BIN)/python manage.py makemigrations --check --dry-run

check-deploy: install  ## Django's deployment checklist under production-like settings
	DEBUG=0 SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))') \
	INTEGRATION_CRYPTO_KEY=ci:$$($(BIN)/python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())') \
	ALLOWED_HOSTS=voice.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING

# --- Documentation: docs/ and mkdocs.yml, built into site/ (gitignored) ------------------------------
# --strict turns every warning (a broken link or anchor, a page missing from the nav) into an error; the
# check after the build refuses a page that would load a script, stylesheet or image from the network.
$(VENV)/.docs-installed: requirements-docs.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $@

docs: $(VENV)/.docs-installed  ## Build the documentation site into site/ (mkdocs build --strict)
	$(BIN)/mkdocs build --strict --site-dir site
	@if grep -rlE '<(script|link|img)[^>]+(src|href)="(https?:)?//' site --include='*.html'; then \
	  echo "These pages load something from the network (above)"; exit 1; fi
	@echo "Documentation built: site/index.html"

ci: lint typecheck docs migrations-check check-deploy test  ## What CI runs (see .ci/run)

clean:
	rm -rf $(VENV) $(TTS_VENV) .pytest_cache .ruff_cache staticfiles

# --- TTS node (tts_node/): its own virtualenv, never the platform's -------------------------------
# .venv-tts holds torch and chatterbox-tts; the platform's .venv never does. On this CPU-only
# machine chatterbox-tts and the packages that pin a CUDA torch are installed with --no-deps on the
# CPU torch wheel, and torchaudio's CUDA-built extension is removed (see tts_node/requirements-nodeps.txt).
# TTS_TESTS=0 skips the node's own tests in `make test` (CI runs them once, not per database).
TTS_VENV ?= .venv-tts
TTS_BIN := $(TTS_VENV)/bin

$(TTS_BIN)/python:
	$(PYTHON) -m venv $(TTS_VENV)
	$(TTS_BIN)/pip install --quiet --upgrade pip

$(TTS_VENV)/.installed: tts_node/requirements-service.txt tts_node/requirements-test.txt tts_node/requirements-nodeps.txt | $(TTS_BIN)/python
	$(TTS_BIN)/pip install --quiet --disable-pip-version-check -r tts_node/requirements-test.txt
	$(TTS_BIN)/pip install --quiet --disable-pip-version-check --no-deps -r tts_node/requirements-nodeps.txt
	rm -f $(TTS_VENV)/lib/python*/site-packages/torchaudio/lib/*.so
	touch $@

tts-install: $(TTS_VENV)/.installed  ## Create .venv-tts: the TTS node, its offline engine and Chatterbox on CPU torch

tts-node: tts-install  ## Serve the TTS node on 127.0.0.1:8080 with the offline engine (TTS_* variables override)
	TTS_ENGINE=$${TTS_ENGINE:-piper} $(TTS_BIN)/python -m tts_node

tts-test: tts-install  ## The TTS node's tests (Chatterbox with random weights included)
	$(TTS_BIN)/pytest -q -c tts_node/pytest.ini --rootdir=. -p no:cacheprovider tts_node/tests

tts-bench: tts-install  ## Time to first audio, RTF and throughput at 1, 10 and 100 concurrent requests
	$(TTS_BIN)/python bench/tts_node.py
