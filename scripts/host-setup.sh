#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# host-setup.sh: what udev and systemd do on a normal host, for machines without them (CI):
#   - /dev/kvm owned by group kvm, mode 0660 (libvirt's QEMU runs as libvirt-qemu in group kvm;
#     with a root-only /dev/kvm libvirt re-probes QEMU on every domain start, ~50 s here);
#   - virtlogd and libvirtd started when they are not running (the libvirt tests need them).
# Idempotent; changes nothing that is already right.
set -euo pipefail
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
  if [[ $(stat -c '%G %a' /dev/kvm) != "kvm 660" ]]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
fi
for daemon in virtlogd libvirtd; do
  if command -v "$daemon" >/dev/null && ! pgrep -x "$daemon" >/dev/null; then
    "$daemon" -d 2>/dev/null || echo "host-setup: could not start $daemon; libvirt tests will skip" >&2
  fi
done
