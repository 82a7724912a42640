#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nanovisor benchmarks: each row times our side and a peer on the same machine in the same run.

Usage: bench/run.py BUILD_DIR [--runs N] [--only SUBSTRING]
Writes bench/results/latest.md and latest.json and prints the table. Each measurement is run
once as a warm-up, then N times (default 5); the table shows medians, the ratio ours/peer, the
goal, and min/max. Rows whose prerequisites are missing are listed as skipped with the reason.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def qemu_boot_cmd(machine, kernel, initramfs):
    return ["qemu-system-x86_64", "-M", machine, "-accel", "tcg", "-cpu", "max", "-m", "256",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "null", "-kernel", str(kernel), "-initrd", str(initramfs),
            "-append", "console=ttyS0 panic=-1 reboot=t quiet"]


# Each benchmark: (metric, unit, goal, function(build) -> (ours_fn, peer_fn or None, peer_name))
def bench_boot_to_init(build):
    kdir = kernel_dir()
    initramfs = build / "guest-kernel/testinit/testinit.cpio.gz"
    if not initramfs.exists():
        raise Skip("test initramfs not built (make)")
    ours = qemu_boot_cmd("microvm,x-option-roms=off,rtc=off,acpi=off", kdir / "vmlinux", initramfs)
    peer = qemu_boot_cmd("pc", kdir / "bzImage", initramfs)
    return (lambda: timed(ours)), (lambda: timed(peer)), "QEMU pc + bzImage"


def bench_kernel_cached(build):
    kernel_dir()
    cmd = [str(ROOT / "guest-kernel/build.sh")]
    return (lambda: timed(cmd)), None, ""


def bench_run_true(build):
    kdir = kernel_dir()
    nanovisor = build / "bin/nanovisor"
    tar = build / "images/busybox-oci.tar"
    initramfs = build / "guest-kernel/testinit/testinit.cpio.gz"
    if not (nanovisor.exists() and tar.exists() and (build / "share/nanovisor/initramfs.cpio.gz").exists()):
        raise Skip("nanovisor, initramfs or busybox image not built (make initramfs images)")
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="nv-bench-"))
    base = [str(nanovisor), "--image-root", str(root / "images"), "--state-dir", str(root / "state")]
    sh(base + ["image", "import", str(tar), "--name", "busybox"])
    ours = base + ["run", "--rm", "busybox", "true"]
    peer = qemu_boot_cmd("microvm,x-option-roms=off,rtc=off,acpi=off", kdir / "vmlinux", initramfs)
    return (lambda: timed(ours)), (lambda: timed(peer)), "bare QEMU TCG boot to init (same kernel)"


BENCHMARKS = [
    ("nanovisor run --rm busybox true (qemu driver, TCG)", "s", "overhead ≤ 300 ms over peer",
     bench_run_true),
    ("guest boot to init, QEMU TCG microvm + vmlinux", "s", "≤ peer", bench_boot_to_init),
    ("make kernel, cache hit", "s", "< 1 s", bench_kernel_cached),
]


def measure(fn, runs):
    fn()  # warm-up
    return [fn() for _ in range(runs)]


def fmt(v, unit):
    if v is None:
        return "–"
    return f"{v * 1000:.0f} ms" if unit == "s" and v < 10 else f"{v:.2f} {unit}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    build = args.build.resolve()
    rows = []
    for metric, unit, goal, setup in BENCHMARKS:
        if args.only and args.only not in metric:
            continue
        print(f"bench: {metric} ...", file=sys.stderr, flush=True)
        row = {"metric": metric, "unit": unit, "goal": goal}
        try:
            ours_fn, peer_fn, peer_name = setup(build)
            ours = measure(ours_fn, args.runs)
            row.update(ours_median=statistics.median(ours), ours_min=min(ours),
                       ours_max=max(ours), runs=args.runs, peer=peer_name)
            if peer_fn:
                peer = measure(peer_fn, args.runs)
                row.update(peer_median=statistics.median(peer), peer_min=min(peer),
                           peer_max=max(peer))
                row["ratio"] = row["ours_median"] / row["peer_median"]
        except Skip as e:
            row["skipped"] = str(e)
        except subprocess.CalledProcessError as e:
            row["skipped"] = f"command failed: {' '.join(map(str, e.cmd))[:120]}"
        rows.append(row)

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
    table = "\n".join(lines)
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    host = f"{os.uname().nodename}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    (out / "latest.md").write_text(f"# nanovisor benchmarks\n\n{host}, {args.runs} runs after a warm-up\n\n{table}\n")
    (out / "latest.json").write_text(json.dumps({"host": host, "rows": rows}, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
