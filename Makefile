# camid — set-up and everyday commands. `make serve` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
PREDICT_PATHS ?= $(CURDIR)/../shared/data/real/undo_cctv_detection

.PHONY: serve test lint blender system-deps check-serve-install clean-venv serve-install train-install

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

# Everything the full test suite uses from Debian: Blender (renders), Chromium (the moderators'
# page browser test, driven by Playwright) and PostgreSQL (the store's tests on a real server).
system-deps:
	@missing=""; for p in blender chromium postgresql dovecot-imapd; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# The serving-only install, alone in its own venv: no torch may come along, and `camid predict`
# must work with the shipped model.
check-serve-install:
	rm -rf .venv-serve && $(PYTHON) -m venv .venv-serve
	.venv-serve/bin/python -m pip install -q --upgrade pip
	.venv-serve/bin/python -m pip install -q .
	.venv-serve/bin/python -c "import importlib.util as u, sys; bad=[m for m in ('torch','timm','torchvision','albumentations') if u.find_spec(m)]; sys.exit(f'serving install pulled in {bad}' if bad else 0)"
	cd /tmp && $(CURDIR)/.venv-serve/bin/camid predict $(PREDICT_PATHS) --json > $(CURDIR)/.venv-serve/predictions.jsonl
	@echo "serving-only install OK: $$(wc -l < .venv-serve/predictions.jsonl) photos classified without torch"

test: $(VENV)/.all-installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.all-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean-venv:
	rm -rf $(VENV)
