#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh BUILD_DIR: what `make test` runs after the build.
#   1. every ctest test of BUILD_DIR (labels unit, kvm, e2e);
#   2. in one clang build (BUILD_DIR-san): the unit tests again under ASan + UBSan, and each
#      fuzz target for a short, bounded number of runs.
# Services the e2e tests need and that a CI machine does not start (virtlogd, libvirtd) are
# started here when missing.
set -euo pipefail
build=${1:-build}
jobs=$(nproc)
status=0

scripts/host-setup.sh

echo "== tests: unit, kvm, e2e ($build)"
ctest --test-dir "$build" -LE fuzz --output-on-failure -j "$jobs" || status=1

echo "== tests: unit under ASan+UBSan, fuzz targets for a short bounded run ($build-san, clang)"
scripts/sanitize-build.sh "$build-san" nv_unit_tests nv_fuzz_all
ctest --test-dir "$build-san" -L unit --output-on-failure -j "$jobs" || status=1
ctest --test-dir "$build-san" -L fuzz --output-on-failure -j "$jobs" || status=1
exit $status
