# The README's commands. Each target installs what it needs into .venv first.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKDIR ?= .ssl_eval
DEMO_STORE ?= $(WORKDIR)/demo_store
DEMO_EPOCHS ?= 8
PYTEST_ARGS ?=
# make test runs the suite on this many pytest-xdist workers, a whole test module to each
# (module-scoped servers stay in one process); the suite's own servers and subprocesses use
# cores too, so 2 suits a 2-core machine; TEST_WORKERS=auto for one a core, 0 for one process.
TEST_WORKERS ?= 2

.PHONY: venv demo demo-fashion test test-fast bench serve ui clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,umap]"
	touch $(STAMP)

venv: $(STAMP)

# Train SimCLR, MoCo-v2 and SimSiam on MNIST (once), evaluate every checkpoint, report.
demo: venv
	@test -f $(DEMO_STORE)/.complete || { \
	  $(BIN)/ssl-eval make-demo-store --out $(DEMO_STORE) --dataset mnist --epochs $(DEMO_EPOCHS) && \
	  touch $(DEMO_STORE)/.complete; }
	$(BIN)/ssl-eval evaluate $(DEMO_STORE) --workdir $(WORKDIR) --dataset mnist
	@echo
	@echo "Open the MLflow UI to compare families: make ui   (or: $(BIN)/ssl-eval ui --workdir $(WORKDIR))"
	@echo "then browse http://127.0.0.1:5000"

# A heavier store: resnet18-cifar on Fashion-MNIST (Debian package dataset-fashion-mnist).
FASHION_ROOT := /usr/share/datasets/fashion-mnist
demo-fashion: venv
	@test -f $(FASHION_ROOT)/train-images-idx3-ubyte.gz || { apt-get update && apt-get install -y dataset-fashion-mnist; }
	@test -f $(WORKDIR)/fashion_store/.complete || { \
	  $(BIN)/ssl-eval make-demo-store --out $(WORKDIR)/fashion_store --dataset fashion-mnist --arch resnet18-cifar \
	    --epochs 2 --n-train 1000 && touch $(WORKDIR)/fashion_store/.complete; }
	$(BIN)/ssl-eval evaluate $(WORKDIR)/fashion_store --workdir $(WORKDIR)/fashion --dataset fashion-mnist \
	  --n-eval 1000 --n-probe-train 2000 --n-probe-test 1000

# The linter, the type checker and the import contract first (seconds), then the tests.
test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The edit-test loop: the same checks, and the tests without those that start real servers
# (marker `integration`: everything under tests/integration/) or take more than a few seconds
# (marker `slow`: subprocess attacks, kills, flows, training); `make test` runs them all.
test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not integration and not slow" $(PYTEST_ARGS)

bench: venv
	$(BIN)/python benchmarks/metrics.py

serve: venv
	$(BIN)/ssl-eval serve $(DEMO_STORE) --workdir $(WORKDIR) --interval 60

ui: venv
	$(BIN)/ssl-eval ui --workdir $(WORKDIR)

clean:
	rm -rf $(WORKDIR)
