#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nanovisor benchmarks: each row times our side and a peer on the same machine in the same run.

Usage: bench/run.py BUILD_DIR [--runs N] [--only GROUP|SUBSTRING]
Writes bench/results/latest.md and latest.json and prints the table. Each measurement is run
once as a warm-up, then N times (default 5), ours and the peer's alternating; the table shows
medians, the ratio ours/peer, the goal, and min/max. Rows whose prerequisites are missing are
listed as skipped with the reason.

Groups: vm (nanovisor run and exec beside bare QEMU and runc, guest boot), containerd (`ctr run`
through a private containerd with our shim beside runc's, host memory per idle pod),
density (NV_BENCH_DENSITY idle sandboxes, default 50, filling for at most
NV_BENCH_DENSITY_SECONDS, default 300: how many answer exec, start rate, memory; plotted to
bench/results/density.svg),
vmm (nanovisor-vmm beside QEMU microvm -accel kvm running the same test guest: start to
first guest output, memory overhead, virtio-blk throughput and 4 KiB IOPS, vsock echo),
kernel (kernel cache), images (OCI import and EROFS rootfs build of a generated ~100 MiB
5-layer image, beside `umoci unpack`). `--only` (or
NV_BENCH_ONLY) picks a group by name or rows whose metric contains the string; a partial run
replaces only its own rows in latest.{md,json} and keeps the others.

Scratch files live in one work dir, removed at exit: NV_BENCH_WORKDIR if set, else /dev/shm
when it exists (tmpfs: the image rows then time our code and the peer's, not the writeback of
a shared disk), else the system temp dir. NV_BENCH_IMAGE_MIB sets the image size (default 100).
"""
import argparse
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = None  # set by main(): the scratch dir shared by every benchmark
CLEANUPS = []  # run by main() before the work dir goes (e.g. stop the private containerd)
IMAGE_MIB = int(os.environ.get("NV_BENCH_IMAGE_MIB", "100"))


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, capture_output=True,
                          text=True, **kw)


def timed(cmd, env=None):
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.monotonic() - start


class Skip(Exception):
    pass


def kernel_dir():
    r = subprocess.run([str(ROOT / "guest-kernel/build.sh"), "--dir"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise Skip("guest kernel not built (make kernel)")
    return Path(r.stdout.strip())


def guest_clock_args(build):
    """The TSC clocksource arguments the qemu driver gives a TCG guest (`nanovisor check` prints
    them), so bare boots get the same guest clock as ours."""
    r = subprocess.run([str(build / "bin/nanovisor"), "check"], capture_output=True, text=True)
    m = re.search(r"tsc_early_khz=\d+ tsc=reliable", r.stdout + r.stderr)
    return " " + m.group(0) if m else ""


def qemu_boot_cmd(machine, kernel, initramfs, clock):
    return ["qemu-system-x86_64", "-M", machine, "-accel", "tcg", "-cpu", "max", "-m", "256",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "null", "-kernel", str(kernel), "-initrd", str(initramfs),
            "-append", "console=ttyS0 panic=-1 reboot=t quiet" + clock]


# Each benchmark: (metric, unit, goal, function(build) -> (ours_fn, peer_fn or None, peer_name))
def bench_boot_to_init(build):
    kdir = kernel_dir()
    initramfs = build / "guest-kernel/testinit/testinit.cpio.gz"
    if not initramfs.exists():
        raise Skip("test initramfs not built (make)")
    clock = guest_clock_args(build)
    ours = qemu_boot_cmd("microvm,x-option-roms=off,rtc=on,acpi=off", kdir / "vmlinux", initramfs,
                         clock)
    peer = qemu_boot_cmd("pc", kdir / "bzImage", initramfs, clock)
    return (lambda: timed(ours)), (lambda: timed(peer)), "QEMU pc + bzImage"


def bench_kernel_cached(build):
    kernel_dir()
    cmd = [str(ROOT / "guest-kernel/build.sh")]
    return (lambda: timed(cmd)), None, ""


def bench_run_true(build):
    kdir = kernel_dir()
    initramfs = build / "guest-kernel/testinit/testinit.cpio.gz"
    ours = busybox_cli(build) + ["run", "--rm", "busybox", "true"]
    peer = qemu_boot_cmd("microvm,x-option-roms=off,rtc=on,acpi=off", kdir / "vmlinux", initramfs,
                         guest_clock_args(build))
    return (lambda: timed(ours)), (lambda: timed(peer)), "bare QEMU TCG boot to init (same kernel)"


def busybox_cli(build):
    """A private nanovisor store with busybox imported: (base argv, root)."""
    nanovisor = build / "bin/nanovisor"
    tar = build / "images/busybox-oci.tar"
    if not (nanovisor.exists() and tar.exists() and (build / "share/nanovisor/initramfs.cpio.gz").exists()):
        raise Skip("nanovisor, initramfs or busybox image not built (make initramfs images)")
    root = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    base = [str(nanovisor), "--image-root", str(root / "images"), "--state-dir", str(root / "state")]
    sh(base + ["image", "import", str(tar), "--name", "busybox"])
    return base


class RuncBundle:
    """The same busybox image as an OCI bundle for runc, the peer of the run and exec rows:
    the layers of build/images/busybox-oci.tar unpacked in order, config from `runc spec`."""
    path = None

    @classmethod
    def setup(cls, build):
        if not shutil.which("runc"):
            raise Skip("runc missing (apt-get install runc)")
        if cls.path is None:
            bundle = WORK / "runc-bundle"
            rootfs = bundle / "rootfs"
            rootfs.mkdir(parents=True)
            with tarfile.open(build / "images/busybox-oci.tar") as oci:
                def blob(digest):
                    return oci.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
                index = json.load(oci.extractfile("index.json"))
                manifest = json.load(blob(index["manifests"][0]["digest"]))
                for layer in manifest["layers"]:
                    with tarfile.open(fileobj=blob(layer["digest"]), mode="r:*") as t:
                        t.extractall(rootfs)
            sh(["runc", "spec", "--bundle", str(bundle)])
            config = json.loads((bundle / "config.json").read_text())
            config["process"]["terminal"] = False
            (bundle / "config.json").write_text(json.dumps(config))
            cls.path = bundle
        return cls.path

    @staticmethod
    def with_args(bundle, args):
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = args
        (bundle / "config.json").write_text(json.dumps(config))

    @staticmethod
    def runc():
        return ["runc", "--root", str(WORK / "runc-state")]


def bench_run_true_builtin_vs_libvirt(build):
    """The builtin driver (nanovisor-vmm) beside the libvirt driver, where both can run."""
    probe = subprocess.run([str(build / "bin/nanovisor-vmm"), "probe"], capture_output=True)
    if probe.returncode != 0:
        raise Skip("this host's KVM cannot run an unmodified guest (nanovisor-vmm probe), so the "
                   "builtin driver cannot boot Linux here")
    r = subprocess.run([str(build / "bin/nanovisor"), "check"], capture_output=True, text=True)
    if "[ok  ] libvirt" not in r.stdout:
        raise Skip("libvirtd not reachable (virtlogd -d && libvirtd -d)")
    base = busybox_cli(build)
    ours = base[:1] + ["--hypervisor", "builtin"] + base[1:] + ["run", "--rm", "busybox", "true"]
    peer = base[:1] + ["--hypervisor", "libvirt"] + base[1:] + ["run", "--rm", "busybox", "true"]
    return (lambda: timed(ours)), (lambda: timed(peer)), "the libvirt driver (same image)"


def bench_run_true_vs_runc(build):
    base = busybox_cli(build)
    bundle = RuncBundle.setup(build)
    RuncBundle.with_args(bundle, ["true"])
    count = iter(range(1 << 30))
    ours = base + ["run", "--rm", "busybox", "true"]
    return ((lambda: timed(ours)),
            (lambda: timed(RuncBundle.runc() + ["run", "--bundle", str(bundle),
                                                f"nv-bench-{next(count)}"])),
            "runc run (same busybox image)")


def bench_exec_latency(build):
    base = busybox_cli(build)
    bundle = RuncBundle.setup(build)
    RuncBundle.with_args(bundle, ["sleep", "3600"])
    sh(base + ["run", "-d", "--name", "nv-bench-exec", "busybox", "sleep", "3600"])
    runc = RuncBundle.runc()
    subprocess.run(runc + ["run", "-d", "--bundle", str(bundle), "nv-bench-exec"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cleanup():
        subprocess.run(base + ["rm", "-f", "nv-bench-exec"], capture_output=True)
        subprocess.run(runc + ["delete", "-f", "nv-bench-exec"], capture_output=True)
    return ((lambda: timed(base + ["exec", "nv-bench-exec", "true"])),
            (lambda: timed(runc + ["exec", "nv-bench-exec", "true"])),
            "runc exec in a running container", cleanup)


class Containerd:
    """A private containerd for the ctr rows: root, state, socket and config under WORK, the
    CRI plugin off, our bin/ first on its PATH (so it finds containerd-shim-nanovisor-v2)."""
    sock = None
    image = "docker.io/library/busybox:latest"
    shims = {"nanovisor": "containerd-shim-nanovisor-v2", "runc": "containerd-shim-runc-v2"}

    @classmethod
    def setup(cls, build):
        for tool in ("/usr/bin/containerd", "/usr/bin/ctr"):
            if not os.access(tool, os.X_OK):
                raise Skip(f"{tool} missing (apt-get install containerd)")
        if not (build / "bin/containerd-shim-nanovisor-v2").exists():
            raise Skip("containerd-shim-nanovisor-v2 not built (make build)")
        busybox_cli(build)  # the same prerequisites as the CLI rows
        if cls.sock:
            return cls
        root = WORK / "containerd"
        root.mkdir()
        cls.sock = str(root / "containerd.sock")
        (root / "config.toml").write_text(
            f'version = 2\nroot = "{root}/root"\nstate = "{root}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{cls.sock}"\n')
        env = dict(os.environ, PATH=f"{build / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                   NANOVISOR_STATE_DIR=str(root / "nv-state"),
                   NANOVISOR_IMAGE_ROOT=str(root / "nv-images"))
        log = open(root / "containerd.log", "w")
        proc = subprocess.Popen(["/usr/bin/containerd", "--config", str(root / "config.toml")],
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)

        def stop():
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            cls.sock = None
        CLEANUPS.append(stop)
        for _ in range(100):
            if subprocess.run(cls.ctr("version"), capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        sh(cls.ctr("images", "import", str(build / "images/busybox-oci.tar")))
        return cls

    @classmethod
    def ctr(cls, *args):
        return ["ctr", "--address", cls.sock, *args]

    @classmethod
    def runtime(cls, name):
        return f"io.containerd.{name}.v2"


def bench_ctr_run_true(build):
    c = Containerd.setup(build)
    count = iter(range(1 << 30))

    def run(name):
        return lambda: timed(c.ctr("run", "--rm", "--runtime", c.runtime(name), c.image,
                                   f"nv-bench-{name}-{next(count)}", "true"))
    return run("nanovisor"), run("runc"), "ctr run --rm with runc (io.containerd.runc.v2)"


def tree_rss_mib(root_pid):
    """Resident memory (Pss where the kernel has it) of a process and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total_kib, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            key = "Pss:"
        except OSError:
            try:
                text, key = Path(f"/proc/{pid}/status").read_text(), "VmRSS:"
            except OSError:
                continue
        for line in text.splitlines():
            if line.startswith(key):
                total_kib += int(line.split()[1])
                break
    return total_kib / 1024


def bench_idle_pod_memory(build):
    """Host memory one idle pod costs — a sandbox and one container, both `sleep`, grouped the
    way containerd's CRI plugin groups them (annotations): its shim and everything under it
    (for nanovisor the one VMM with the guest's touched memory; for runc the workloads)."""
    c = Containerd.setup(build)
    count = iter(range(1 << 30))

    def measure_one(name):
        def fn():
            pod = f"nv-bench-pod-{name}-{next(count)}"
            member = pod + "-c1"
            ids = []
            try:
                for cid, kind in ((pod, "sandbox"), (member, "container")):
                    sh(c.ctr("run", "-d", "--runtime", c.runtime(name),
                             "--annotation", f"io.kubernetes.cri.container-type={kind}",
                             "--annotation", f"io.kubernetes.cri.sandbox-id={pod}",
                             c.image, cid, "sleep", "3600"))
                    ids.append(cid)
                time.sleep(2)  # let the guest settle after boot
                shim = subprocess.run(["pgrep", "-f", f"{c.shims[name]} .*-id {pod}( |$)"],
                                      capture_output=True, text=True).stdout.split()
                if len(shim) != 1:
                    raise Skip(f"{len(shim)} {c.shims[name]} processes for pod {pod}, not 1")
                return tree_rss_mib(int(shim[0]))
            finally:
                for cid in reversed(ids):
                    subprocess.run(c.ctr("task", "kill", "-s", "KILL", cid), capture_output=True)
                    for _ in range(100):
                        if subprocess.run(c.ctr("task", "rm", cid),
                                          capture_output=True).returncode == 0:
                            break
                        time.sleep(0.1)
                    subprocess.run(c.ctr("container", "rm", cid), capture_output=True)
        return fn
    return measure_one("nanovisor"), measure_one("runc"), "runc shim + workloads (same pod)"


class Density:
    """How many idle sandboxes this machine holds: `run -d ... sleep` one after another up to
    NV_BENCH_DENSITY (default 50), each start timed, host memory (Pss of every supervisor and
    its VMM) sampled as the count grows; then every sandbox must answer an `exec`. Runs once
    per bench run (the three density rows read its result) and draws
    bench/results/density.svg (gnuplot) from bench/results/density.csv."""
    result = None

    @classmethod
    def run(cls, build):
        if cls.result is not None:
            return cls.result
        target = int(os.environ.get("NV_BENCH_DENSITY", "50"))
        # Filling stops early when the host is saturated (idle TCG guests still cost CPU):
        # after NV_BENCH_DENSITY_SECONDS (default 300) or a single start over 60 s.
        budget = float(os.environ.get("NV_BENCH_DENSITY_SECONDS", "300"))
        base = busybox_cli(build)
        state = base[base.index("--state-dir") + 1]
        series, started, answered = [], 0, 0
        t0 = time.monotonic()
        try:
            for i in range(target):
                t = time.monotonic()
                r = subprocess.run(base + ["run", "-d", "--name", f"d{i}", "busybox", "sleep",
                                           "3600"], capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"bench: density stopped at {started}: {(r.stdout + r.stderr).strip()[-300:]}",
                          file=sys.stderr, flush=True)
                    break
                started += 1
                last = time.monotonic() - t
                full = time.monotonic() - t0 > budget or last > 60
                if started == 1 or started % 5 == 0 or started == target or full:
                    owners = subprocess.run(["pgrep", "-f", "--", f"--state-dir {state} .*run -d"],
                                            capture_output=True, text=True).stdout.split()
                    pss = sum(tree_rss_mib(int(p)) for p in owners)
                    series.append((started, last, pss / started))
                if full:
                    print(f"bench: density stopped filling at {started} (time budget)",
                          file=sys.stderr, flush=True)
                    break
            elapsed = time.monotonic() - t0
            answered = sum(
                subprocess.run(base + ["exec", f"d{i}", "true"], capture_output=True).returncode == 0
                for i in range(started))
        finally:
            for i in range(started):
                subprocess.run(base + ["rm", "-f", f"d{i}"], capture_output=True)
        out = ROOT / "bench/results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "density.csv").write_text(
            "# sandboxes, start latency of the last one (s), host Pss per sandbox (MiB)\n" +
            "".join(f"{n} {lat:.3f} {mem:.1f}\n" for n, lat, mem in series))
        if shutil.which("gnuplot") and series:
            subprocess.run(["gnuplot", "-e", f"""
                set terminal svg size 720,400; set output '{out / "density.svg"}';
                set title 'nanovisor: idle sandboxes on one host ({os.cpu_count()} cores, qemu driver)';
                set xlabel 'sandboxes running'; set ylabel 'start latency (s)';
                set y2label 'host memory per sandbox (MiB, Pss)'; set y2tics; set ytics nomirror;
                set key left top; set grid;
                plot '{out / "density.csv"}' using 1:2 with linespoints title 'start latency' axes x1y1,
                     '' using 1:3 with linespoints title 'memory per sandbox' axes x1y2"""],
                           check=False, capture_output=True)
        cls.result = {"answered": answered, "started": started, "target": target,
                      "rate": started / elapsed if started else 0.0,
                      "pss": series[-1][2] if series else 0.0}
        return cls.result


