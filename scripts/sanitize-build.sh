#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sanitize-build.sh DIR TARGET...: configures (once) and builds the clang sanitizer build: unit
# tests under ASan+UBSan and the libFuzzer targets, all from one set of instrumented objects.
set -euo pipefail
build=$1
shift
if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DNV_SANITIZE=ON -DNV_WERROR=OFF -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
fi
ninja -C "$build" -j "$(nproc)" --quiet "$@" 2>/dev/null || ninja -C "$build" -j "$(nproc)" "$@"
