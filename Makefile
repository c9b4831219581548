# Two commands do everything on a fresh machine (Python 3.11, pip, make):
#   make demo   create .venv if missing, install, run `pyr demo`
#   make test   same set-up, then ruff, mypy and the whole pytest suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pyr-installed

.PHONY: install demo test lint format bench bench-small clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

$(VENV)/.pyr-bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pyr demo

lint: $(STAMP)
	$(BIN)/ruff check pyr tests benchmarks
	$(BIN)/ruff format --check pyr tests benchmarks
	$(BIN)/mypy pyr

format: $(STAMP)
	$(BIN)/ruff format pyr tests benchmarks
	$(BIN)/ruff check --fix pyr tests benchmarks

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.pyr-bench-installed
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-small: $(VENV)/.pyr-bench-installed
	$(BIN)/python -m benchmarks.run --small $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
