#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh BUILD_DIR: what `make run` does once everything is built.
set -euo pipefail
build=${1:-build}
kernel_dir=$(guest-kernel/build.sh --dir)
scripts/boot-smoke.sh "$kernel_dir" "$build/guest-kernel/testinit/testinit.cpio.gz"