def density_row(key):
    def setup(build):
        value = Density.run(build)[key]
        return (lambda: value), None, f"target {Density.result['target']}"
    setup.once = True
    return setup


class ImageBench:
    """One generated OCI layout shared by the image rows (bench/images/gen_image.py)."""
    layout = None

    @classmethod
    def setup(cls, build):
        nanovisor = build / "bin/nanovisor"
        if not nanovisor.exists():
            raise Skip("nanovisor not built (make build)")
        if not shutil.which("mkfs.erofs"):
            raise Skip("mkfs.erofs missing (apt-get install erofs-utils)")
        if cls.layout is None:
            layout = WORK / "bench-oci"
            r = sh([sys.executable, str(ROOT / "bench/images/gen_image.py"), str(layout),
                    "--mib", str(IMAGE_MIB)])
            print(f"bench: generated image: {r.stdout.strip()}", file=sys.stderr, flush=True)
            cls.layout = layout
        return nanovisor, cls.layout

    @staticmethod
    def store(nanovisor, name):
        root = WORK / name
        return root, [str(nanovisor), "--image-root", str(root)]

    @staticmethod
    def umoci():
        if not shutil.which("umoci"):
            return None
        bundle = WORK / "umoci-bundle"

        def run():
            shutil.rmtree(bundle, ignore_errors=True)
            return timed(["umoci", "unpack", "--image", f"{ImageBench.layout}:bench",
                          str(bundle)])
        return run, bundle


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)


