#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fuzz.sh BUILD_DIR: builds the libFuzzer targets and runs each for $FUZZ_SECONDS seconds,
# keeping the grown corpus in BUILD_DIR/fuzz-corpus/<target>. Crashes stop with a non-zero exit.
set -euo pipefail
build=${1:-build-san}
seconds=${FUZZ_SECONDS:-60}
scripts/sanitize-build.sh "$build" nv_fuzz_all
for target in $(ninja -C "$build" -t query nv_fuzz_all | awk '/input:/{f=1;next} /outputs:/{f=0} f{print $1}'); do
  name=$(basename "$target")
  corpus=$build/fuzz-corpus/$name
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$name
  echo "fuzz: $name for ${seconds}s"
  "$build/$target" -max_total_time="$seconds" "$corpus" $([[ -d $seeds ]] && echo "$seeds")
done
