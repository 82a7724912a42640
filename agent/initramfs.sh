#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# initramfs.sh AGENT|BUILD_DIR: packs the static nanovisor-agent as /init (plus the mount
# points it uses and /dev/console) into a gzip'd newc cpio, cached outside the checkout by
# the binary's hash, and prints the cpio's path on the last line.
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
layout_revision=1
key=$( { sha256sum <"$agent"; echo "layout=$layout_revision"; } | sha256sum | cut -c1-16)
out_dir=$cache/initramfs/$key
out=$out_dir/initramfs.cpio.gz
if [[ -s $out ]]; then
  echo "initramfs: cached $key ($(stat -c %s "$out") bytes)" >&2
  echo "$out"
  exit 0
fi

mkdir -p "$out_dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage" "$out.tmp"' EXIT
mkdir -p "$stage"/{dev,proc,sys,run,tmp,etc}
# Debug info is most of the binary's size; the guest never needs it.
strip --strip-debug -o "$stage/init" "$agent"
chmod 0755 "$stage/init"
# The kernel opens /dev/console for PID 1's stdio before the agent mounts devtmpfs.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null ||
  echo "initramfs: cannot mknod /dev/console (not root?): the agent's early output is lost" >&2
(cd "$stage" && find . -print0 | sort -z |
  cpio --null -o -H newc --reproducible --quiet --owner=0:0) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
# Each agent build gets its own entry: keep the newest few.
ls -1dt "$cache"/initramfs/*/ 2>/dev/null | tail -n +6 | xargs -r rm -rf
echo "initramfs: built $key ($(stat -c %s "$out") bytes)" >&2
echo "$out"
