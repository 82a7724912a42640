#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# guest_kernel_test.sh boot SRC INITRAMFS: the cached kernel boots to init and reports a
#   "-nanovisor" release (not the host's).
# guest_kernel_test.sh cache SRC: the cache key is stable for an unchanged config and changes
#   (meaning a rebuild) when one option of the fragment changes.
# Exit 77 = skipped (kernel not built: run `make kernel`).
set -euo pipefail
mode=$1 src=$2
cd "$src"
if ! kernel_dir=$(guest-kernel/build.sh --dir); then
  echo "SKIP: guest kernel not built; run 'make kernel'"
  exit 77
fi
case $mode in
  boot)
    line=$(scripts/boot-smoke.sh "$kernel_dir" "$3")
    echo "$line"
    release=${line##* }
    [[ $release == *-nanovisor ]] || { echo "FAIL: release '$release' lacks -nanovisor"; exit 1; }
    [[ $release != "$(uname -r)" ]] || { echo "FAIL: guest reported the host's release"; exit 1; }
    [[ $release == "$(cat "$kernel_dir/release")" ]] || { echo "FAIL: not the cached kernel"; exit 1; }
    ;;
  cache)
    same=$(guest-kernel/build.sh --dry-run)
    [[ $same == cached* ]] || { echo "FAIL: unchanged config not cached: $same"; exit 1; }
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    sed 's/^CONFIG_NR_CPUS=.*/CONFIG_NR_CPUS=16/' guest-kernel/config/x86_64.fragment >"$tmp"
    changed=$(NANOVISOR_KERNEL_FRAGMENT=$tmp guest-kernel/build.sh --dry-run)
    [[ $changed == "would build "* ]] || { echo "FAIL: changed config would not rebuild: $changed"; exit 1; }
    [[ ${changed##* } != "${same##* }" ]] || { echo "FAIL: same key for a changed config"; exit 1; }
    echo "ok: unchanged -> $same; changed -> $changed"
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
