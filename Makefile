# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --editable '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/nas run studies/quickstart.toml

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check nas tests benchmarks
	$(VENV)/bin/ruff format --check nas tests benchmarks
	$(VENV)/bin/mypy nas benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