def bench_image_import_cold(build):
    nanovisor, layout = ImageBench.setup(build)
    root, base = ImageBench.store(nanovisor, "store-cold")
    cmd = base + ["image", "import", str(layout), "--name", "bench:1", "--no-rootfs"]

    def ours():
        fresh(root)
        return timed(cmd)
    peer = ImageBench.umoci()
    if peer is None:
        return ours, None, ""
    return ours, peer[0], "umoci unpack (same layout)"


def bench_image_import_cached(build):
    nanovisor, layout = ImageBench.setup(build)
    root, base = ImageBench.store(nanovisor, "store-cached")
    fresh(root)
    cmd = base + ["image", "import", str(layout), "--name", "bench:1"]
    sh(cmd)
    return (lambda: timed(cmd)), None, ""


def bench_rootfs_cold(build):
    nanovisor, layout = ImageBench.setup(build)
    root, base = ImageBench.store(nanovisor, "store-rootfs")
    fresh(root)
    sh(base + ["image", "import", str(layout), "--name", "bench:1", "--no-rootfs"])
    cmd = base + ["image", "rootfs", "bench:1"]

    def ours():
        for f in glob.glob(str(root / "rootfs/*.erofs")):
            os.unlink(f)
        return timed(cmd)
    peer = ImageBench.umoci()
    if peer is None:
        return ours, None, ""
    unpack, bundle = peer
    out = WORK / "umoci-rootfs.erofs"

    def peer_fn():
        t = unpack()
        if out.exists():
            out.unlink()
        return t + timed(["mkfs.erofs", "--quiet", str(out), str(bundle / "rootfs")])
    return ours, peer_fn, "umoci unpack + mkfs.erofs"


