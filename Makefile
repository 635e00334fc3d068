# picomaml: every target sets itself up first; `make setup` is fast once done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow lint demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

demo: setup
	$(BIN)/picomaml demo

bench: setup
	$(BIN)/picomaml bench pretrain --out results/bench/pretrain.json
	$(BIN)/picomaml bench ner --out results/bench/ner.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
