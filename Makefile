# symcodec: `make demo` and `make test` each set up .venv from nothing, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help install demo test check-minimal bench fuzz clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[train,torch,eval,ray,test]'
	# torchattacks pins requests~=2.25 and torchvision; its code needs only torch, numpy, scipy (from eval): no deps
	$(PY) -m pip install -q --disable-pip-version-check --no-deps torchattacks==3.5.1
	touch $@

install: $(VENV)/.installed  ## create .venv and install symcodec with every extra (train, torch, eval, ray, test)

DEMO   ?= demo-out
CIFAR  ?= ../shared/datasets/cifar10-jpeg/test.tar

demo: install  ## convert CIFAR-10 test JPEGs to .sym, then compression ratio vs accuracy beside JPEG and WebP
	@mkdir -p $(DEMO)
	$(VENV)/bin/symcodec codebooks
	$(VENV)/bin/symcodec convert $(CIFAR) $(DEMO)/cifar10-test-sym.tar -j 2
	$(VENV)/bin/symcodec eval $(CIFAR) -m cifar10-airnet3 -m cifar10-airnet2-sym --limit 1000 \
	  --codec sym:cifar10-2x2-k256,cifar10-2x2-k2048,cifar10-2x2-k2048-ppm,cifar10-ycc420-k512-ppm \
	  --codec jpeg:30,50,75,90 --codec webp:30,50,75,90 --json $(DEMO)/eval.json --plot $(DEMO)/eval.png
	@echo "plot: $(DEMO)/eval.png   results: $(DEMO)/eval.json"

test: install  ## the test suite, then the minimal-install check (under 15 minutes on 2 cores)
	$(PY) -m pytest -q -x tests
	$(MAKE) --no-print-directory check-minimal

MIN ?= .venv-min
$(MIN)/.installed: setup.py Makefile $(shell find symcodec codebooks -name '*.py' -o -name '*.symcb')
	rm -rf $(MIN)
	$(PYTHON) -m venv $(MIN)
	$(MIN)/bin/python -m pip install -q --disable-pip-version-check .
	rm -rf build
	touch $@

check-minimal: $(MIN)/.installed  ## `pip install .` with no extras decodes every vector and opens .sym in Pillow, without torch or faiss
	cd $(MIN) && bin/python $(CURDIR)/tools/check_minimal.py $(CURDIR)/formats/vectors

bench: install  ## full codec benchmark (results/bench_codec.json)
	$(PY) tools/bench_codec.py --json results/bench_codec.json

fuzz: install  ## coverage-guided fuzzing (atheris) of every parser, 1M executions per target (about 40 minutes)
	$(PY) tools/fuzz.py --runs 1000000 --corpus .fuzz-corpus --json results/fuzz.json

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) $(MIN) .pytest_cache .hypothesis build *.egg-info
