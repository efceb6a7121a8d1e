# One-command setup and checks for seqdiff.
#
#   make test        venv + system packages (chromium) + lint + the whole test suite (what CI runs)
#   make test-fast   lint + tests that are neither slow nor browser tests
#   make demo        run pipelines/demo.py
#   make app         start the Streamlit app (seqdiff app)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUFF := $(VENV)/bin/ruff
PYTEST := $(VENV)/bin/pytest
STAMP := $(VENV)/.installed
# The CPU wheel that lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
CHROMIUM ?= /usr/bin/chromium

.PHONY: help .venv system-deps lint test test-fast demo app clean clean-all

help:
	@echo "targets: .venv system-deps lint test test-fast demo app clean clean-all"

# `make .venv` builds the stamp; the stamp is redone only when pyproject.toml changes.
.venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e '.[dev,ray]'
	$(PY) -c "import torch, seqdiff; print('torch', torch.__version__)"
	touch $@

# Debian packages the tests need: chromium (browser tests). HMMER comes with pyhmmer (a Python dependency).
system-deps:
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then \
		echo "system packages present: chromium"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: apt-get unavailable; install$$missing yourself" >&2; \
	else \
		SUDO=""; \
		if [ "$$(id -u)" != 0 ]; then SUDO="sudo"; fi; \
		$$SUDO apt-get update; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

lint: $(STAMP)
	$(RUFF) check .
	$(RUFF) format --check .

# pytest's exit code is passed through: 5 (no tests collected) fails too, with a message.
test: $(STAMP) system-deps
	$(MAKE) lint
	$(PYTEST) -q || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc; }

test-fast: $(STAMP)
	$(MAKE) lint
	$(PYTEST) -q -m "not slow and not browser" || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc; }

demo: $(STAMP)
	$(PY) pipelines/demo.py

app: $(STAMP)
	$(VENV)/bin/seqdiff app

clean:
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -path ./runs -prune -o \
		-type d \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache \) -prune -print \
		| xargs -r rm -rf
	rm -rf .hypothesis build dist *.egg-info

clean-all: clean
	rm -rf $(VENV)
