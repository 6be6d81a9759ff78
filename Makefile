# Thin layer over the `slimdet` CLI. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SLIMDET := $(VENV)/bin/slimdet
STAMP := $(VENV)/.installed
MODEL ?= yolov3-tiny
TARGET ?= x86

.PHONY: setup fetch arm-tools demo test test-fast bench compile export tune bench-check prune distill quantize clean

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

# The ARM path's host tools (Debian): aarch64 cross-linker, and qemu-user + debootstrap for the
# emulated device. The ARM tests skip without them.
ARM_TOOLS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user debootstrap
arm-tools:
	@command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null && command -v debootstrap >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(ARM_TOOLS) >/dev/null; }

# --durations: the slowest tests in every CI log (the suite's budget is ~20 minutes)
test: fetch arm-tools
	$(PY) -m pytest -q --durations=25 tests

test-fast: fetch
	$(PY) -m pytest -q -m "not perf" tests

# The committed benchmark: both models at 416 and 640, batch 1 and 4, 1 and 2 threads, 2 streams.
bench: fetch
	$(SLIMDET) bench --model yolov3-tiny --imgsz 416 --imgsz 640 --batch 1,4 --threads 1,2 --streams 2 \
		--reps 3 --json benchmarks/results/yolov3-tiny-$(TARGET).json --plot benchmarks/results/yolov3-tiny-$(TARGET).png
	$(SLIMDET) bench --model yolov8n --imgsz 416 --imgsz 640 --batch 1,4 --threads 1,2 --streams 2 \
		--reps 3 --json benchmarks/results/yolov8n-$(TARGET).json --plot benchmarks/results/yolov8n-$(TARGET).png

# TRIALS defaults to 2000, or 8 on the emulated aarch64 device (TARGET=arm without RPC_TRACKER).
# Boards: TARGET=arm-rpi4 RPC_TRACKER=host:9190 RPC_KEY=rpi4 (see README, "Tuning on a Raspberry Pi").
TRIALS ?=
IMGSZ ?=
RPC_TRACKER ?=
RPC_KEY ?=
# THIS_CPU=1: tune this host's CPU model's database beside the preset's (README, "Databases per CPU model").
THIS_CPU ?=
tune: fetch
	$(SLIMDET) tune --model $(MODEL) --target $(TARGET) $(if $(TRIALS),--trials $(TRIALS)) $(if $(IMGSZ),--imgsz $(IMGSZ)) \
		$(if $(RPC_TRACKER),--rpc-tracker $(RPC_TRACKER) --rpc-key $(RPC_KEY)) $(if $(THIS_CPU),--this-cpu)

# Compression: MACS is the fraction of MACs to keep; VARIANT names the result (default pruned<N>).
MACS ?= 0.5
VARIANT ?=
STEPS ?= 1000
prune: fetch
	$(SLIMDET) prune --model $(MODEL) --macs-kept $(MACS) $(if $(VARIANT),--variant $(VARIANT))
distill: fetch
	$(SLIMDET) distill --model $(MODEL) --variant $(VARIANT) --steps $(STEPS)
quantize: fetch
	$(SLIMDET) quantize --model $(MODEL) --variant $(or $(VARIANT),fp32) $(if $(CALIB),--calib $(CALIB))

# The deployable library for TARGET (cross-linked for ARM boards): out/<model>-<target>/
export: fetch
	$(SLIMDET) compile --model $(MODEL) --target $(TARGET) --out out/$(MODEL)-$(TARGET) $(if $(IMGSZ),--imgsz $(IMGSZ))

bench-check: fetch
	$(SLIMDET) bench-check --target $(TARGET)

clean:
	rm -rf out
