#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test.sh BUILD_DIR: what `make test` runs after the build.
#   1. every ctest test of BUILD_DIR (labels unit, kvm, e2e);
#   2. the unit tests again under ASan + UBSan (BUILD_DIR-asan);
#   3. each fuzz target for a short, bounded number of runs (BUILD_DIR-fuzz, clang).
# Services the e2e tests need and that a CI machine does not start (virtlogd, libvirtd) are
# started here when missing.
set -euo pipefail
build=${1:-build}
jobs=$(nproc)
status=0

scripts/host-setup.sh

echo "== tests: unit, kvm, e2e ($build)"
ctest --test-dir "$build" -LE fuzz --output-on-failure -j "$jobs" || status=1

echo "== tests: unit under ASan+UBSan ($build-asan)"
if [[ ! -f $build-asan/build.ninja ]]; then
  cmake -S . -B "$build-asan" -G Ninja -DNV_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
fi
ninja -C "$build-asan" -j "$jobs" --quiet nv_unit_tests 2>/dev/null ||
  ninja -C "$build-asan" -j "$jobs" nv_unit_tests
ctest --test-dir "$build-asan" -L unit --output-on-failure -j "$jobs" || status=1

echo "== tests: fuzz targets, short runs ($build-fuzz)"
if [[ ! -f $build-fuzz/build.ninja ]]; then
  cmake -S . -B "$build-fuzz" -G Ninja -DNV_FUZZ=ON -DNV_WERROR=OFF \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
fi
ninja -C "$build-fuzz" -j "$jobs" --quiet nv_fuzz_all 2>/dev/null ||
  ninja -C "$build-fuzz" -j "$jobs" nv_fuzz_all
if ctest --test-dir "$build-fuzz" -N -L fuzz | grep -q 'Total Tests: 0'; then
  echo "test: no fuzz targets yet"
else
  ctest --test-dir "$build-fuzz" -L fuzz --output-on-failure || status=1
fi
exit $status
