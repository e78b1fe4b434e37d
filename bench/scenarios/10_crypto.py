#!/usr/bin/python3
"""Scenario crypto (target P1): AES-256-GCM region seal/open through our API beside `openssl speed`.

Ours: build/bench/bench_crypto (ccr_ccr1_seal_region / ccr_ccr1_open_region and raw ccr_aead_seal),
1 and 2 threads. Reference: `openssl speed -elapsed -evp aes-256-gcm -bytes SIZE -seconds 1`, in one
process, with `-multi 2` (two processes), and with `-decrypt` (one process). Both divide by wall-clock
time (openssl's -elapsed), both work in place on one buffer of SIZE bytes.

The rounds are interleaved (round r: every point of ours once, then every openssl point once) so that a
drift in machine speed hits both sides alike; each figure is the median of BENCH_RUNS rounds.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

SIZES = ["64K", "1M", "16M"] if B.QUICK else ["64K", "256K", "1M", "4M", "16M"]
THREADS = [1, 2]
OPS = ["ccr1-seal", "ccr1-open", "aead-seal"]
SECONDS = 0.2 if B.QUICK else 0.5  # per point and run, ours
OSSL_SECONDS = 1                   # openssl speed takes whole seconds only

# openssl variants: (scenario, threads/processes, extra args)
OSSL = [
    ("region-seal", 1, []),
    ("region-seal", 2, ["-multi", "2"]),
    ("region-open", 1, ["-decrypt"]),
]


def size_bytes(s):
    return int(s[:-1]) << {"K": 10, "M": 20}[s[-1]]


def openssl_speed(size, extra):
    """MB/s from `openssl speed`'s summary line, which is in units of 1000 bytes per second."""
    cmd = ["openssl", "speed", "-elapsed", "-evp", "aes-256-gcm", "-bytes", str(size),
           "-seconds", str(OSSL_SECONDS)] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    m = None
    for line in r.stdout.splitlines():
        mm = re.match(r"^AES-256-GCM\s+([0-9.]+)k\s*$", line.strip())
        if mm:
            m = mm
    if not m:
        raise RuntimeError(f"cannot parse openssl speed output:\n{r.stdout[-500:]}")
    return float(m.group(1)) / 1000.0


def main():
    prog = B.tool_path("bench_crypto")
    if not prog:
        raise SystemExit(f"bench_crypto not found in {B.BUILD}/bench (configure with -DCCR_BENCH=ON)")
    ours = {}   # (scenario, impl, size, threads) -> [record, runs...]
    theirs = {}
    for r in range(B.RUNS):
        B.log(f"crypto: round {r + 1}/{B.RUNS}: bench_crypto ({len(OPS)} ops x {len(SIZES)} sizes x "
              f"{len(THREADS)} thread counts, {SECONDS} s each)")
        out = subprocess.run([prog, "--runs", "1", "--seconds", str(SECONDS), "--sizes", ",".join(SIZES),
                              "--threads", ",".join(map(str, THREADS)), "--ops", ",".join(OPS)],
                             capture_output=True, text=True)
        sys.stderr.write(out.stderr)
        if out.returncode != 0:
            raise SystemExit(f"bench_crypto failed with exit {out.returncode}")
        for line in out.stdout.splitlines():
            rec = json.loads(line)
            p = rec["params"]
            key = (rec["scenario"], rec["impl"], p["size"], p["threads"])
            ours.setdefault(key, [rec, []])[1].extend(rec["runs"])
        B.log(f"crypto: round {r + 1}/{B.RUNS}: openssl speed ({len(OSSL)} variants x {len(SIZES)} sizes, "
              f"{OSSL_SECONDS} s each)")
        for s in SIZES:
            for scenario, n, extra in OSSL:
                mbps = openssl_speed(size_bytes(s), extra)
                theirs.setdefault((scenario, size_bytes(s), n, " ".join(extra)), []).append(mbps)

    for (scenario, impl, size, threads), (rec, runs) in sorted(ours.items()):
        p = dict(rec["params"])
        p["seconds_per_run"] = SECONDS
        B.record("crypto", scenario, impl, "throughput", p, runs, "MB/s", rec["notes"])
    ver = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    for (scenario, size, n, extra), runs in sorted(theirs.items()):
        args = f"openssl speed -elapsed -evp aes-256-gcm -bytes {size} -seconds {OSSL_SECONDS}" + \
            (f" {extra}" if extra else "")
        kind = f"{n} processes" if n > 1 else "1 process"
        B.record("crypto", scenario, "openssl", "throughput",
                 {"size": size, "threads": n, "seconds_per_run": OSSL_SECONDS, "command": args},
                 runs, "MB/s", f"{ver}; `{args}`; {kind}, in place, wall-clock divisor; MB = 10^6 bytes")
    B.log("crypto: done")


if __name__ == "__main__":
    main()
