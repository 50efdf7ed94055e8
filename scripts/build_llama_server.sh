#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` from the same pinned llama-cpp-python sdist (its vendor/llama.cpp
# is the llama.cpp our wheel uses), with kb's engine patch applied, as the peer `make bench` compares
# against. The patch skips the qwen3 LM head whenever embeddings are on, so `llama-server --embeddings`
# benefits exactly as our engine does and the comparison measures the serving path, not the patch.
#
# The binary is statically linked against llama.cpp/ggml and cached outside the checkout, keyed by
# version, patch hash and backend; a second call only prints its path (~10 minutes on 2 cores, once).
#
#   scripts/build_llama_server.sh PYTHON [GPU]     GPU: auto (default) | 0 | 1
#   prints the binary's path as its last line; KB_SERVER_CACHE overrides the cache folder
set -euo pipefail

PY=${1:?usage: build_llama_server.sh PYTHON [GPU]}
GPU=${2:-auto}
VERSION=0.3.36
HERE=$(cd "$(dirname "$0")/.." && pwd)
PATCH="$HERE/patches/llama-cpp-python-$VERSION-skip-lm-head.patch"
CACHE_ROOT=${KB_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kb/llama-server}

# Same backend choice as scripts/install_llama.sh: CUDA only when nvcc is present and a GPU is visible.
backend=cpu
if [ "$GPU" = 1 ]; then
  backend=cuda
elif [ "$GPU" = auto ] && command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  backend=cuda
fi

patch_hash=$(sha256sum "$PATCH" | cut -c1-12)
key="$VERSION-$patch_hash-$backend"
cache="$CACHE_ROOT/$key"
binary="$cache/llama-server"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

echo "Building llama-server from llama-cpp-python $VERSION ($backend, $patch_hash) — about 10 minutes on 2 cores, once." >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work" >&2
tar -xzf "$work"/llama_cpp_python-$VERSION.tar.gz -C "$work"
src="$work/llama_cpp_python-$VERSION"
if ! patch -d "$src" -p1 --forward --dry-run --quiet < "$PATCH" >/dev/null; then
  echo "ERROR: $(basename "$PATCH") no longer applies to llama-cpp-python $VERSION." >&2
  exit 3
fi
patch -d "$src" -p1 --forward --quiet < "$PATCH"

# Release, native CPU flags and OpenMP as in the wheel; static libraries so the binary runs from the
# cache alone; no web UI (it would be fetched from the network), no TLS, no tests or examples.
args=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON
      -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF)
if [ "$backend" = cuda ]; then
  args+=(-DGGML_CUDA=on "-DCMAKE_CUDA_ARCHITECTURES=${KB_CUDA_ARCH:-native}")
fi
llama="$src/vendor/llama.cpp"
cmake -S "$llama" -B "$work/build" "${args[@]}" >&2
cmake --build "$work/build" --target llama-server -j"$(nproc)" >&2

mkdir -p "$cache"
cp "$work/build/bin/llama-server" "$cache/llama-server.tmp"
# Anything still linked from the build tree (there should be nothing) would break once it is removed.
if ldd "$cache/llama-server.tmp" | grep -q "$work"; then
  echo "ERROR: llama-server still links libraries from its build folder:" >&2
  ldd "$cache/llama-server.tmp" | grep "$work" >&2
  exit 4
fi
"$cache/llama-server.tmp" --version >&2
mv "$cache/llama-server.tmp" "$binary"
echo "$binary"
