#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the default busybox OCI image from Debian's busybox-static, reproducibly.
#   images/busybox/build.sh OUT_DIR
# writes OUT_DIR/busybox-oci/ (an OCI image layout) and OUT_DIR/busybox-oci.tar (the same
# layout as a tar, for `nanovisor image import` and `ctr images import`), and the same pair for
# pause-oci (the same layer; command `sleep 1000000`): the sandbox image of CRI pods.
# Fixed mtimes (SOURCE_DATE_EPOCH, default 1700000000), sorted entries, uid/gid 0, gzip with
# no name/mtime: the same busybox binary always gives the same manifest digest.
set -euo pipefail
out=${1:?usage: build.sh OUT_DIR}
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-1700000000}
ref=${REF_NAME:-docker.io/library/busybox:latest}
pause_ref=${PAUSE_REF_NAME:-docker.io/nanovisor/pause:1}
python=/usr/bin/python3
[[ -x $python ]] || python=python3

if [[ ! -x $busybox ]]; then
  echo "build.sh: $busybox not found (apt-get install busybox-static)" >&2
  exit 1
fi
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  echo "build.sh: $busybox is not statically linked (install busybox-static)" >&2
  exit 1
fi
mkdir -p "$out"
"$python" - "$busybox" "$out" "$epoch" "$ref" "$pause_ref" <<'PY'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, time, shutil

busybox, out, epoch, ref, pause_ref = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
                         text=True).stdout.split()

entries = {}  # path -> (type, mode, data_or_target)
def d(path, mode=0o755): entries[path] = ("dir", mode, None)
def f(path, data, mode=0o644): entries[path] = ("file", mode, data)
def l(path, target): entries[path] = ("link", 0o777, target)

for p in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run",
          "var", "var/log", "home", "mnt"]:
    d(p)
d("tmp", 0o1777); d("var/tmp", 0o1777); d("root", 0o700)
with open(busybox, "rb") as fh:
    f("bin/busybox", fh.read(), 0o755)
for a in applets:
    a = a.lstrip("/")
    if a == "bin/busybox":
        continue
    parent = os.path.dirname(a)
    if parent and parent not in entries:
        d(parent)
    l(a, "/bin/busybox")
f("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
f("etc/group", b"root:x:0:\nnobody:x:65534:\n")
f("etc/shadow", b"root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o600)
f("etc/hostname", b"busybox\n")
f("etc/hosts", b"127.0.0.1\tlocalhost\n::1\tlocalhost\n")
f("etc/nsswitch.conf", b"hosts: files dns\n")

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for path in sorted(entries):
        kind, mode, data = entries[path]
        ti = tarfile.TarInfo(path)
        ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = epoch, 0, 0, "root", "root", mode
        if kind == "dir":
            ti.type = tarfile.DIRTYPE
            tar.addfile(ti)
        elif kind == "link":
            ti.type, ti.linkname = tarfile.SYMTYPE, data
            tar.addfile(ti)
        else:
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
layer_tar = raw.getvalue()
gz = io.BytesIO()
with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as g:
    g.write(layer_tar)
layer = gz.getvalue()

def sha(b): return hashlib.sha256(b).hexdigest()
def build(name, cmd, ref):
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "created": created, "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer_tar)]},
        "history": [{"created": created,
                     "created_by": "nanovisor images/busybox/build.sh (Debian busybox-static)"}],
    }
    config_b = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha(config_b), "size": len(config_b)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + sha(layer), "size": len(layer)}],
    }
    manifest_b = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + sha(manifest_b), "size": len(manifest_b),
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"org.opencontainers.image.ref.name": ref,
                                       "io.containerd.image.name": ref}}],
    }
    index_b = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()

    layout = os.path.join(out, name + "-oci")
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index_b}
    for b in (layer, config_b, manifest_b):
        files["blobs/sha256/" + sha(b)] = b
    for rel, data in files.items():
        with open(os.path.join(layout, rel), "wb") as fh:
            fh.write(data)

    tmp = os.path.join(out, name + "-oci.tar.tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in ["blobs", "blobs/sha256"]:
            ti = tarfile.TarInfo(rel); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = epoch
            tar.addfile(ti)
        for rel in sorted(files):
            ti = tarfile.TarInfo(rel); ti.size = len(files[rel]); ti.mode = 0o644; ti.mtime = epoch
            ti.uname = ti.gname = "root"
            tar.addfile(ti, io.BytesIO(files[rel]))
    os.replace(tmp, os.path.join(out, name + "-oci.tar"))
    print("sha256:" + sha(manifest_b), ref)


build("busybox", ["sh"], ref)
# The CRI sandbox ("pause") image: the same layer, a command that keeps the pod alive.
build("pause", ["sleep", "1000000"], pause_ref)
PY
