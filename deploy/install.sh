#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# nanovisor node installer: run by the DaemonSet in deploy/nanovisor-deploy.yaml (with the
# host's / mounted at /host), or by hand on a node.
#
#   install.sh install   [--host-root DIR] [--containerd-config PATH] [--restart]
#   install.sh uninstall [--host-root DIR] [--containerd-config PATH] [--restart]
#
# install: copies bin/{nanovisor,containerd-shim-nanovisor-v2,nanovisor-vmm} and
#   share/nanovisor/{vmlinux,initramfs.cpio.gz} from the install prefix this script lives in
#   (<prefix>/deploy/install.sh, or NANOVISOR_PREFIX) to <host-root>/opt/nanovisor, and adds the
#   `nanovisor` runtime handler to containerd's config between marker lines (and the `runc`
#   handler too when the config has none: CRI refuses a runtimes table without its default).
#   Running it again changes nothing.
# uninstall: removes both again, leaving the config as it was before install.
# --restart: restarts containerd afterwards (in the host's namespaces when run in a pod).
set -eu

action=${1:-}
[ "$action" = install ] || [ "$action" = uninstall ] || {
  echo "usage: install.sh install|uninstall [--host-root DIR] [--containerd-config PATH] [--restart]" >&2
  exit 2
}
shift
host_root=/
config=
restart=false
while [ $# -gt 0 ]; do
  case "$1" in
    --host-root) host_root=${2:?--host-root needs a directory}; shift 2 ;;
    --containerd-config) config=${2:?--containerd-config needs a path}; shift 2 ;;
    --restart) restart=true; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
host_root=${host_root%/}
[ -n "$config" ] || config=$host_root/etc/containerd/config.toml
prefix=${NANOVISOR_PREFIX:-$(cd "$(dirname "$0")/.." && pwd)}
dest=$host_root/opt/nanovisor
begin='# BEGIN nanovisor (managed by nanovisor install.sh; do not edit)'
end='# END nanovisor'

remove_block() {
  [ -f "$config" ] || return 0
  awk -v b="$begin" -v e="$end" '$0 == b {skip = 1; next} skip && $0 == e {skip = 0; next} !skip' \
    "$config" > "$config.nanovisor.tmp"
  mv "$config.nanovisor.tmp" "$config"
}

if [ "$action" = install ]; then
  for f in bin/nanovisor bin/containerd-shim-nanovisor-v2 share/nanovisor/vmlinux \
           share/nanovisor/initramfs.cpio.gz; do
    [ -f "$prefix/$f" ] || { echo "install.sh: $prefix/$f missing (make build kernel initramfs)" >&2; exit 1; }
  done
  mkdir -p "$dest/bin" "$dest/share/nanovisor" "$(dirname "$config")"
  # Each file lands under a temporary name and is renamed: a running shim keeps its inode.
  put() { cp "$1" "$2.new" && chmod "$3" "$2.new" && mv "$2.new" "$2"; }
  for f in nanovisor containerd-shim-nanovisor-v2 nanovisor-vmm; do
    if [ -f "$prefix/bin/$f" ]; then put "$prefix/bin/$f" "$dest/bin/$f" 0755; fi
  done
  for f in vmlinux initramfs.cpio.gz; do
    put "$prefix/share/nanovisor/$f" "$dest/share/nanovisor/$f" 0644
  done
  remove_block
  [ -f "$config" ] || printf 'version = 2\n' > "$config"
  {
    echo "$begin"
    if ! grep -q 'containerd\.runtimes\.runc\]' "$config"; then
      echo '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]'
      echo '  runtime_type = "io.containerd.runc.v2"'
    fi
    echo '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nanovisor]'
    echo '  runtime_type = "io.containerd.nanovisor.v2"'
    echo '  runtime_path = "/opt/nanovisor/bin/containerd-shim-nanovisor-v2"'
    echo '  privileged_without_host_devices = true'
    echo '  pod_annotations = ["io.nanovisor.*"]'
    echo "$end"
  } >> "$config"
  echo "nanovisor: installed to $dest; runtime handler 'nanovisor' in $config"
else
  remove_block
  rm -rf "$dest"
  echo "nanovisor: removed $dest and the runtime handler from $config"
fi

if $restart; then
  if [ "$host_root" != "" ] && [ "$host_root" != "/" ]; then
    nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart containerd
  else
    systemctl restart containerd
  fi
fi
