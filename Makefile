# lrlab front door. `make run` trains the default experiment; `make test` runs the suite.
# Both install what they need into .venv first (and do nothing more when it is up to date).

PYTHON ?= python3
VENV   ?= .venv
# torch is installed first, on its own, so you choose the build: the default is the CPU wheel
# pinned for this project; e.g. `make install TORCH="torch --index-url https://download.pytorch.org/whl/cu124"`.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test sweep bench tensorboard clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: install
	$(VENV)/bin/lrlab-train $(ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The demo grid: 4 learning rates x {constant, step, cosine} x {sgd, adam} on digits (24 runs), then the report.
SWEEP_DIR ?= outputs/multirun/demo-$(shell date +%Y-%m-%d_%H-%M-%S)
sweep: install
	$(VENV)/bin/lrlab-train -m optimizer=sgd,adam optimizer.lr=0.001,0.01,0.1,1 scheduler=constant,step,cosine \
	  trainer.max_epochs=15 trainer.enable_progress_bar=false hydra.sweep.dir=$(SWEEP_DIR) $(ARGS)
	$(VENV)/bin/lrlab-report $(SWEEP_DIR)

# Benchmarks: lrlab's training path vs a plain PyTorch loop, start-up, multirun overhead (see BENCHMARKS.md).
bench: install
	$(PY) benchmarks/bench.py $(ARGS)

tensorboard: install
	$(VENV)/bin/tensorboard --logdir outputs --host 127.0.0.1

clean:
	rm -rf outputs/runs outputs/multirun build dist src/*.egg-info .pytest_cache
	find . -name __pycache__ -prune -not -path './$(VENV)/*' -exec rm -rf {} +
