# SPDX-License-Identifier: Apache-2.0
# nanovisor: the two commands are `make run` and `make test`; everything else is a step of them.
#   make deps       install missing Debian packages (idempotent, quiet when all present)
#   make / build    configure and build every binary into build/
#   make kernel     build (or reuse) the guest kernel, cached outside the checkout
#   make initramfs  pack the static agent into the guest initramfs (cached)
#   make images     build the default busybox (and CRI pause) OCI images into build/images/
#   make deploy-image  the Kubernetes node installer image (deploy/), into build/images/
#   make run        build what is missing, then run a command in a micro-VM
#   make test       unit + kvm + e2e tests, ASan/UBSan unit tests, short fuzz runs
#   make fuzz       every fuzz target for FUZZ_SECONDS each (default 60)
#   make bench      benchmarks against peers; writes bench/results/latest.{md,json}
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60
export NANOVISOR_CACHE ?= /var/cache/nanovisor

.PHONY: deps build kernel initramfs images deploy-image run test fuzz bench clean

SHARE := $(BUILD)/share/nanovisor

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	@scripts/deps.sh
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null

build: $(BUILD)/build.ninja
	@scripts/deps.sh
	@ninja -C $(BUILD) -j $(JOBS) --quiet 2>/dev/null || ninja -C $(BUILD) -j $(JOBS)

# The guest artifacts live in a cache outside the checkout; build/share/nanovisor links them
# where the binaries look by default (<prefix>/share/nanovisor).
kernel: deps
	@dir=$$(guest-kernel/build.sh | tail -n 1) && mkdir -p $(SHARE) && \
	  ln -sfn $$dir/vmlinux $(SHARE)/vmlinux && ln -sfn $$dir/bzImage $(SHARE)/bzImage

initramfs: build
	@cpio=$$(agent/initramfs.sh $(BUILD) | tail -n 1) && mkdir -p $(SHARE) && \
	  ln -sfn $$cpio $(SHARE)/initramfs.cpio.gz

images: deps
	@images/busybox/build.sh $(BUILD)/images >/dev/null

deploy-image: build kernel initramfs images
	@deploy/build-image.sh $(BUILD)

run: build kernel initramfs images
	@scripts/run.sh $(BUILD)

test: build kernel initramfs images
	@scripts/test.sh $(BUILD)

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(BUILD)-san

bench: build kernel initramfs images
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-san
