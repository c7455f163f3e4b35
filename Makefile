# eval_pipelines: two commands on a fresh machine. `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home

DEMO_DAYS ?= 35
# The demo's partitions start at its first generated day (README "Demo"): DEMO_DAYS days ending yesterday (UTC),
# and every demo command gets that day as EVAL_PIPELINES_PARTITIONS_START (the config's partitions.start_date).
# `make dev` takes the first day folder in data/landing, so the UI agrees with the data on any later day too.
DEMO_START := $(shell $(PYTHON) -c 'import datetime as d; print(d.datetime.now(d.timezone.utc).date() - d.timedelta(days=$(DEMO_DAYS)))')
DEMO_LATE_DAY := $(shell $(PYTHON) -c 'import datetime as d; print(d.date.fromisoformat("$(DEMO_START)") + d.timedelta(days=3))')
FIRST_LANDING_DAY = $(shell ls data/landing 2>/dev/null | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}$$' | head -1)
# 35 days × 2,000 events ≈ the old 21 × 3,000: the demo takes about as long as before
DEMO_EVENTS_PER_DAY ?= 2000
DEMO_SEED ?= 7
# The second, free-text system (reply_drafts): a draft reply for this share of the tickets (README "Demo")
DEMO_REPLY_SHARE ?= 0.2

.PHONY: install demo test faults e2e dev bench sim lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,s3]"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

install: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml

demo: export EVAL_PIPELINES_PARTITIONS_START := $(DEMO_START)
demo: install
	# The demo starts from nothing of its own: a warehouse or lake left by an older version would be read.
	rm -rf data/landing data/demo_truth data/review data/lake data/warehouse.db
	$(BIN)/eval-pipelines generate-logs --out data/landing --days $(DEMO_DAYS) --start-date $(DEMO_START) \
		--events-per-day $(DEMO_EVENTS_PER_DAY) --seed $(DEMO_SEED) --reply-share $(DEMO_REPLY_SHARE) --imperfect \
		--truth-out data/demo_truth
	# First the ingestion, the labels and each day's audit sample; the demo's review team then answers the
	# audit samples from the simulator's truth; the second pass makes everything else once, reading the verdicts.
	$(BIN)/eval-pipelines materialize --checks-advisory --upstream-of review_queue
	$(BIN)/eval-pipelines demo-review --truth data/demo_truth --error-rate 0.03 --seed $(DEMO_SEED)
	$(BIN)/eval-pipelines materialize --checks-advisory --exclude production_logs labeled_cases review_queue
	$(BIN)/eval-pipelines generate-logs --out data/landing --late-file-for $(DEMO_LATE_DAY) \
		--events-per-day $(DEMO_EVENTS_PER_DAY) --seed $(DEMO_SEED) --reply-share $(DEMO_REPLY_SHARE)
	@echo
	@echo "Demo done. Where to look:"
	@echo "  lake (Parquet):     data/lake/<asset>/<YYYY-MM-DD>.parquet"
	@echo "  warehouse (SQLite): data/warehouse.db   e.g. sqlite3 data/warehouse.db 'select * from ingestion_batches'"
	@echo "  Dagster UI:         make dev   then open http://127.0.0.1:3000 (runs, lineage, metadata, checks);"
	@echo "                      its landing sensor re-ingests $(DEMO_LATE_DAY), whose late file just landed"
	@echo "  KPIs:               .venv/bin/eval-pipelines kpis --period week"
	@echo "  drift reports:      data/lake/drift_report/<YYYY-MM-DD>.html"
	@echo "  review loop:        data/review/outbox/<day>.jsonl -> data/review/inbox/<day>/; sqlite3 data/warehouse.db 'select * from review_agreement'"
	@echo "  release gates:      .venv/bin/eval-pipelines gate --candidate keyword_rules   (passes; naive_rules fails on purpose)"

test: install
	$(BIN)/python -m pytest -q

faults: install
	$(BIN)/python -m pytest -q -s -m faults eval_pipelines_tests

e2e: install
	$(BIN)/python -m pytest -q -m e2e eval_pipelines_tests/e2e

dev: export EVAL_PIPELINES_PARTITIONS_START = $(FIRST_LANDING_DAY)
dev: install
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: install
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_sensor.py
	$(BIN)/python bench/bench_sensor_s3.py
	$(BIN)/python bench/bench_kpis.py
	$(BIN)/python bench/bench_drift.py --sizes 1000000
	$(BIN)/python bench/bench_evalset.py
	$(BIN)/python bench/bench_edge_cases.py
	$(BIN)/python bench/bench_scoring.py
	$(BIN)/python bench/bench_otlp.py
	$(BIN)/python bench/bench_review_kpis.py
	$(BIN)/python bench/bench_review.py
	$(BIN)/python bench/bench_estimation.py
	$(BIN)/python bench/bench_alerts.py
	$(BIN)/python bench/bench_pii.py

# Seeded simulations behind the statistics docs (coverage, type-I error, power): minutes each, not tests.
sim: install
	$(BIN)/python bench/bench_slice_coverage.py
	$(BIN)/python bench/bench_design_mcnemar.py
	$(BIN)/python bench/bench_review_coverage.py
	$(BIN)/python bench/bench_trusted_gate.py
	$(BIN)/python bench/bench_drift_null.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf data .dagster_home .pytest_cache
