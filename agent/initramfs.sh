#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# initramfs.sh AGENT|BUILD_DIR: packs the static nanovisor-agent as /init (plus the mount
# points it uses and /dev/console) into an uncompressed newc cpio, cached outside the checkout
# by the binary's hash, and prints the cpio's path on the last line.
#
# Uncompressed on purpose: under QEMU TCG the guest kernel needs 0.4-0.8 s to gunzip the agent
# (zstd: 0.4-0.6 s) and 0.05-0.1 s to unpack it uncompressed; QEMU reading 3.5 MB instead of
# 1.6 MB from the host's page cache costs nothing measurable (docs/performance.md).
# The runtime's default path is still share/nanovisor/initramfs.cpio.gz (the kernel detects
# the format by its magic, so a compressed image works there too).
#
#   AGENT      path of the nanovisor-agent binary, or
#   BUILD_DIR  a build directory holding bin/nanovisor-agent
# Environment: NANOVISOR_CACHE (default /var/cache/nanovisor).
set -euo pipefail

die() { echo "initramfs: $*" >&2; exit 1; }

arg=${1:?usage: initramfs.sh AGENT_BINARY|BUILD_DIR}
if [[ -d $arg ]]; then
  agent=$arg/bin/nanovisor-agent
else
  agent=$arg
fi
[[ -x $agent ]] || die "agent binary not found: $agent (build it: ninja nanovisor-agent)"
if ldd "$agent" >/dev/null 2>&1; then
  die "$agent is dynamically linked; the initramfs needs the static build"
fi

cache=${NANOVISOR_CACHE:-/var/cache/nanovisor}
# Bump when this script changes what goes into the image.
layout_revision=2
key=$( { sha256sum <"$agent"; echo "layout=$layout_revision"; } | sha256sum | cut -c1-16)
out_dir=$cache/initramfs/$key
out=$out_dir/initramfs.cpio
if [[ -s $out ]]; then
  echo "initramfs: cached $key ($(stat -c %s "$out") bytes)" >&2
  echo "$out"
  exit 0
fi

mkdir -p "$out_dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage" "$out.tmp"' EXIT
mkdir -p "$stage"/{dev,proc,sys,run,tmp,etc}
# Debug info and the symbol table are 1/4 of the binary; the guest never needs them.
strip --strip-all -o "$stage/init" "$agent"
chmod 0755 "$stage/init"
# The kernel opens /dev/console for PID 1's stdio before the agent mounts devtmpfs.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null ||
  echo "initramfs: cannot mknod /dev/console (not root?): the agent's early output is lost" >&2
(cd "$stage" && find . -print0 | sort -z |
  cpio --null -o -H newc --reproducible --quiet --owner=0:0) >"$out.tmp"
mv "$out.tmp" "$out"
# Each agent build gets its own entry: keep the newest few.
ls -1dt "$cache"/initramfs/*/ 2>/dev/null | tail -n +6 | xargs -r rm -rf
echo "initramfs: built $key ($(stat -c %s "$out") bytes)" >&2
echo "$out"