def bench_rootfs_cached(build):
    nanovisor, layout = ImageBench.setup(build)
    root, base = ImageBench.store(nanovisor, "store-rootfs-cached")
    fresh(root)
    sh(base + ["image", "import", str(layout), "--name", "bench:1"])
    cmd = base + ["image", "rootfs", "bench:1"]
    return (lambda: timed(cmd)), None, ""


# The vmm group: nanovisor-vmm beside QEMU microvm with KVM, both running the same freestanding
# test guest (tests/kvm/guests: PVH entry for QEMU, virtio-mmio found at either machine's
# addresses). These run on the PVM KVM of the CI machines, which runs 64-bit test guests.
def vmm_setup(build):
    vmm = build / "bin/nanovisor-vmm"
    guest = build / "tests/kvm/guests/test_guest.elf"
    if not vmm.exists() or not guest.exists():
        raise Skip("nanovisor-vmm or the test guest not built (make)")
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        raise Skip(f"/dev/kvm: {e.strerror}")
    if not shutil.which("qemu-system-x86_64"):
        raise Skip("qemu-system-x86_64 not installed")

    def ours(test, memory=128, disk=None):
        cmd = [str(vmm), "--kernel", str(guest), "--cmdline", test, "--memory", str(memory),
               "--console", "-", "--log-level", "warn"]
        return cmd + (["--disk", f"{disk},rw"] if disk else [])

    def peer(test, memory=128, disk=None):
        # Guest RAM from a memfd, as ours, so "RSS minus guest memory" means the same for both.
        cmd = ["qemu-system-x86_64", "-M", "microvm,memory-backend=ram", "-accel", "kvm",
               "-object", f"memory-backend-memfd,id=ram,size={memory}M", "-m", f"{memory}M",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-global", "virtio-mmio.force-legacy=false", "-kernel", str(guest),
               "-append", test, "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4"]
        if disk:
            cmd += ["-drive", f"file={disk},format=raw,if=none,id=d0",
                    "-device", "virtio-blk-device,drive=d0"]
        return cmd
    return ours, peer


