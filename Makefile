# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1

.PHONY: demo test venv lint format benchmark report clean-demo help

help:
	@echo "make demo   - install, build the offline demo (tiny models + media), run the workflow"
	@echo "make test   - install and run the test suite"
	@echo "make venv   - only the virtual environment .venv (pinned packages, the package itself)"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint (on the .test/ config)"
	@echo "make benchmark - extraction, analyses and incremental-rerun benchmarks (tiny models)"
	@echo "make report - results/report.html from a finished run (snakemake --report)"

# The demo extra (scikit-image, scikit-learn, music21; pinned in requirements-demo.txt) is for
# `make demo` and the tests only: a run on your own data needs requirements.txt alone.
$(STAMP): requirements.txt requirements-demo.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-demo.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-test.txt
	$(BIN)/python -m pip install -q --no-deps -e '.[demo]'
	touch $@

# Just the virtual environment: for a run on your own data, without the demo or the tests.
venv: $(STAMP)

resources/models/tiny-clip/config.json resources/models/tiny-clap/config.json &: $(STAMP)
	$(BIN)/python -m delta_v2a.tiny_models resources/models

resources/demo/SOURCES.md: $(STAMP)
	$(BIN)/python -m delta_v2a.demo resources/demo

resources/planted/SOURCES.md: $(STAMP)
	$(BIN)/python -m delta_v2a.demo resources/planted --songs 60

# One model sweep of two pairs (config/demo-sweep.yaml; docs/sweep.md): the planted world (the
# positive control: a known answer, runs/planted/) and the tiny random models (results/), then
# results/sweep/agreement.tsv compares them. Every artifact says NOT SCIENCE.
demo: $(STAMP) resources/models/tiny-clip/config.json resources/demo/SOURCES.md resources/planted/SOURCES.md
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo-sweep.yaml

# One pytest worker per logical CPU (pytest-xdist); a module's tests stay on one worker
# (--dist loadscope) so its module fixtures are built once, and the minutes-long session runs
# are built once per run for all workers (tests/sessions.py). TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= logical
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks scripts
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks scripts
	$(BIN)/snakefmt --check Snakefile workflow/Snakefile workflow/rules
	$(BIN)/snakemake --directory .test --configfile .test/config/config.yaml --lint

# Ratios measured side by side in one run (benchmarks/README.md has the figures and the
# full-size-model variants). `make benchmark BENCHMARK=tiny`: every benchmark once at a tiny
# size, a smoke test that the commands run (tests/workflow/commands_test.py), not figures.
ifeq ($(BENCHMARK),tiny)
BENCH_EXTRACTION := --repeat 1 --jpegs 2 --mp3s 1 --wf-effects 1 --wf-intensities 1
BENCH_ANALYSES := --sizes 200 --json-up-to 200
BENCH_INCREMENTAL := --files 2 --effects 1
BENCH_SCALE := --sizes 200,400 --phase1-max 400
else
BENCH_EXTRACTION := --repeat 1
BENCH_SCALE := --sizes 1000,3000,10000 --phase1-max 10000
endif
benchmark: demo
	$(BIN)/python benchmarks/extraction.py $(BENCH_EXTRACTION)
	$(BIN)/python benchmarks/analyses.py $(BENCH_ANALYSES)
	$(BIN)/python benchmarks/incremental.py $(BENCH_INCREMENTAL)
	$(BIN)/python benchmarks/scale.py $(BENCH_SCALE)

# After `make demo`: results/report.html (tiny random models) and, when the planted run is
# there, runs/planted/report.html (the positive control, the one with a trained decoder).
# For your own run: make report REPORT_ARGS="--configfile my.yaml" (that report only).
REPORT_ARGS ?= --profile profiles/demo
report: $(STAMP)
	$(BIN)/snakemake --report results/report.html $(REPORT_ARGS)
	if [ "$(REPORT_ARGS)" = "--profile profiles/demo" ] && [ -f runs/planted/results/summary.json ]; then \
	  $(BIN)/snakemake --cores 1 --directory runs/planted --configfile config/planted.yaml \
	    --report $(CURDIR)/runs/planted/report.html; fi

format: $(STAMP)
	$(BIN)/ruff format src tests workflow/scripts benchmarks scripts
	$(BIN)/ruff check --fix src tests workflow/scripts benchmarks scripts
	$(BIN)/snakefmt Snakefile workflow/Snakefile workflow/rules

clean-demo:
	rm -rf logs .snakemake resources/demo resources/planted resources/models
	rm -rf $(filter-out results/README.md,$(wildcard results/*))  # the README is committed
