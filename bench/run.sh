#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh BUILD_DIR: what `make bench` runs (see bench/run.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py "${1:-build}" "${@:2}"
