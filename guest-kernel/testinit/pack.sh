#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pack.sh INIT_BINARY OUT.cpio.gz: an initramfs holding INIT_BINARY as /init and /dev/console.
set -euo pipefail
init=${1:?usage: pack.sh INIT_BINARY OUT.cpio.gz}
out=${2:?usage: pack.sh INIT_BINARY OUT.cpio.gz}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys}
install -m 0755 "$init" "$stage/init"
# The kernel opens /dev/console for PID 1's stdio before devtmpfs is mounted.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
(cd "$stage" && find . -print0 | sort -z |
  cpio --null -o -H newc --reproducible --quiet --owner=0:0) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
