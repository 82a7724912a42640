#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Image benchmarks only: generates a ~100 MiB 5-layer OCI layout (bench/images/gen_image.py)
# and times `nanovisor image import` / `image rootfs`, cold and cached, beside `umoci unpack`.
# Same as `bench/run.sh BUILD_DIR --only images`; updates the image rows of
# bench/results/latest.{md,json}. usage: bench/images/bench.sh [BUILD_DIR] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bench/run.sh "${1:-build}" --only images "${@:2}"
