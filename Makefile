# camid — set-up and everyday commands. `make serve` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: serve test lint blender clean-venv serve-install train-install

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Serving-only install: onnxruntime, FastAPI, Pillow … and no torch.
$(VENV)/.serve-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

# Everything: training extra (torch 2.14.1 CPU/CUDA build from pip) and the test tools.
$(VENV)/.all-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[train,dev]'
	touch $@ $(VENV)/.serve-installed

serve-install: $(VENV)/.serve-installed
train-install: $(VENV)/.all-installed

serve: $(VENV)/.serve-installed
	$(VENV)/bin/camid serve --host $(HOST) --port $(PORT)

# Blender renders the synthetic training photos (Debian package, headless, CPU).
blender:
	@command -v blender >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq blender; }

test: $(VENV)/.all-installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.all-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean-venv:
	rm -rf $(VENV)
