# The two commands: `make demo` (a guided session you can hear) and `make test` (the test suite).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MINUTES ?= 3
OUT ?= out/demo

.PHONY: demo test setup bench app clean

demo: setup
	$(VENV)/bin/heartsong demo --minutes $(MINUTES) --out $(OUT)

test: setup
	scripts/run-tests.sh

bench: setup
	$(PY) benchmarks/run.py

app: setup
	$(VENV)/bin/heartsong app

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/system-deps.sh
	scripts/system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) out artifacts
