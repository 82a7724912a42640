#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the installer image of deploy/nanovisor-deploy.yaml as an OCI layout tar:
#   deploy/build-image.sh BUILD_DIR [REF]     (make deploy-image)
# Layers: the project's busybox image (a shell, awk, install, nsenter for install.sh), then
# /nanovisor/{bin,share/nanovisor,deploy/install.sh} from BUILD_DIR. Writes
# BUILD_DIR/images/nanovisor-deploy-oci.tar; load it with `ctr -n k8s.io images import` or
# push it with skopeo (`skopeo copy oci-archive:... docker://REGISTRY/...`).
set -euo pipefail
build=${1:?usage: build-image.sh BUILD_DIR [REF]}
ref=${2:-docker.io/nanovisor/deploy:latest}
src=$(cd "$(dirname "$0")/.." && pwd)
for f in bin/nanovisor bin/containerd-shim-nanovisor-v2 share/nanovisor/vmlinux \
         share/nanovisor/initramfs.cpio.gz images/busybox-oci.tar; do
  [[ -f $build/$f ]] || { echo "build-image.sh: $build/$f missing (make build kernel initramfs images)" >&2; exit 1; }
done
/usr/bin/python3 - "$build" "$src" "$ref" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile

build, src, ref = sys.argv[1:4]
epoch = 1700000000
def sha(b): return hashlib.sha256(b).hexdigest()

with tarfile.open(os.path.join(build, "images/busybox-oci.tar")) as oci:
    blob = lambda d: oci.extractfile("blobs/sha256/" + d.split(":", 1)[1]).read()
    index = json.loads(oci.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    base_config = json.loads(blob(manifest["config"]["digest"]))
    base_layer = blob(manifest["layers"][0]["digest"])

files = {"nanovisor/deploy/install.sh": (os.path.join(src, "deploy/install.sh"), 0o755)}
for name in ("nanovisor", "containerd-shim-nanovisor-v2", "nanovisor-vmm"):
    path = os.path.join(build, "bin", name)
    if os.path.exists(path):
        files["nanovisor/bin/" + name] = (path, 0o755)
for name in ("vmlinux", "initramfs.cpio.gz"):
    files["nanovisor/share/nanovisor/" + name] = (os.path.join(build, "share/nanovisor", name), 0o644)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    dirs = sorted({os.path.dirname(p)[:i] for p in files for i in
                   [j for j, c in enumerate(os.path.dirname(p) + "/") if c == "/"]})
    for d in dirs:
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = epoch
        tar.addfile(ti)
    for name in sorted(files):
        path, mode = files[name]
        with open(os.path.realpath(path), "rb") as fh:
            data = fh.read()
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.mtime = epoch
        tar.addfile(ti, io.BytesIO(data))
layer_tar = raw.getvalue()
gz = io.BytesIO()
with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as g:
    g.write(layer_tar)
layer = gz.getvalue()

config = dict(base_config)
config["config"] = dict(base_config["config"], Cmd=[
    "/bin/sh", "-c",
    "/nanovisor/deploy/install.sh install --host-root /host --restart && exec sleep 2147483647"])
config["rootfs"] = {"type": "layers", "diff_ids": base_config["rootfs"]["diff_ids"] +
                    ["sha256:" + sha(layer_tar)]}
config["history"] = base_config.get("history", []) + [
    {"created": config["created"], "created_by": "nanovisor deploy/build-image.sh"}]
config_b = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
new_manifest = {
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + sha(config_b), "size": len(config_b)},
    "layers": manifest["layers"] + [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                     "digest": "sha256:" + sha(layer), "size": len(layer)}],
}
manifest_b = json.dumps(new_manifest, sort_keys=True, separators=(",", ":")).encode()
index_b = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": "sha256:" + sha(manifest_b), "size": len(manifest_b),
                   "platform": {"architecture": "amd64", "os": "linux"},
                   "annotations": {"org.opencontainers.image.ref.name": ref,
                                   "io.containerd.image.name": ref}}]},
    sort_keys=True, separators=(",", ":")).encode()
out = os.path.join(build, "images/nanovisor-deploy-oci.tar")
entries = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index_b}
for b in (base_layer, layer, config_b, manifest_b):
    entries["blobs/sha256/" + sha(b)] = b
with tarfile.open(out + ".tmp", mode="w", format=tarfile.PAX_FORMAT) as tar:
    for d in ("blobs", "blobs/sha256"):
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = epoch
        tar.addfile(ti)
    for name in sorted(entries):
        ti = tarfile.TarInfo(name); ti.size = len(entries[name]); ti.mode = 0o644; ti.mtime = epoch
        tar.addfile(ti, io.BytesIO(entries[name]))
os.replace(out + ".tmp", out)
print(f"{out}: {ref} sha256:{sha(manifest_b)} ({len(layer) >> 20} MiB nanovisor layer)")
PY
