#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where `nanovisor run --rm busybox true` spends its time: the guest console on a host clock.

Usage: bench/timeline.py BUILD_DIR [--grep REGEX] [--cmdline "EXTRA KERNEL ARGS"] [--debug]

Runs one sandbox (qemu driver) whose QEMU goes through a wrapper that sends the serial console
to a Unix socket and replaces the kernel's `quiet` with `printk.time=1 printk.devkmsg=on` (plus
--cmdline, e.g. "initcall_debug ignore_loglevel"). Every console line is printed with the host
milliseconds since the CLI started, then the CLI's exit. The kernel's own [seconds] follow the
guest clock, which under TCG can lag the host's; the host column is the one to trust. The VMM
jail and host cgroup are off for this run (the wrapper lives outside the jail's view).
--debug runs the CLI with --log-level debug (the agent then logs at debug level too) and
interleaves the CLI's log lines (`CLI ...`) with the console's on the same host clock.
NANOVISOR_INITRAMFS picks another initramfs (e.g. to compare two agents). Scratch files go to
a temp dir, removed at exit. Method and findings: docs/performance.md.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WRAPPER = """#!/bin/bash
args=()
for a in "$@"; do
  if [[ $prev == -append ]]; then a="${a/quiet/printk.time=1 printk.devkmsg=on $NV_TL_CMDLINE}"; fi
  if [[ $prev == -serial ]]; then a="unix:$NV_TL_SOCKET"; fi
  args+=("$a"); prev=$a
done
exec qemu-system-x86_64 "${args[@]}"
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=Path)
    ap.add_argument("--grep", default="", help="print only console lines matching this regex")
    ap.add_argument("--cmdline", default="", help="extra guest kernel arguments")
    ap.add_argument("--debug", action="store_true",
                    help="CLI and agent at debug level; CLI log lines on the same clock")
    args = ap.parse_args()
    build = args.build.resolve()
    nanovisor = build / "bin/nanovisor"
    tar = build / "images/busybox-oci.tar"
    if not (nanovisor.exists() and tar.exists()):
        sys.exit(f"timeline: needs {nanovisor} and {tar} (make build images)")
    work = Path(tempfile.mkdtemp(prefix="nv-timeline-"))
    try:
        wrapper = work / "qemu"
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
        config = work / "config.toml"
        config.write_text(f'jail = false\ncgroups = false\nqemu_binary = "{wrapper}"\n')
        sock_path = str(work / "console.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(sock_path)
        server.listen(1)
        lines = []

        def read_console():
            conn, _ = server.accept()
            buf = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    lines.append((time.monotonic(), line.decode(errors="replace").rstrip("\r")))
            conn.close()

        reader = threading.Thread(target=read_console, daemon=True)
        reader.start()
        base = [str(nanovisor), "--config", str(config), "--image-root", str(work / "images"),
                "--state-dir", str(work / "state")]
        subprocess.run(base + ["image", "import", str(tar), "--name", "busybox"], check=True,
                       capture_output=True)
        env = dict(os.environ, NV_TL_SOCKET=sock_path, NV_TL_CMDLINE=args.cmdline)
        start = time.monotonic()
        level = ["--log-level", "debug"] if args.debug else []
        run = subprocess.Popen(base + level + ["run", "--rm", "busybox", "true"], env=env,
                               stderr=subprocess.PIPE, text=True, errors="replace")
        for line in run.stderr:
            lines.append((time.monotonic(), "CLI " + line.rstrip()))
        run.wait()
        end = time.monotonic()
        reader.join(timeout=2)
        pattern = re.compile(args.grep) if args.grep else None
        for at, line in sorted(lines, key=lambda entry: entry[0]):
            if pattern is None or pattern.search(line):
                print(f"{(at - start) * 1000:7.0f} ms  {line}")
        print(f"{(end - start) * 1000:7.0f} ms  nanovisor exited ({run.returncode})")
        server.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
