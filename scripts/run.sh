#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh BUILD_DIR: what `make run` does once everything is built: imports the default busybox
# image on first use, then runs a command in a micro-VM with the nanovisor CLI.
set -euo pipefail
build=${1:-build}
nanovisor=$build/bin/nanovisor
if ! "$nanovisor" image inspect busybox >/dev/null 2>&1; then
  "$nanovisor" image import "$build/images/busybox-oci.tar" --name busybox
fi
exec "$nanovisor" run --rm busybox sh -c 'echo "hello from a nanovisor micro-VM, kernel $(uname -r)"'
