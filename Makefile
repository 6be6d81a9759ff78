# Thin layer over the `slimdet` CLI. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SLIMDET := $(VENV)/bin/slimdet
STAMP := $(VENV)/.installed
MODEL ?= yolov3-tiny
TARGET ?= x86

.PHONY: setup fetch demo test test-fast bench compile tune bench-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

fetch: setup
	$(SLIMDET) fetch

demo: fetch
	$(SLIMDET) demo --model $(MODEL) --target $(TARGET)

compile: fetch
	$(SLIMDET) compile --model $(MODEL) --target $(TARGET) --out out/$(MODEL)-$(TARGET)

test: fetch
	$(PY) -m pytest -q tests

test-fast: fetch
	$(PY) -m pytest -q -m "not perf" tests

# The committed benchmark: both models at 416 and 640, batch 1 and 4, 1 and 2 threads, 2 streams.
bench: fetch
	$(SLIMDET) bench --model yolov3-tiny --imgsz 416 --imgsz 640 --batch 1,4 --threads 1,2 --streams 2 \
		--reps 3 --json benchmarks/results/yolov3-tiny-$(TARGET).json --plot benchmarks/results/yolov3-tiny-$(TARGET).png
	$(SLIMDET) bench --model yolov8n --imgsz 416 --imgsz 640 --batch 1,4 --threads 1,2 --streams 2 \
		--reps 3 --json benchmarks/results/yolov8n-$(TARGET).json --plot benchmarks/results/yolov8n-$(TARGET).png

TRIALS ?= 2000
IMGSZ ?=
tune: fetch
	$(SLIMDET) tune --model $(MODEL) --target $(TARGET) --trials $(TRIALS) $(if $(IMGSZ),--imgsz $(IMGSZ))

bench-check: fetch
	$(SLIMDET) bench-check --target $(TARGET)

clean:
	rm -rf out
