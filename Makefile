# storyflow entry points. Every target sets up what it needs, idempotently.
PYTHON ?= python3.11
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: demo test lint typecheck template-check unit integration bench openapi build deploy clean setup tools

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Lint/deploy tools, each set up once and again only when its pin file changes:
#   .venv-tools    aws-sam-cli + cfn-lint (sam pins boto3, click and more exactly)
#   .venv-checkov  checkov (pins boto3 to another exact version, so it cannot share .venv-tools)
#   node_modules   asl-validator (npm, from package-lock.json)
CHECKOV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
NODE_STAMP := node_modules/.installed
TOOLS_PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(CHECKOV)/bin:$(CURDIR)/node_modules/.bin

tools: $(TOOLS_STAMP) $(CHECKOV_STAMP) $(NODE_STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(VENV)/bin/storyflow local demo

lint: setup
	$(VENV)/bin/ruff check src functions containers tests bench packages
	$(VENV)/bin/ruff format --check src functions containers tests bench packages

typecheck: setup
	$(VENV)/bin/mypy

template-check: setup tools
	PATH=$(TOOLS_PATH):$$PATH $(PY) -m pytest tests/template -q

unit: setup
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

test: setup tools
	$(VENV)/bin/ruff check src functions containers tests bench packages
	$(VENV)/bin/ruff format --check src functions containers tests bench packages
	$(VENV)/bin/mypy
	PATH=$(TOOLS_PATH):$$PATH $(PY) -m pytest -q

bench: setup
	$(PY) bench/local_cloud.py
	$(PY) bench/stereo.py

openapi: setup
	$(PY) -m storyflow.openapi > docs/openapi.json

build: tools
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH PYENV_VERSION=3.11.7:3.12.1 sam build

deploy: build
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH sam deploy --config-env $${ENV:-dev}

clean:
	rm -rf $(VENV) $(TOOLS) .venv-checkov node_modules .aws-sam .storyflow demo-out
