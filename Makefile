# Every target sets itself up: a fresh machine needs only python3 (with venv and pip) and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the runtime dependencies as wheels, so that `make smoke` installs fedscan's wheel into a
# fresh venv without the network (tests run in a network namespace)
WHEELHOUSE := $(VENV)/wheelhouse
# every interpreter `make smoke` proves the wheel on (the oldest supported: requires-python)
SMOKE_PYTHONS ?= $(PY)

.PHONY: test smoke demo lint typecheck unit test-unit test-lab test-interop bench bench-census bench-instructions lab clean corpus

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) . && rm -f $(WHEELHOUSE)/fedscan-*.whl
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check scanner tests bench test-certs
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# build sdist + wheel, install the wheel in a fresh venv outside the checkout, run every command
smoke: $(STAMP)
	.ci/wheel-smoke $(BIN)/python $(WHEELHOUSE) $(SMOKE_PYTHONS)

test: lint typecheck unit smoke

# One tier alone (tests/conftest.py assigns each test module its tier).
test-unit: $(STAMP)
	$(BIN)/pytest -m unit

test-lab: $(STAMP)
	$(BIN)/pytest -m lab

test-interop: $(STAMP)
	$(BIN)/pytest -m interop

demo: $(STAMP)
	$(BIN)/fedscan demo

lab: $(STAMP)
	$(BIN)/fedscan lab

N ?= 1000
SSLYZE_VENV := .venv-sslyze
SSLYZE_STAMP := $(SSLYZE_VENV)/.installed

# sslyze in a venv of its own: it requires cryptography<47, and installed beside fedscan it
# downgraded the cryptography that fedscan is tested and measured with.
# If sslyze cannot be installed (no wheel for this Python, no index), the bench still runs
# and says "sslyze: not run" instead of failing.
$(SSLYZE_STAMP): Makefile
	test -x $(SSLYZE_VENV)/bin/python || $(PY) -m venv $(SSLYZE_VENV)
	$(SSLYZE_VENV)/bin/python -m pip install --quiet 'sslyze>=6,<7' && touch $(SSLYZE_STAMP) \
		|| echo "make: sslyze could not be installed; the bench will run without it"

BENCH_STAMP := $(VENV)/.bench-installed
RTT ?= 0

# the bench extra once (not on every run: a bench may run where there is no network)
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# make bench [N=4000] [RTT=50]: RTT is milliseconds per round trip added by the lab
bench: $(BENCH_STAMP) $(SSLYZE_STAMP)
	$(BIN)/python -m bench --endpoints $(N) --rtt $(RTT) --sslyze-python $(SSLYZE_VENV)/bin/python
	$(BIN)/python -m bench.page

# the census case: 10,000 endpoints at --timeout 2, then 30 % silent peers at --timeout 5
bench-census: $(BENCH_STAMP)
	$(BIN)/python -m bench --endpoints 10000 --timeout 2 --dead-fraction 0.3 --dead-timeout 5 --no-sslyze \
		--formats jsonl --stage-runs 0

# instructions counted by valgrind (Debian: valgrind): exact and repeatable, for A/B of a change
bench-instructions: $(BENCH_STAMP)
	@command -v valgrind >/dev/null || { echo "make: bench-instructions needs valgrind (apt-get install valgrind)"; exit 2; }
	$(BIN)/python -m bench.instructions --domains $(or $(DOMAINS),50)

corpus: $(STAMP)
	$(BIN)/python test-certs/make_corpus.py

clean:
	rm -rf $(VENV) $(SSLYZE_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
