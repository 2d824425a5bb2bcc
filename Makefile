# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1

.PHONY: demo test lint format benchmark clean-demo help

help:
	@echo "make demo   - install, build the offline demo (tiny models + media), run the workflow"
	@echo "make test   - install and run the test suite"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

resources/models/tiny-clip/config.json resources/models/tiny-clap/config.json &: $(STAMP)
	$(BIN)/python -m delta_v2a.tiny_models resources/models

resources/demo/SOURCES.md: $(STAMP)
	$(BIN)/python -m delta_v2a.demo resources/demo

demo: $(STAMP) resources/models/tiny-clip/config.json resources/demo/SOURCES.md
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format src tests workflow/scripts benchmarks
	$(BIN)/ruff check --fix src tests workflow/scripts benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

clean-demo:
	rm -rf results logs .snakemake resources/demo resources/models
