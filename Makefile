# gbmeter: make setup | test | demo | bench | deploy
VENV    ?= .venv
PY      := $(VENV)/bin/python
GBMETER := $(VENV)/bin/gbmeter
BOARD   ?= rpi_pico
PORT    ?= /dev/ttyACM0
PROFILE ?= smets2
PYTHON  ?= python3
STAMP   := $(VENV)/.installed

.PHONY: setup test demo demo-duis bench deploy clean

setup: $(STAMP)

# Re-run the install only when the pinned dependencies change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(GBMETER) demo --profile $(PROFILE)

# the demo's job through the DCC's front door: signed DUIS over HTTP (gbmeter duis demo)
demo-duis: setup
	$(GBMETER) duis demo --profile $(PROFILE)

bench: setup
	$(PY) bench/run.py

deploy: setup
	$(GBMETER) deploy --board $(BOARD) --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info bench/results.json
