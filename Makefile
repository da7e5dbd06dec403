# Entry points: `make demo`, `make test`, `make lint`. Each creates .venv and installs on first use;
# the stamp file makes a second install a no-op.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip

.PHONY: install chromium demo test test-all lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# no -q: the install takes minutes, and pip's own lines (one per package) show it moving
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing into $(VENV)/ (a few minutes the first time; about 8 GB of disk, mostly torch)"
	$(PIP) install --upgrade "pip>=24" "setuptools<81" wheel
	# torch pinned: this exact pair is served from local disk; anything newer is a multi-GB download.
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install -e ".[test]" torch==2.14.1 torchvision==0.29.1
	touch $(STAMP)

install: $(STAMP) chromium

# headless Chromium for the browser tests (Debian's package), installed here so that the test suite
# itself never changes the system; without root or apt-get it is skipped and those tests skip
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	      echo "chromium could not be installed: the browser tests will skip"; \
	  else echo "chromium missing and apt-get needs root: the browser tests will skip"; fi

demo: install
	$(BIN)/skysift demo --out demo_out

# two pytest-xdist workers: CI has two cores, and most tests are single-threaded (TEST_WORKERS=0: none)
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -q -m "not slow" --timeout=900 -n $(TEST_WORKERS)

# ruff (style, imports, likely bugs) over everything; mypy over the typed core (see pyproject.toml)
lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src/skysift/core

test-all: install
	$(BIN)/python -m pytest -q --timeout=3600

# throughput and memory of every task on this machine (each script prints a table)
bench: install
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_transits.py
	$(BIN)/python benchmarks/bench_technosignatures.py throughput --n-train 300 --n-predict 300 --epochs 2
	$(BIN)/python benchmarks/bench_galaxies.py throughput --threads 2 --n 512

clean:
	rm -rf demo_out .pytest_cache
