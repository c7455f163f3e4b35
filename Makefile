# eval_pipelines: two commands on a fresh machine. `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home

DEMO_DAYS ?= 21
DEMO_EVENTS_PER_DAY ?= 3000
DEMO_SEED ?= 7

.PHONY: install demo test faults e2e dev bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

install: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml

demo: install
	rm -rf data/landing
	$(BIN)/eval-pipelines generate-logs --out data/landing --days $(DEMO_DAYS) \
		--events-per-day $(DEMO_EVENTS_PER_DAY) --seed $(DEMO_SEED)
	$(BIN)/eval-pipelines materialize --checks-advisory
	@echo
	@echo "Demo done. Where to look:"
	@echo "  lake (Parquet):     data/lake/<asset>/<YYYY-MM-DD>.parquet"
	@echo "  warehouse (SQLite): data/warehouse.db   e.g. sqlite3 data/warehouse.db 'select * from ingestion_batches'"
	@echo "  Dagster UI:         make dev   then open http://127.0.0.1:3000 (runs, lineage, metadata, checks)"
	@echo "  KPIs:               .venv/bin/eval-pipelines kpis --period week"
	@echo "  drift reports:      data/lake/drift_report/<YYYY-MM-DD>.html"
	@echo "  release gates:      .venv/bin/eval-pipelines gate --candidate keyword_rules   (passes; naive_rules fails on purpose)"

test: install
	$(BIN)/python -m pytest -q

faults: install
	$(BIN)/python -m pytest -q -s -m faults eval_pipelines_tests

e2e: install
	$(BIN)/python -m pytest -q -m e2e eval_pipelines_tests/e2e

dev: install
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: install
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_sensor.py
	$(BIN)/python bench/bench_kpis.py
	$(BIN)/python bench/bench_drift.py --sizes 1000000
	$(BIN)/python bench/bench_evalset.py
	$(BIN)/python bench/bench_edge_cases.py
	$(BIN)/python bench/bench_scoring.py
	$(BIN)/python bench/bench_otlp.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf data .dagster_home .pytest_cache
