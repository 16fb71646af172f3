# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment when missing and reinstall when pyproject.toml changes.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
NLX := $(VENV)/bin/nlx
STAMP := $(VENV)/.installed
DEMO_DB ?= demo.db
PYTEST_ARGS ?=

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(NLX) run quickstart --db $(DEMO_DB)
	$(NLX) compare --db $(DEMO_DB)
	$(NLX) compare --db $(DEMO_DB) --metric last_test_acc
	$(NLX) plot-curves --db $(DEMO_DB) --out curves.png

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/engine_overhead.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm curves.png
