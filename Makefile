# BlueGate: the two commands a technician needs are `make demo` and `make test`.
# Both install what they need on a fresh Debian / Raspberry Pi OS machine.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: build headers for bluepy (glib) and systemd-python, and the real
# servers the tests start on loopback (Mosquitto, PostgreSQL, D-Bus, Chromium).
DEB_PACKAGES := python3-venv python3-dev gcc pkg-config libglib2.0-dev libsystemd-dev \
	mosquitto mosquitto-clients postgresql dbus chromium openssl systemd

.PHONY: help deps debs venv test lint typecheck pytest demo bench format clean

help:
	@echo "make demo    - run a simulated mine site end to end (ONCE=1 to exit after the report)"
	@echo "make test    - install everything, then ruff, mypy and the whole test suite"
	@echo "make bench   - run every benchmark and refresh the README figures"

debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[pi,central,dev]'
	touch $@

venv: $(VENV)/.installed

deps: debs venv

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: deps
	$(VENV)/bin/mypy

pytest: deps
	$(VENV)/bin/pytest

test: lint typecheck pytest

format: deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: deps
	$(PY) -m central.demo $(if $(ONCE),--once,)

bench: deps
	$(PY) bench/run_all.py --update-readme README.md

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
