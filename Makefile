# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv first, with exactly
# the versions in requirements.lock (what the tests last passed with); `make lock` re-resolves it from
# pyproject.toml's ranges (README, "Refreshing the lock").
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
# Tests run in parallel (pytest-xdist), one process more than this machine's cores (at most 8: each holds
# about 1 GB): many tests wait on worker processes and heartbeats, and each test process owns its share of
# the cores (tests/conftest.py). `make test TEST_PROCESSES=1` runs one test at a time.
TEST_PROCESSES ?= $(shell python3 -c "import os; print(min(8, len(getattr(os, 'sched_getaffinity', lambda _: range(os.cpu_count() or 1))(0)) + 1))")

.PHONY: demo test lint lock clean

$(VENV)/.installed: pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint $(LOCK) --editable '.[dev]'
	touch $@

lock:
	python3 tools/lock.py

demo: $(VENV)/.installed
	$(VENV)/bin/nas run studies/quickstart.toml

test: $(VENV)/.installed
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist worksteal

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check nas tests benchmarks tools
	$(VENV)/bin/ruff format --check nas tests benchmarks tools
	$(VENV)/bin/mypy nas benchmarks tools

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
