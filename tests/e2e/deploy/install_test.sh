#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# deploy/install.sh against a fake host root: installs the binaries and the runtime handler
# once (a second run changes nothing), keeps the operator's own config, adds `runc` only when
# the config lacks it, and uninstall restores the config byte for byte. Then a real containerd
# loads the installed config and its CRI plugin comes up with both handlers.
#   install_test.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
root=$(mktemp -d /tmp/nv-install-test-XXXXXX)
trap 'kill "$cpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$root"' EXIT
cpid=
prefix=$root/prefix
mkdir -p "$prefix/bin" "$prefix/share/nanovisor" "$root/host/etc/containerd"
for f in nanovisor containerd-shim-nanovisor-v2; do
  [ -x "$build/bin/$f" ] || { echo "SKIP: $build/bin/$f not built"; exit 0; }
  cp "$build/bin/$f" "$prefix/bin/"
done
for f in vmlinux initramfs.cpio.gz; do
  [ -f "$build/share/nanovisor/$f" ] || { echo "SKIP: $f missing (make kernel initramfs)"; exit 0; }
  cp "$build/share/nanovisor/$f" "$prefix/share/nanovisor/"
done
run() { NANOVISOR_PREFIX=$prefix "$src/deploy/install.sh" "$@" --host-root "$root/host" >/dev/null; }
config=$root/host/etc/containerd/config.toml

# An operator's config without runtimes: install adds runc and nanovisor.
printf 'version = 2\n# operator comment\n[grpc]\n  address = "%s"\n' "$root/c.sock" > "$config"
cp "$config" "$root/original.toml"
run install
[ -x "$root/host/opt/nanovisor/bin/containerd-shim-nanovisor-v2" ] || fail "shim not installed"
[ -f "$root/host/opt/nanovisor/share/nanovisor/vmlinux" ] || fail "kernel not installed"
grep -q 'runtimes.nanovisor]' "$config" || fail "nanovisor handler missing"
grep -q 'runtimes.runc]' "$config" || fail "runc handler not added to a config without it"
grep -q '# operator comment' "$config" || fail "operator config lost"
cp "$config" "$root/once.toml"
run install
cmp -s "$config" "$root/once.toml" || fail "second install changed the config"
[ "$(grep -c 'runtimes.nanovisor]' "$config")" = 1 ] || fail "handler added twice"

# The installed config loads: containerd's CRI plugin comes up with both handlers.
if [ -x /usr/bin/containerd ] && [ "$(id -u)" = 0 ]; then
  cp "$config" "$root/run.toml"
  printf 'root = "%s/croot"\nstate = "%s/cstate"\n' "$root" "$root" > "$root/head.toml"
  { head -n1 "$root/run.toml"; cat "$root/head.toml"; tail -n +2 "$root/run.toml"; } > "$root/full.toml"
  /usr/bin/containerd --config "$root/full.toml" > "$root/containerd.log" 2>&1 &
  cpid=$!
  ok=false
  for _ in $(seq 100); do
    if ctr --address "$root/c.sock" plugins ls 2>/dev/null | grep -Eq 'io.containerd.grpc.v1 +cri +.* ok'; then ok=true; break; fi
    sleep 0.1
  done
  $ok || { tail -n 20 "$root/containerd.log" >&2; fail "CRI plugin did not load the installed config"; }
  # The installer image (deploy/build-image.sh) does the same from inside a container: its
  # busybox tools run install.sh against a host root bind-mounted at /host.
  "$src/deploy/build-image.sh" "$build" >/dev/null
  C="ctr --address $root/c.sock"
  $C images import "$build/images/nanovisor-deploy-oci.tar" >/dev/null
  mkdir -p "$root/node/etc/containerd"
  $C run --rm --mount "type=bind,src=$root/node,dst=/host,options=rbind:rw" \
    docker.io/nanovisor/deploy:latest deploy1 /nanovisor/deploy/install.sh install --host-root /host \
    > "$root/deploy.out" 2>&1 || { cat "$root/deploy.out" >&2; fail "installer image failed"; }
  [ -x "$root/node/opt/nanovisor/bin/containerd-shim-nanovisor-v2" ] || fail "installer image did not install the shim"
  grep -q 'runtimes.nanovisor]' "$root/node/etc/containerd/config.toml" || fail "installer image did not configure containerd"
  kill "$cpid"; wait "$cpid" 2>/dev/null || true; cpid=
fi

run uninstall
cmp -s "$config" "$root/original.toml" || fail "uninstall did not restore the config"
[ ! -e "$root/host/opt/nanovisor" ] || fail "uninstall left /opt/nanovisor"

# A config that has runc already: install adds only nanovisor.
printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n' > "$config"
run install
[ "$(grep -c 'runtimes.runc]' "$config")" = 1 ] || fail "runc handler duplicated"
run uninstall
echo "PASS"
