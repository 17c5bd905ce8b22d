# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment in .venv the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kerascheck-installed

.PHONY: demo test test-slow examples fixtures bench corpus clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Runs kerascheck over the bundled example models (custom_norm.keras needs the code of
# its custom layers). They are built to have problems, so kerascheck exits 1 there;
# only exit 2 (a file it could not check) fails the demo.
demo: $(STAMP)
	$(BIN)/kerascheck examples/ --custom-objects examples/custom_layers.py || test $$? -eq 1

# Two workers, tests shared out one by one (worksteal): 12 to 14 minutes on a 2-core machine.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not slow"

# The variants the suite leaves out for its time (see the slow marker in setup.cfg).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m slow

# Rebuild the committed example models (needs only the venv).
examples: $(STAMP)
	$(BIN)/python examples/build_examples.py examples

bench: $(STAMP)
	$(BIN)/python bench/static.py

# The corpus of real model code (bench/corpus): builds what is missing, checks every model three
# ways, compares with each truth.yaml and writes bench/corpus/RESULTS.md (about an hour on 2 cores).
corpus: $(STAMP)
	$(BIN)/python bench/corpus/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