def first_output_seconds(cmd):
    """Process start to the guest's first serial byte on the host, then the VM's end."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = p.stdout.read(1)
    took = time.monotonic() - start
    p.stdout.read()
    p.wait(timeout=60)
    if not first:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return took


def overhead_mib(cmd):
    """RSS minus guest memory (RssShmem: the memfd) once the idle guest runs."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        if b"idle" not in p.stdout.readline():
            raise subprocess.CalledProcessError(p.poll() or -1, cmd)
        time.sleep(0.3)
        fields = {}
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else "0"
        return (int(fields["VmRSS"]) - int(fields.get("RssShmem", "0"))) / 1024
    finally:
        p.kill()
        p.wait()


def bench_vmm_start(build):
    ours, peer = vmm_setup(build)
    return ((lambda: first_output_seconds(ours("test=serial"))),
            (lambda: first_output_seconds(peer("test=serial"))),
            "QEMU microvm -accel kvm, same guest (PVH)")


def bench_vmm_memory(build):
    ours, peer = vmm_setup(build)
    return ((lambda: overhead_mib(ours("test=idle"))),
            (lambda: overhead_mib(peer("test=idle"))),
            "QEMU microvm -accel kvm, same guest, memfd RAM")


def guest_run_seconds(cmd, expect):
    """Wall time of one test-guest run, which must print `expect`."""
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    took = time.monotonic() - start
    if expect not in out:
        raise subprocess.CalledProcessError(1, cmd)
    return took


