# gbmeter: make setup | test | demo | bench | deploy
VENV    ?= .venv
PY      := $(VENV)/bin/python
GBMETER := $(VENV)/bin/gbmeter
BOARD   ?= rpi_pico
PORT    ?= /dev/ttyACM0
PROFILE ?= smets2
PYTHON  ?= python3
STAMP   := $(VENV)/.installed

.PHONY: setup test demo demo-direct demo-duis bench deploy clean

setup: $(STAMP)

# Re-run the install only when the pinned dependencies change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# the whole job through the DCC's front door: the DUIS web service with a virtual GSME
# and ESME, every Service Request signed DUIS over HTTP, each Service Response verified
# at a listener, the registers read back over GBCS (gbmeter duis demo)
demo: setup
	$(GBMETER) duis demo --profile $(PROFILE)

# the same job from the host's own verbs, no DUIS (gbmeter demo)
demo-direct: setup
	$(GBMETER) demo --profile $(PROFILE)

demo-duis: demo

bench: setup
	$(PY) bench/run.py

deploy: setup
	$(GBMETER) deploy --board $(BOARD) --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info bench/results.json
