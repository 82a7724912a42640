#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# boot-smoke.sh KERNEL_DIR INITRAMFS: boots the guest kernel under QEMU (TCG) with a test
# initramfs and prints what the test init reports (the guest's kernel release).
# Exit status: 0 when the init's line was seen, 1 otherwise (the console log is printed).
set -euo pipefail
kernel_dir=${1:?usage: boot-smoke.sh KERNEL_DIR INITRAMFS}
initramfs=${2:?usage: boot-smoke.sh KERNEL_DIR INITRAMFS}
[[ -r $kernel_dir/vmlinux ]] || { echo "boot-smoke: no vmlinux in $kernel_dir; run 'make kernel'" >&2; exit 1; }
[[ -r $initramfs ]] || { echo "boot-smoke: initramfs $initramfs missing; run 'make'" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout 60 qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off -accel tcg -cpu max \
  -m 256 -smp 1 -nodefaults -no-user-config -display none -no-reboot \
  -serial "file:$log" -kernel "$kernel_dir/vmlinux" -initrd "$initramfs" \
  -append "console=ttyS0 panic=-1 reboot=t quiet" || true
if line=$(grep -a 'nanovisor-testinit:' "$log"); then
  echo "${line//$'\r'/}"
  exit 0
fi
echo "boot-smoke: the guest did not reach its init; console log:" >&2
cat "$log" >&2
exit 1
