# The README's two commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run web realtime worker beat media test lint format migrations-check check-deploy ci clean

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
	$(BIN)/python manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: /admin/, probes: /health /ready, metrics: /metrics)"
	@# No broker on embedded defaults: run_outbox sends due webhooks and runs the schedule in-process.
	$(BIN)/python manage.py run_outbox & OUTBOX=$$!; trap 'kill $$OUTBOX 2>/dev/null' EXIT INT TERM; \
	$(BIN)/daphne -b $(HOST) -p $(PORT) voiceapp.asgi:application

web: install  ## Production-style web process (WSGI) for the admin and API
	$(BIN)/gunicorn voiceapp.wsgi --bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}

realtime: install  ## Websockets (and HTTP) under Daphne
	$(BIN)/daphne -b $(HOST) -p $(PORT) voiceapp.asgi:application

worker: install  ## Celery worker for all queues (needs REDIS_URL)
	$(BIN)/celery -A voiceapp worker -Q default,webhooks,reports --loglevel INFO

beat: install  ## Celery beat with the database scheduler (needs REDIS_URL)
	$(BIN)/celery -A voiceapp beat --scheduler django_celery_beat.schedulers:DatabaseScheduler --loglevel INFO

test: install  ## Run the test suite (SQLite unless DATABASE_URL is set)
	$(BIN)/pytest -q $(PYTEST_ARGS)

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

ci: lint migrations-check check-deploy test  ## What CI runs (see .ci/run)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
