#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the nanovisor guest kernel (vmlinux + bzImage) from Debian's linux-source-6.1 into a
# cache outside the checkout, keyed by the config fragment's hash and the source version.
#
#   build.sh              build if needed; print the output directory on the last line
#   build.sh --dir        print the output directory (built or not); exit 1 if not built
#   build.sh --dry-run    say whether a build would run, and for which key
#
# Environment: NANOVISOR_CACHE (default /var/cache/nanovisor),
#              NANOVISOR_KERNEL_FRAGMENT (default guest-kernel/config/x86_64.fragment).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${NANOVISOR_CACHE:-/var/cache/nanovisor}
fragment=${NANOVISOR_KERNEL_FRAGMENT:-$here/config/x86_64.fragment}
tarball=/usr/src/linux-source-6.1.tar.xz
# Bump when this script changes how the kernel is built.
build_revision=1

die() { echo "kernel: $*" >&2; exit 1; }

[[ -r $fragment ]] || die "config fragment not found: $fragment"
[[ -r $tarball ]] || die "$tarball missing; run 'make deps' (package linux-source-6.1)"
src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) ||
  die "package linux-source-6.1 is not installed; run 'make deps'"
key=$( { cat "$fragment"; echo "source=$src_version revision=$build_revision"; } |
  sha256sum | cut -c1-16)
out=$cache/kernel/$key

case ${1:-} in
  --dir)
    echo "$out"
    [[ -e $out/done ]]
    exit ;;
  --dry-run)
    if [[ -e $out/done ]]; then echo "cached $key"; else echo "would build $key"; fi
    exit 0 ;;
  "") ;;
  *) die "unknown option '$1' (try --dir or --dry-run)" ;;
esac

if [[ -e $out/done ]]; then
  echo "kernel: cached $key ($(cat "$out/release"))" >&2
  echo "$out"
  exit 0
fi

mkdir -p "$cache/src" "$out"
exec 9>"$cache/kernel/.lock"
flock 9
[[ -e $out/done ]] && { echo "$out"; exit 0; }

src=$cache/src/linux-$src_version
if [[ ! -e $src/.extracted ]]; then
  echo "kernel: extracting linux-source $src_version" >&2
  rm -rf "$src" && mkdir -p "$src"
  tar -xf "$tarball" -C "$src" --strip-components=1
  touch "$src/.extracted"
fi

obj=$out/build
mkdir -p "$obj"
export KBUILD_BUILD_USER=nanovisor KBUILD_BUILD_HOST=nanovisor
make_args=(-C "$src" O="$obj" ARCH=x86_64 -s)
make "${make_args[@]}" tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" >/dev/null
make "${make_args[@]}" olddefconfig >/dev/null

# Every option the fragment asks for must have survived olddefconfig's dependency resolution.
dropped=()
while IFS= read -r line; do
  case $line in
    CONFIG_*=*) grep -qxF -- "$line" "$obj/.config" || dropped+=("$line") ;;
    "# CONFIG_"*" is not set")
      opt=${line#\# }; opt=${opt%% *}
      grep -q "^$opt=" "$obj/.config" && dropped+=("$line") ;;
  esac
done <"$fragment"
((${#dropped[@]} == 0)) || die "config options lost to unmet dependencies: ${dropped[*]}"

log=$out/build.log
jobs=$(nproc)
echo "kernel: building $key with $jobs jobs (about 4 minutes on 2 cores; log: $log)" >&2
start=$(date +%s)
make -C "$src" O="$obj" ARCH=x86_64 -j"$jobs" vmlinux bzImage >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT INT TERM
while kill -0 $pid 2>/dev/null; do
  sleep 5
  objs=$(grep -c '^  CC' "$log" || true)
  msg="kernel: $objs files compiled, $(($(date +%s) - start)) s"
  if [[ -t 2 ]]; then printf '\r%s' "$msg" >&2; else echo "$msg" >&2; fi
done
[[ -t 2 ]] && echo >&2
wait $pid || { tail -n 30 "$log" >&2; die "kernel build failed; full log in $log"; }
trap - EXIT INT TERM

cp "$obj/vmlinux" "$out/vmlinux"
cp "$obj/arch/x86/boot/bzImage" "$out/bzImage"
cp "$obj/.config" "$out/config"
make "${make_args[@]}" kernelrelease >"$out/release"
touch "$out/done"
echo "kernel: built $(cat "$out/release") in $(($(date +%s) - start)) s" >&2
echo "$out"
