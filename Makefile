# sslkit: every figure and table of Wen et al. 2016 from one command.
# The environment (.venv) is created on first use; nothing needs installing by hand.

PYTHON_SYS ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
PROFILE    ?= quick
# Where the data lives (MNIST/, cifar10-jpeg/ ...). Empty: $$SSLKIT_DATA, then ../shared/data, then ~/.cache/sslkit/data.
DATA       ?= $(or $(SSLKIT_DATA),$(wildcard ../shared/data))
NB         ?= *
PARAMS     ?=
BUILD      ?= build/notebooks
KERNEL     := sslkit
STAMP      := $(VENV)/.installed

export SSLKIT_DATA := $(abspath $(DATA))
export MPLBACKEND  := Agg

.DEFAULT_GOAL := help
.PHONY: help env reproduce smoke test lab bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=smoke|quick|paper (default quick)  DATA=<data root>  NB=<notebook glob>  PARAMS='-p name value ...'"

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (sslkit)"
	touch $@

env: $(STAMP) ## create the virtual environment and register the Jupyter kernel

reproduce: $(STAMP) ## run every notebook (PROFILE=..., NB=glob, PARAMS=...) into build/ and figures/
	@mkdir -p $(BUILD)
	@set -e; for nb in notebooks/$(NB).ipynb; do \
	  echo ">> $$nb (profile $(PROFILE))"; \
	  $(VENV)/bin/papermill --cwd notebooks -k $(KERNEL) -p profile $(PROFILE) $(PARAMS) \
	    "$$nb" "$(BUILD)/$$(basename $$nb)"; \
	done

smoke: ## reproduce with the smoke profile (seconds per notebook; numbers are meaningless)
	$(MAKE) reproduce PROFILE=smoke BUILD=build/smoke

test: $(STAMP) ## run the test suite (unit tests + every notebook on the smoke profile)
	$(PY) -m pytest -q

bench: $(STAMP) ## benchmarks: Table 4 layer timings (thread sweep) and SSL step overhead -> build/bench/
	$(PY) -m sslkit.bench layers --table4-rows 1 2 4 5 --threads 1 2 --out build/bench/layers.csv
	$(PY) -m sslkit.bench step --models lenet resnet20 --out build/bench/step.csv
	$(PY) -m sslkit.bench train --models convnet resnet20 --out build/bench/train.csv

lab: $(STAMP) ## open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks

clean: ## remove build outputs and the environment (keeps figures/ and the data cache)
	rm -rf build $(VENV) .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
