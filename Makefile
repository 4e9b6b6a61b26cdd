# The two commands of the README, for a fresh machine with only Python 3.11:
#   make run    create .venv, install, migrate, load demo data if the database is empty, serve on :8000
#   make test   create .venv, install with the test extra, make sure Chromium, LibreOffice, Tesseract, nginx and
#               OpenLDAP (slapd, for the directory tests) are there, run pytest
# Everything runs through $(VENV)/bin/...; no activated shell is needed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

# Stamp files: re-install only when pyproject.toml changes (or the venv is new).
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test

.PHONY: help run test lint typecheck bench clean install install-test chromium netbed office nginx oidc-provider ldap

help:
	@echo "make run     install into $(VENV), migrate, load demo data, serve on http://$(HOST):$(PORT)"
	@echo "make test    install with the test extra, ensure Chromium, run pytest (PYTEST_ARGS=... to pass options)"
	@echo "make lint    ruff check and mypy (make typecheck: mypy alone, also run by make test)"
	@echo "make bench   run every bench/*.py with --quick"
	@echo "make clean   remove $(VENV), caches and test artifacts (keeps var/, the local data)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	@echo "Installing eoffice into $(VENV) (the first time takes a minute or two)..."
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .
	@touch $@

$(INSTALLED_TEST): pyproject.toml | $(BIN)/python
	@echo "Installing eoffice with its test extra into $(VENV) (the first time takes a minute or two)..."
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[test]"
	@touch $@ $(INSTALLED)

install: $(INSTALLED)

install-test: $(INSTALLED_TEST) office oidc-provider ldap

run: $(INSTALLED)
	$(BIN)/eoffice migrate
	$(BIN)/eoffice demo
	exec $(BIN)/eoffice serve --host $(HOST) --port $(PORT)

chromium:
	@bash scripts/ensure-chromium.sh

netbed:
	@bash scripts/ensure-netbed.sh

office:
	@bash scripts/ensure-office.sh

nginx:
	@bash scripts/ensure-nginx.sh

oidc-provider:
	@bash scripts/ensure-oidc-provider.sh

ldap:
	@bash scripts/ensure-ldap.sh

test: $(INSTALLED_TEST) chromium netbed office nginx oidc-provider ldap typecheck
	$(BIN)/pytest -ra $(PYTEST_ARGS)

lint: $(INSTALLED_TEST)
	$(BIN)/ruff check .
	$(BIN)/mypy

typecheck: $(INSTALLED_TEST)
	$(BIN)/mypy

bench: $(INSTALLED)
	@shopt -s nullglob; files=(bench/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "No benchmarks in bench/ yet."; exit 0; fi; \
	for f in "$${files[@]}"; do \
		case "$$(basename $$f)" in _*|conftest.py) continue;; esac; \
		echo "== $$f"; $(BIN)/python "$$f" --quick || exit 1; \
	done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache test-artifacts
	find . -name __pycache__ -type d -prune -not -path './var/*' -exec rm -rf {} +
