#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a deterministic multi-layer OCI image layout for the image benchmarks (no network).

Usage: bench/images/gen_image.py OUT_DIR [--mib N] [--seed S]

OUT_DIR becomes an OCI image layout (oci-layout, index.json, blobs/sha256/) whose index entry
is tagged `bench` (org.opencontainers.image.ref.name), so `umoci unpack --image OUT_DIR:bench`
and `nanovisor image import OUT_DIR --name bench:1` read the same bytes. About N MiB (default
100) of uncompressed file data in 5 gzip layers:
  1 base    many small compressible text files (~24% of N), dirs, symlinks
  2 libs    incompressible random blobs from the fixed seed (~40%)
  3 app     half-random/half-text medium files plus more small files (~24%)
  4 update  overwrites, a whiteout of a file and of a directory, an opaque dir (~10%)
  5 config  a few small files and a hardlink
Same seed and N give byte-identical blobs (fixed mtimes, uid/gid 0, gzip without name/mtime).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile

MTIME = 1700000000
WORDS = ("alpha beta gamma delta kernel image layer sandbox vm guest host block page cache "
         "mount overlay erofs digest manifest config blob store verify unpack archive").split()


class Layer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs = set()

    def _info(self, name, type_, mode):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.uid, ti.gid = type_, mode, MTIME, 0, 0
        ti.uname = ti.gname = "root"
        return ti

    def dir(self, name):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in self.dirs:
                self.dirs.add(p)
                self.tar.addfile(self._info(p, tarfile.DIRTYPE, 0o755))

    def file(self, name, data, mode=0o644):
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target):
        ti = self._info(name, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tar.addfile(ti)

    def finish(self):
        self.tar.close()
        return self.buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    total = args.mib << 20
    # 1 MiB of compressible text; small files are slices of it.
    text = " ".join(rnd.choice(WORDS) for _ in range(200000)).encode()[: 1 << 20]

    def text_bytes(n):
        off = rnd.randrange(0, len(text) - n) if n < len(text) else 0
        return (text * (n // len(text) + 1))[off:off + n] if n >= len(text) else text[off:off + n]

    def small_files(layer, prefix, budget):
        i = 0
        while budget > 0:
            n = min(budget, rnd.choice([512, 2048, 4096, 8192, 16384]))
            layer.file(f"{prefix}/d{i % 64:02d}/f{i:05d}.txt", text_bytes(n))
            budget -= n
            i += 1

    layers = []
    base = Layer()
    for d in ("bin", "etc", "lib", "tmp", "usr/share/doc", "var/cache"):
        base.dir(d)
    small_files(base, "usr/share/doc", total * 24 // 100)
    base.file("etc/os-release", b"NAME=bench\nID=bench\n")
    base.file("etc/removed.conf", b"whited out by layer 4\n")
    base.file("var/cache/gone/data.bin", text_bytes(65536))
    base.file("var/cache/opaque/old.txt", b"hidden by the opaque dir in layer 4\n")
    base.symlink("bin/sh", "busybox")
    base.file("bin/busybox", rnd.randbytes(1 << 20), 0o755)
    layers.append(base.finish())

    libs = Layer()
    budget, i = total * 40 // 100, 0
    while budget > 0:
        n = min(budget, rnd.choice([256 << 10, 1 << 20, 4 << 20]))
        libs.file(f"usr/lib/bench/lib{i:03d}.so", rnd.randbytes(n), 0o755)
        budget -= n
        i += 1
    layers.append(libs.finish())

    app = Layer()
    budget, i = total * 12 // 100, 0
    while budget > 0:
        n = min(budget, 2 << 20)
        app.file(f"opt/app/data/blob{i:02d}.dat", rnd.randbytes(n // 2) + text_bytes(n - n // 2))
        budget -= n
        i += 1
    small_files(app, "opt/app/share", total * 12 // 100)
    layers.append(app.finish())

    upd = Layer()
    upd.file("etc/.wh.removed.conf", b"")
    upd.file("var/cache/.wh.gone", b"")
    upd.file("var/cache/opaque/.wh..wh..opq", b"")
    upd.file("var/cache/opaque/new.txt", b"layer 4\n")
    budget, i = total * 10 // 100, 0
    while budget > 0:
        n = min(budget, 1 << 20)
        upd.file(f"usr/lib/bench/lib{i:03d}.so", rnd.randbytes(n), 0o755)
        budget -= n
        i += 1
    layers.append(upd.finish())

    cfg_layer = Layer()
    cfg_layer.file("etc/app.conf", b"threads=2\n")
    cfg_layer.hardlink("etc/app.conf.link", "etc/app.conf")
    cfg_layer.file("etc/motd", b"nanovisor image bench\n")
    layers.append(cfg_layer.finish())

    os.makedirs(os.path.join(args.out, "blobs/sha256"), exist_ok=True)

    def put(data):
        hx = hashlib.sha256(data).hexdigest()
        with open(os.path.join(args.out, "blobs/sha256", hx), "wb") as f:
            f.write(data)
        return "sha256:" + hx

    descs, diff_ids = [], []
    for raw in layers:
        gz = gzip.compress(raw, compresslevel=6, mtime=0)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": put(gz), "size": len(gz)})
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                     sort_keys=True).encode()
    man = json.dumps({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": put(cfg), "size": len(cfg)},
                      "layers": descs}, sort_keys=True).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(man),
        "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    raw_mib = sum(len(r) for r in layers) / (1 << 20)
    gz_mib = sum(d["size"] for d in descs) / (1 << 20)
    print(f"{len(layers)} layers, {raw_mib:.1f} MiB uncompressed, {gz_mib:.1f} MiB gzip")


if __name__ == "__main__":
    main()
