# Everything a newcomer needs: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tests are parallel-safe (own database, Redis prefix, buckets, ports): two workers per core
# (tests/conftest.py: the long tests mostly wait on the clock); the next test goes to the first
# free worker, slow-marked tests first (tests/conftest.py, scheduling).
PYTEST_ARGS ?= -n auto --dist load --maxschedchunk 1

.PHONY: demo test lint fmt docs bench reliability clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/omics-events demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	$(BIN)/omics-events config table --write README.md
	$(BIN)/omics-events config env-example --write .env.example

# the fault-injection scenarios (tests/faults), then their table in docs/reliability.md
# (FAULTS_SOAK=1 make reliability: the long soak variant)
reliability: $(STAMP)
	mkdir -p .omics-events && rm -f .omics-events/faults.jsonl
	-FAULTS_REPORT=.omics-events/faults.jsonl $(BIN)/python -m pytest -m faults $(PYTEST_ARGS) tests/faults
	$(BIN)/python -m tests.faults.report .omics-events/faults.jsonl --write docs/reliability.md

bench: $(STAMP)
	$(BIN)/python bench/end_to_end.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .omics-events .pytest_cache
