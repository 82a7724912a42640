#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian 12 package nanovisor needs (architecture.md, "Dependencies").
# Idempotent and quiet when everything is present.
set -euo pipefail

packages=(
  # build and tests
  cmake g++ make pkg-config ninja-build git ca-certificates ccache
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev clang-format clang-tidy
  # libraries
  libboost-dev libboost-system-dev protobuf-compiler libprotobuf-dev
  libspdlog-dev libfmt-dev libexpected-dev nlohmann-json3-dev
  libcli11-dev libtomlplusplus-dev libarchive-dev libssl-dev libseccomp-dev
  libzstd-dev zlib1g-dev
  # hypervisor drivers
  qemu-system-x86 qemu-utils libvirt-dev libvirt-daemon-system libvirt-clients
  # rootfs images, initramfs
  erofs-utils e2fsprogs cpio zstd
  # guest kernel
  linux-source-6.1 flex bison bc libelf-dev xz-utils
  # default image and e2e peers
  busybox-static containerd runc umoci
  # shim protos and CRI client
  golang-github-containerd-containerd-dev libgrpc++-dev protobuf-compiler-grpc
  # benchmarks and plots
  hyperfine gnuplot-nox
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages (${missing[*]}); run 'make deps' as root" >&2
  exit 1
fi
echo "deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/nanovisor-update-stamp
if [[ ! -e $stamp ]] || [[ -n $(find "$stamp" -mmin +1440 2>/dev/null) ]]; then
  apt-get update -qq
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/nanovisor-deps.log 2>&1 || {
  echo "deps: apt-get install failed; see /tmp/nanovisor-deps.log" >&2
  tail -n 20 /tmp/nanovisor-deps.log >&2
  exit 1
}
echo "deps: done"
