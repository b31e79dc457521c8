# Set-up and everyday commands. `make demo` and `make test` both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: demo test bench test-mmcv install clean

install: $(STAMP)

# torch first, from the CPU build on disk: a bare `torch` requirement would pull a multi-GB CUDA build.
# open3d's CPU wheel links libusb-1.0 at import time; it is a Debian package, installed here when missing.
$(STAMP): pyproject.toml
	@ldconfig -p | grep -q libusb-1.0 || { \
		echo "installing libusb-1.0 (needed by open3d)"; \
		apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip check
	@touch $(STAMP)

# The main job on the embedded synthetic city: detection -> tracking -> forecasting, an AV2 E2E forecasting
# submission scored by the official evaluator (table printed), and a BEV plot of one frame's forecasts.
demo: $(STAMP)
	$(VENV)/bin/drivestack e2e-forecast --out $(DEMO_OUT)/submission.pkl --evaluate

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -x -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) -m benchmarks

# Builds mmcv 2.2.0 with its CPU ops once into the venv (11-17 CPU-minutes on 2 cores), then runs the cross-checks.
# "numpy<2" keeps the resolver on an opencv-python release that accepts numpy 1.x (nuscenes-devkit pins numpy<2).
test-mmcv: $(STAMP)
	@$(PY) -c "import mmcv.ops" 2>/dev/null || { \
		$(PY) -m pip install -q "setuptools<81" wheel ninja && \
		MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 $(PY) -m pip install --no-build-isolation -q "mmcv==2.2.0" "numpy<2" && \
		$(PY) -m pip check; }
	$(PY) -m pytest -q -m mmcv

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
