#!/usr/bin/env bash
# Install llama-cpp-python built from its pinned sdist with kb's engine patch.
# The wheel is cached outside the checkout, keyed by version, patch hash and backend,
# so a second install (CI, `make run`) reuses it instead of rebuilding (~11 min on 2 cores).
#
#   scripts/install_llama.sh PYTHON [GPU]     GPU: auto (default) | 0 | 1
#   KB_LLAMA_STOCK=1 installs the unpatched build instead (only `make bench` uses it, as the baseline)
set -euo pipefail

PY=${1:?usage: install_llama.sh PYTHON [GPU]}
GPU=${2:-auto}
VERSION=0.3.36
HERE=$(cd "$(dirname "$0")/.." && pwd)
PATCH="$HERE/patches/llama-cpp-python-$VERSION-skip-lm-head.patch"
CACHE_ROOT=${KB_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kb/wheels}

# CUDA only when it can be both built and used: nvcc present and a GPU visible.
# GPU=1 forces a CUDA build (e.g. to carry the wheel to a GPU machine), GPU=0 forces CPU.
backend=cpu
if [ "$GPU" = 1 ]; then
  backend=cuda
elif [ "$GPU" = auto ] && command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  backend=cuda
fi

patch_hash=$(sha256sum "$PATCH" | cut -c1-12)
[ "${KB_LLAMA_STOCK:-0}" = 1 ] && patch_hash=stock
key="$VERSION-$patch_hash-$backend"
cache="$CACHE_ROOT/$key"

# Already installed with this exact key? Nothing to do.
stamp=$("$PY" -c "import llama_cpp, pathlib; p = pathlib.Path(llama_cpp.__file__).with_name('KB_BUILD'); print(p.read_text().strip() if p.exists() else '')" 2>/dev/null || true)
if [ "$stamp" = "$key" ]; then
  echo "llama-cpp-python $key already installed"
  exit 0
fi

wheel=$(ls "$cache"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "Building llama-cpp-python $VERSION ($backend, $patch_hash) with $(basename "$PATCH") — about 11 minutes on 2 cores, once."
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work"
  tar -xzf "$work"/llama_cpp_python-$VERSION.tar.gz -C "$work"
  src="$work/llama_cpp_python-$VERSION"
  if ! patch -d "$src" -p1 --forward --dry-run --quiet < "$PATCH" >/dev/null; then
    echo "ERROR: $(basename "$PATCH") no longer applies to llama-cpp-python $VERSION." >&2
    echo "       Refusing to install a stock (slow) build; update the patch for this version." >&2
    exit 3
  fi
  [ "$patch_hash" = stock ] || patch -d "$src" -p1 --forward --quiet < "$PATCH"
  echo "$key" > "$src/llama_cpp/KB_BUILD"
  args="-DLLAVA_BUILD=OFF"
  if [ "$backend" = cuda ]; then
    arch=${KB_CUDA_ARCH:-native}
    args="$args -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$arch"
  fi
  mkdir -p "$cache"
  CMAKE_ARGS="$args ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$PY" -m pip wheel --no-deps --wheel-dir "$work/dist" "$src"
  mv "$work"/dist/llama_cpp_python-*.whl "$cache/"
  wheel=$(ls "$cache"/llama_cpp_python-*.whl | head -n1)
fi
"$PY" -m pip install --quiet --no-deps --force-reinstall "$wheel"
"$PY" -m pip install --quiet "$wheel"   # its own dependencies (numpy, jinja2, …)
echo "llama-cpp-python $key installed from $wheel"
