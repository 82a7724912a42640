#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Image benchmark: generates a ~100 MiB 4-layer OCI image (random, incompressible-ish data,
# gzip), then measures `nanovisor`'s import (verify + unpack), rootfs EROFS build cold and
# cached, beside `umoci unpack` of the same layout. Prints markdown table rows:
#   metric | nanovisor | umoci | ratio
# usage: bench/images/bench.sh BUILD_DIR   (needs BUILD_DIR/bin/nanovisor or images tools)
set -euo pipefail
build=${1:?usage: bench.sh BUILD_DIR}
nv=${NANOVISOR:-$build/bin/nanovisor}
size_mib=${SIZE_MIB:-100}
work=$(mktemp -d /tmp/nv-bench-images-XXXXXX)
trap 'rm -rf "$work"' EXIT
python=/usr/bin/python3; [[ -x $python ]] || python=python3

# 1. A reproducible multi-layer OCI layout (4 layers of many files).
"$python" - "$work/layout" "$size_mib" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out, total = sys.argv[1], int(sys.argv[2]) << 20
rnd = random.Random(42)
os.makedirs(out + "/blobs/sha256")
def sha(b): return hashlib.sha256(b).hexdigest()
def put(b):
    open(out + "/blobs/sha256/" + sha(b), "wb").write(b); return "sha256:" + sha(b)
layers, diff_ids = [], []
for n in range(4):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        left, i = total // 4, 0
        while left > 0:
            sz = min(left, rnd.choice([4096, 65536, 1 << 20]))
            ti = tarfile.TarInfo(f"layer{n}/d{i % 50}/f{i}"); ti.size = sz; ti.mtime = 1
            t.addfile(ti, io.BytesIO(rnd.randbytes(sz // 2) + bytes(sz - sz // 2)))
            left -= sz; i += 1
    tar = raw.getvalue(); gz = gzip.compress(tar, compresslevel=1, mtime=0)
    diff_ids.append("sha256:" + sha(tar))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
                  "layers": layers}).encode()
idx = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
       "digest": put(man), "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
open(out + "/index.json", "w").write(json.dumps(idx))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

now() { date +%s.%N; }
secs() { "$python" -c "print(f'{$2 - $1:.2f}')"; }
ratio() { "$python" -c "print(f'{$1 / $2:.2f}x' if $2 > 0 else '-')"; }

store="$work/store"
t0=$(now); "$nv" --root "$store" image import "$work/layout" --name bench:1 --no-rootfs >/dev/null 2>&1; t1=$(now)
import_s=$(secs "$t0" "$t1")
t0=$(now); "$nv" --root "$store" image rootfs bench:1 >/dev/null 2>&1 || true; t1=$(now)
cold_s=$(secs "$t0" "$t1")
t0=$(now); "$nv" --root "$store" image rootfs bench:1 >/dev/null 2>&1 || true; t1=$(now)
cached_s=$(secs "$t0" "$t1")

umoci_s="-"
if command -v umoci >/dev/null; then
  t0=$(now); umoci unpack --image "$work/layout:bench" "$work/umoci-bundle" >/dev/null 2>&1 || true; t1=$(now)
  umoci_s=$(secs "$t0" "$t1")
fi
echo "| metric | nanovisor | umoci | ratio |"
echo "|---|---|---|---|"
echo "| import ${size_mib} MiB 4-layer image (verify+unpack), s | $import_s | $umoci_s | $(ratio "$import_s" "${umoci_s/-/0}") |"
echo "| rootfs EROFS build, cold, s | $cold_s | - | - |"
echo "| rootfs EROFS, cached, s | $cached_s | - | - |"