def bench_vmm_blk(build):
    """The guest writes N MiB through virtio-blk, reads them back and checks them (1 MiB
    requests, one at a time: a polling driver). Runs of 68 and 4 MiB: the difference is
    2 × 64 MiB moved, divided by the difference in time."""
    ours, peer = vmm_setup(build)
    disk = WORK / "vmm-blk.img"

    def seconds(make, mib):
        disk.unlink(missing_ok=True)
        disk.write_bytes(b"")
        os.truncate(disk, 80 << 20)
        return guest_run_seconds(make(f"test=blk mib={mib} seed=7", memory=256, disk=disk),
                                 f"verified {mib} MiB")

    def rate(make):
        return 2 * 64 / max(seconds(make, 68) - seconds(make, 4), 1e-3)
    return (lambda: rate(ours)), (lambda: rate(peer)), "QEMU microvm -accel kvm, same guest"


def bench_vmm_iops(build):
    """4 KiB reads at scattered offsets, one at a time from the polling guest: runs of 21000
    and 1000 reads, 20000 over the time difference (per-request latency, queue depth 1)."""
    ours, peer = vmm_setup(build)
    disk = WORK / "vmm-iops.img"
    disk.write_bytes(b"")
    os.truncate(disk, 64 << 20)

    def seconds(make, reads):
        return guest_run_seconds(make(f"test=blk iops={reads} seed=3", memory=256, disk=disk),
                                 f"read {reads} x 4 KiB")

    def rate(make):
        return 20000 / max(seconds(make, 21000) - seconds(make, 1000), 1e-3)
    return (lambda: rate(ours)), (lambda: rate(peer)), "QEMU microvm -accel kvm, same guest"


