# sslkit: every figure and table of Wen et al. 2016 from one command.
# The environment (.venv) is created on first use; nothing needs installing by hand.

PYTHON_SYS ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
PROFILE    ?= converged
# Where the data lives (MNIST/, cifar10-jpeg/ ...). Empty: $$SSLKIT_DATA, then ../shared/data,
# then ~/.cache/sslkit/data (sslkit.util.settings.data_root looks there).
DATA       ?= $(SSLKIT_DATA)
NB         ?= *
PARAMS     ?=
# 0: render from the run stores only (runs/, the cache): a notebook whose stages are missing fails
# with one line naming the stage, and the others go on. 1: train what is missing.
TRAIN      ?= $(or $(SSLKIT_TRAIN),1)
# Executed notebooks, one folder per profile (a smoke run never overwrites a converged one).
BUILD      ?= build/$(PROFILE)
# Extra arguments for `make lab` (e.g. LAB_ARGS="--port 9000 --no-browser"); as root, --allow-root is added.
LAB_ARGS   ?=
LAB_ROOT   := $(if $(filter 0,$(shell id -u)),--allow-root)
# pytest-xdist workers; 0: none, the tests in one process with 2 torch threads. On the 2-core
# reference machine two workers ran the suite slower (364 s against 317 s: a notebook took
# 30-40 s beside another instead of 8-17 s alone); more may pay on more cores.
TEST_JOBS  ?= 0
KERNEL     := sslkit
STAMP      := $(VENV)/.installed

export SSLKIT_DATA := $(if $(DATA),$(abspath $(DATA)))
export SSLKIT_TRAIN := $(TRAIN)

.DEFAULT_GOAL := help
.PHONY: help env reproduce smoke report test lab bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=smoke|quick|converged|paper (default converged)  DATA=<data root>  NB=<notebook glob>  PARAMS='-p name value ...'"
	@echo "             TRAIN=0 (render from the run store only; default 1: train what is missing)  PARAMS='-p force True' (retrain)"
	@echo "             LAB_ARGS='<jupyter lab arguments>'  TEST_JOBS=<pytest workers, default 0: one process>"

$(STAMP): requirements.txt pyproject.toml Makefile
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e . --config-settings editable_mode=compat  # a path entry: new subpackages need no reinstall
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (sslkit)"
	$(PY) -m sslkit kernelspec $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json
	touch $@

env: $(STAMP) ## create the virtual environment and register the Jupyter kernel

reproduce: $(STAMP) ## run every notebook (PROFILE=..., NB=glob, PARAMS=..., TRAIN=0: from the run store only) into build/<profile>/ and figures/, then the report
	@mkdir -p $(BUILD)
	@failed=; for nb in notebooks/$(NB).ipynb; do \
	  echo ">> $$(date +%T) $$nb (profile $(PROFILE))"; \
	  $(PY) -m sslkit execute -k $(KERNEL) -p profile $(PROFILE) $(PARAMS) "$$nb" $(BUILD) || failed="$$failed $$nb"; \
	done; \
	echo ">> $$(date +%T) report"; \
	$(PY) -m sslkit report --profile $(PROFILE) || failed="$$failed report"; \
	if [ -n "$$failed" ]; then echo "not rendered (their errors above):$$failed"; exit 1; fi

smoke: ## reproduce with the smoke profile (seconds per notebook; numbers are meaningless)
	$(MAKE) reproduce PROFILE=smoke

report: $(STAMP) ## write figures/REPORT.md (every paper number, ours, a verdict) from the result files
	$(PY) -m sslkit report --profile $(PROFILE)   # figures/ (smoke: build/figures-smoke/, numbers meaningless)

test: $(STAMP) ## run the test suite (unit tests, every notebook on the smoke profile, JupyterLab in Chromium)
	$(PY) -m pytest -q -n $(TEST_JOBS) --maxschedchunk=1

bench: $(STAMP) ## benchmarks: Table 4 layer timings (thread sweep) and SSL step overhead -> build/bench/
	$(PY) -m sslkit bench layers --table4-rows 1 2 4 5 --threads 1 2 --out build/bench/layers.csv
	$(PY) -m sslkit bench step --models lenet resnet20 --out build/bench/step.csv
	$(PY) -m sslkit bench train --models convnet resnet20 --out build/bench/train.csv

lab: $(STAMP) ## open the notebooks in JupyterLab (LAB_ARGS=... for extra arguments)
	$(VENV)/bin/jupyter lab $(LAB_ROOT) $(LAB_ARGS) notebooks

clean: ## remove build outputs and the environment (keeps figures/ and the data cache)
	rm -rf build $(VENV) .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
