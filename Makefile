# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install clean bench bench-cost bench-locust bench-litellm bench-proxy bench-tools \
	profile fuzz soak

# The venv's own pip is used as it comes (no upgrade: an offline or slow index would pay for
# it), and each stamp below installs only when pyproject.toml changed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Editable installs in "compat" mode are a plain path entry: the default mode's import finder
# costs ~20 ms at every start. setuptools says the mode "will be removed"; until it is, it is
# the fast one (without it, `make run` starts 20 ms later). Bytecode is compiled up front for
# the same reason (startup).
PIP_E  := $(BIN)/python -m pip install --quiet --config-settings editable_mode=compat -e
PYC    := $(BIN)/python -m compileall -q fastmock

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP_E) '.[fast]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP_E) '.[test]'
	touch $@

install: $(STAMP)

## Install into .venv and start the server on its defaults (127.0.0.1:8080).
run: $(STAMP)
	@$(PYC)
	$(BIN)/fastmock $(ARGS)

## Install the test extras and run lint, types and the whole test suite.
test: $(VENV)/.installed-test
	$(BIN)/ruff check fastmock tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP_E) '.[bench]'
	touch $@

## wrk, nginx and valgrind for the benchmarks (Debian/Ubuntu; needs root).
bench-tools:
	@command -v wrk >/dev/null && command -v nginx >/dev/null && command -v valgrind >/dev/null \
	  || (apt-get update -qq && apt-get install -y -qq wrk nginx-light valgrind)

## fastmock beside nginx and the prototype, in one run; adds to bench/runs.json, writes
## bench/RESULTS.md.
bench: $(VENV)/.installed-bench bench-tools
	@$(PYC)
	$(BIN)/python bench/run.py $(ARGS)

## Instructions per request (callgrind), fastmock beside the prototype: noise-free.
bench-cost: $(VENV)/.installed-bench bench-tools
	@$(PYC)
	$(BIN)/python bench/cost.py $(ARGS)

## One workload under py-spy: a flame graph in bench/out/ (ARGS="--workload streams").
profile: $(VENV)/.installed-bench bench-tools
	@$(PYC)
	$(BIN)/python bench/profile.py $(ARGS)

## The Locust suite, headless: against a fastmock it starts, or ARGS="--host URL --api-key K
## --model M --users 200 --seconds 60"; CSV, HTML and the LLM metrics in bench/out/.
bench-locust: $(VENV)/.installed-bench
	$(BIN)/python bench/locust_run.py $(ARGS)

## LiteLLM's proxy in its own venv (pinned), for bench-proxy. 1.80.0: a release from before
## the compromised 1.107.0, and long enough in use.
LITELLM_VERSION ?= 1.80.0
.venv-litellm/bin/litellm:
	$(PYTHON) -m venv .venv-litellm
	.venv-litellm/bin/python -m pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)'

bench-litellm: .venv-litellm/bin/litellm

## What a proxy adds: the same load direct and through it (default: LiteLLM; or
## ARGS="--proxy-cmd '...{port}...{upstream}...'" / ARGS="--proxy-url URL").
bench-proxy: $(VENV)/.installed-bench
	@if [ -z "$(ARGS)" ]; then $(MAKE) --no-print-directory bench-litellm; fi
	$(BIN)/python bench/proxy.py $(if $(ARGS),$(ARGS),--litellm)

## The fuzz properties of the test suite with many more examples (outside `make test`).
fuzz: $(VENV)/.installed-test
	FASTMOCK_FUZZ_EXAMPLES=$${FASTMOCK_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q \
	  -p no:cacheprovider tests/test_fuzz.py

## Minutes of mixed load with streams cut short; RSS and descriptors must come back.
soak: $(VENV)/.installed-test
	$(BIN)/python bench/soak.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