def bench_vmm_vsock(build):
    """Host -> guest -> host echo through the hybrid vsock socket (the test guest echoes what
    it reads, with credit flow control): 64 MiB each way. QEMU's vsock needs vhost-vsock."""
    ours, _ = vmm_setup(build)
    peer_name = ("–: this host has no /dev/vhost-vsock for QEMU's vsock"
                 if not os.path.exists("/dev/vhost-vsock") else "– (not measured yet)")
    size = 64 << 20

    def echo():
        uds = WORK / "vsock.sock"
        uds.unlink(missing_ok=True)
        cmd = ours("test=vsock mode=listen port=5000") + ["--vsock-uds", str(uds)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            s = socket.socket(socket.AF_UNIX)
            for _ in range(500):
                try:
                    s.connect(str(uds))
                    break
                except OSError:
                    time.sleep(0.01)
            s.sendall(b"CONNECT 5000\n")
            line = b""
            while not line.endswith(b"\n"):
                line += s.recv(1)
            if not line.startswith(b"OK"):
                raise subprocess.CalledProcessError(1, cmd)
            data = os.urandom(1 << 20)
            start = time.monotonic()
            writer = threading.Thread(target=lambda: [s.sendall(data) for _ in range(size >> 20)])
            writer.start()
            got = 0
            while got < size:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise subprocess.CalledProcessError(1, cmd)
                got += len(chunk)
            took = time.monotonic() - start
            writer.join()
            s.close()
            return size / (1 << 20) / took
        finally:
            p.kill()
            p.wait()
    return echo, None, peer_name


# (group, metric, unit, goal, setup)
BENCHMARKS = [
    ("vm", "nanovisor run --rm busybox true (qemu driver, TCG)", "s",
     "overhead ≤ 300 ms over peer", bench_run_true),
    ("vm", "nanovisor run --rm busybox true vs runc", "s", "report (VM vs shared kernel)",
     bench_run_true_vs_runc),
    ("vm", "nanovisor run --rm busybox true, builtin driver vs libvirt driver", "s", "≤ peer",
     bench_run_true_builtin_vs_libvirt),
    ("vm", "exec round trip in a running sandbox (exec ID true)", "s", "report",
     bench_exec_latency),
    ("vm", "guest boot to init, QEMU TCG microvm + vmlinux", "s", "≤ peer", bench_boot_to_init),
    ("containerd", "ctr run --rm busybox true (nanovisor vs runc)", "s",
     "report (VM vs shared kernel)", bench_ctr_run_true),
    ("containerd", "host memory per idle pod: sandbox + 1 container (shim + VMM, Pss)", "MiB",
     "sets overhead.podFixed", bench_idle_pod_memory),
    ("density", "density: idle sandboxes started that all answer exec", "sandboxes", "≥ 50",
     density_row("answered")),
    ("density", "density: start rate while filling the host", "sandboxes/s", "report",
     density_row("rate")),
    ("density", "density: host memory per idle sandbox at the end (Pss)", "MiB", "report",
     density_row("pss")),
    ("vmm", "VMM start to first guest output (test guest, serial)", "s",
     "≤ 10 ms and ≤ 0.3× peer", bench_vmm_start),
    ("vmm", "VMM memory overhead: RSS minus guest memory (idle test guest, 128 MiB)", "MiB",
     "≤ 5 MiB", bench_vmm_memory),
    ("vmm", "virtio-blk write + read back, 1 MiB requests (polling test guest)", "MiB/s",
     "≥ peer", bench_vmm_blk),
    ("vmm", "virtio-blk 4 KiB random reads, queue depth 1 (polling test guest)", "IOPS",
     "≥ peer", bench_vmm_iops),
    ("vmm", "vsock echo host -> guest -> host, 64 MiB (polling test guest)", "MiB/s", "report",
     bench_vmm_vsock),
    ("kernel", "make kernel, cache hit", "s", "< 1 s", bench_kernel_cached),
    ("images", f"image import (cold): ~{IMAGE_MIB} MiB 5-layer OCI layout, verify + unpack", "s",
     "≤ peer", bench_image_import_cold),
    ("images", "image import (cached, already present)", "s", "< 1 s",
     bench_image_import_cached),
    ("images", "rootfs build (cold): image rootfs, unpack + mkfs.erofs", "s", "≤ peer",
     bench_rootfs_cold),
    ("images", "rootfs build (cached)", "s", "< 100 ms", bench_rootfs_cached),
]


def measure(fn, runs):
    fn()  # warm-up
    return [fn() for _ in range(runs)]


def measure_pair(ours_fn, peer_fn, runs):
    """Both sides warmed up, then their runs alternate: a load change on a shared host (other
    builds, other tests) then shifts both medians alike instead of skewing the ratio."""
    ours_fn()
    peer_fn()
    ours, peer = [], []
    for _ in range(runs):
        ours.append(ours_fn())
        peer.append(peer_fn())
    return ours, peer


def fmt(v, unit):
    if v is None:
        return "–"
    return f"{v * 1000:.0f} ms" if unit == "s" and v < 10 else f"{v:.2f} {unit}"


def select(only):
    return [b for b in BENCHMARKS if not only or only == b[0] or only in b[1]]


def table(rows):
    lines = ["| metric | nanovisor (median) | peer | peer (median) | ratio | goal | nanovisor min/max |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['metric']} | skipped: {r['skipped']} | | | | {r['goal']} | |")
            continue
        ratio = f"{r['ratio']:.2f}×" if "ratio" in r else "–"
        lines.append(
            f"| {r['metric']} | {fmt(r['ours_median'], r['unit'])} | {r.get('peer') or '–'} | "
            f"{fmt(r.get('peer_median'), r['unit'])} | {ratio} | {r['goal']} | "
            f"{fmt(r['ours_min'], r['unit'])} / {fmt(r['ours_max'], r['unit'])} |")
    return "\n".join(lines)


def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default=os.environ.get("NV_BENCH_ONLY", ""),
                    help="group (vm, kernel, images) or metric substring")
    args = ap.parse_args()
    build = args.build.resolve()
    chosen = select(args.only)
    if not chosen:
        sys.exit(f"bench: --only {args.only!r} matches no group or metric "
                 f"(groups: {', '.join(sorted({b[0] for b in BENCHMARKS}))})")
    parent = os.environ.get("NV_BENCH_WORKDIR") or (
        "/dev/shm" if os.path.isdir("/dev/shm") else None)
    WORK = Path(tempfile.mkdtemp(prefix="nv-bench-", dir=parent))
    host = (f"{os.uname().nodename}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
            f"work dir on {WORK.parent}")
    rows = []
    try:
        for group, metric, unit, goal, setup in chosen:
            print(f"bench: {metric} ...", file=sys.stderr, flush=True)
            row = {"group": group, "metric": metric, "unit": unit, "goal": goal, "host": host}
            try:
                ours_fn, peer_fn, peer_name, *cleanup = setup(build)
                once = getattr(setup, "once", False)  # one long experiment, no warm-up
                try:
                    peer = None
                    if once:
                        ours = [ours_fn()]
                    elif peer_fn:
                        ours, peer = measure_pair(ours_fn, peer_fn, args.runs)
                    else:
                        ours = measure(ours_fn, args.runs)
                    row.update(ours_median=statistics.median(ours), ours_min=min(ours),
                               ours_max=max(ours), runs=len(ours), peer=peer_name)
                    if peer_fn:
                        if peer is None:
                            peer = measure(peer_fn, args.runs)
                        row.update(peer_median=statistics.median(peer), peer_min=min(peer),
                                   peer_max=max(peer))
                        row["ratio"] = row["ours_median"] / row["peer_median"]
                finally:
                    for fn in cleanup:
                        fn()
            except Skip as e:
                row["skipped"] = str(e)
            except subprocess.CalledProcessError as e:
                row["skipped"] = f"command failed: {' '.join(map(str, e.cmd))[:120]}"
            rows.append(row)
    finally:
        for fn in reversed(CLEANUPS):
            fn()
        shutil.rmtree(WORK, ignore_errors=True)

    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    header = f"{host}, {args.runs} runs after a warm-up"
    all_rows = rows
    if args.only and (out / "latest.json").exists():
        # Partial run: replace our rows, keep the others (each keeps its own "host" line).
        try:
            old = json.loads((out / "latest.json").read_text())
        except ValueError:
            old = {"rows": []}
        mine = {r["metric"] for r in rows}
        groups = {b[0] for b in chosen} if args.only in {b[0] for b in BENCHMARKS} else set()
        kept = [r for r in old.get("rows", [])
                if r["metric"] not in mine and r.get("group") not in groups]
        for r in kept:
            r.setdefault("host", old.get("host", ""))
        order = {b[1]: i for i, b in enumerate(BENCHMARKS)}
        all_rows = sorted(kept + rows, key=lambda r: order.get(r["metric"], len(order)))
        if kept:
            header = (f"partial run --only {args.only!r}: {header}; the other rows are from "
                      f"earlier runs (each row's \"host\" in latest.json says where and when)")
    (out / "latest.md").write_text(f"# nanovisor benchmarks\n\n{header}\n\n{table(all_rows)}\n")
    (out / "latest.json").write_text(json.dumps({"host": header, "rows": all_rows}, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
