# The two commands: `make run` (the shop, embedded) and `make test` (every check and test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test install lint services services-stop clean

# bench.txt is test.txt plus the load generator (locust) and its plots (matplotlib): tests/bench checks them.
$(VENV)/.installed: requirements/base.txt requirements/test.txt requirements/bench.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	scripts/dev/graphviz.sh ensure || echo "(no Graphviz: /api/map/svg/ answers 503 until scripts/dev/graphviz.sh ensure ran)"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --verbosity 0
	$(PY) manage.py seed_demo --if-empty
	@echo ""
	@echo "Quire runs on http://127.0.0.1:$(PORT)/  (API root /api/, Swagger UI /api/<module>/docs/, admin /admin/)"
	@echo "Create a staff user for the admin with:  $(PY) manage.py createsuperuser"
	@echo ""
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: install
	scripts/test.sh

clean:
	rm -rf var .pytest_cache .ruff_cache

# The split shop: four services on PostgreSQL + Kafka behind an nginx gateway on 127.0.0.1:$(PORT).
services: install
	PORT=$(PORT) scripts/services.sh start

services-stop:
	scripts/services.sh stop
