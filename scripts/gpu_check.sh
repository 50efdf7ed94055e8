#!/usr/bin/env bash
# `make gpu-check`: the GPU proof in one command (bench/gpu/), on a machine with an NVIDIA card, the CUDA
# toolkit and this checkout with artifacts/gpu-check/ beside it (`make gpu-check-prepare` makes that where
# there is network: the slimmed sdist, the wheels, the CPU reference vectors). Nothing is fetched.
#
#   scripts/gpu_check.sh [--dry-run] [--out DIR] [--budget-s S] [--big] [--only SECTION]
#   PYTHON picks the interpreter (default python3: on a GPU machine, the one with PyTorch)
#
# Writes data/gpu-check/report/ (gpu-check.md, gpu-check.json, one .md and .json per section, log.txt);
# the CUDA build, the virtualenv, the models and the filled store stay in data/gpu-check/build/ for a rerun.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" -m bench.gpu "$@"
