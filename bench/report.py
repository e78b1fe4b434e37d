#!/usr/bin/python3
"""report.py - turns bench/out/results.jsonl and the machine description into docs/benchmarks.md.

  report.py --results bench/out/results.jsonl --machine bench/out/machine.json --out docs/benchmarks.md [--quick]

Plots (gnuplot, pngcairo) go to docs/bench/*.png beside the report, and the raw records are copied to
docs/bench/results.jsonl. Each suite has a section renderer (SECTIONS below); records of a suite without
one still appear, in a generic table, so a new scenario shows up before anyone writes its section.
Standard library only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

# Thresholds from shared/design/targets.md (2-core machine). The text is quoted in the report.
TARGETS = {
    "P1": "AES-256-GCM region seal/open: >= 0.95x OpenSSL's own speed at the same size, one thread; "
          ">= 1.8x that with two",
    "P2": "publish to the local store: >= 1.5 GB/s; >= 8x rclone crypt and >= 4x gocryptfs writes in the same run",
    "P3": "publish to Azurite: >= 0.9x the raw unencrypted parallel-PUT ceiling; >= 2x rclone crypt and the Python SDK",
    "P4": "download + decrypt from Azurite: >= 0.8x the raw parallel-GET ceiling; >= 3x rclone crypt",
    "P5": "publish / download over the high-throughput endpoint: >= 1.5 / 2.0 GB/s; client CPU <= 0.8 CPU-s per GB",
    "P6": "mount, sequential read, one reader, cold: buffered >= 1.0 GB/s and >= 1.1x gocryptfs; "
          "O_DIRECT 1 MiB >= 2.5 GB/s",
    "P7": "mount, sequential write, durable at close: >= 0.8 GB/s and >= 2x gocryptfs",
    "P8": "mount, random 4 KiB reads, cold, 16 in flight, 5 ms added round trip: >= 1,500 IOPS; bytes fetched "
          "per read <= one region",
    "P11": "sequential over-read (bytes fetched / bytes read): <= 1.01",
    "P9": "memory: peak RSS <= budget + 64 MiB for any size or count of files (default budget 512 MiB)",
    "P10": "many small files (10,000 x 4 KiB): publish and download >= 3x rclone's files per second",
}
P1_ONE, P1_TWO = 0.95, 1.8
P2_MBPS, P2_RCLONE, P2_GOCRYPTFS = 1500.0, 8.0, 4.0
P5_CPU = 0.8
P9_MIB = 512 + 64
P9_SLACK_MIB = 64
P10_RCLONE = 3.0
P3_RAW, P3_PEER = 0.9, 2.0
P4_RAW, P4_RCLONE = 0.8, 3.0
P5_PUB_MBPS, P5_GET_MBPS = 1500.0, 2000.0
P6_BUF_MBPS, P6_GOCRYPTFS, P6_DIRECT_MBPS = 1000.0, 1.1, 2500.0
P7_MBPS, P7_GOCRYPTFS = 800.0, 2.0
P8_IOPS = 1500.0
P8_FRAMING = 64  # bytes of framing a region may carry beside its data (nonce, tag) in "one region"
P11_RATIO = 1.01

SIZE_NAMES = {1 << 12: "4 KiB", 1 << 16: "64 KiB", 1 << 18: "256 KiB", 1 << 20: "1 MiB", 1 << 22: "4 MiB",
              1 << 24: "16 MiB"}


def size_name(n):
    if n in SIZE_NAMES:
        return SIZE_NAMES[n]
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def num(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def with_range(r, digits=0):
    if not r:
        return "–"
    return f"{num(r['median'], digits)} <sub>({num(r['min'], digits)}–{num(r['max'], digits)})</sub>"


def ratio(a, b):
    if not a or not b or not b.get("median"):
        return None
    return a["median"] / b["median"]


def rtxt(x):
    return "–" if x is None else f"{x:.2f}x"


def verdict(ok):
    if ok is None:
        return "not measured"
    return "met" if ok else "**not met**"


def runs_phrase(recs):
    ns = sorted({r.get("n", len(r.get("runs", []))) for r in recs if "runs" in r})
    if not ns:
        return "no runs"
    return f"the median of {ns[0]} runs" if len(ns) == 1 else f"the median of {ns[0]}–{ns[-1]} runs"


class Plotter:
    """Writes gnuplot data and scripts to a work dir and PNGs to the docs dir; remembers what failed."""

    def __init__(self, work, outdir):
        self.work, self.outdir = work, outdir
        self.gnuplot = shutil.which("gnuplot")
        self.errors = []
        os.makedirs(work, exist_ok=True)
        os.makedirs(outdir, exist_ok=True)
        if self.gnuplot:
            r = subprocess.run([self.gnuplot, "-e", "set terminal"], capture_output=True, text=True)
            self.term = "pngcairo size 900,520 font ',10'" if "pngcairo" in (r.stdout + r.stderr) \
                else "png size 900,520"

    def plot(self, name, data, script):
        """data: text of NAME.dat; script: gnuplot commands that plot '$DAT'. Returns the PNG's name."""
        if not self.gnuplot:
            self.errors.append(f"{name}: gnuplot not installed")
            return None
        dat = os.path.join(self.work, name + ".dat")
        gp = os.path.join(self.work, name + ".gp")
        png = os.path.join(self.outdir, name + ".png")
        with open(dat, "w", encoding="utf-8") as f:
            f.write(data)
        with open(gp, "w", encoding="utf-8") as f:
            f.write(f"set terminal {self.term}\nset output '{png}'\nset datafile missing '?'\n"
                    f"set key outside right top\nset grid ytics\n")
            f.write(script.replace("$DAT", dat))
        r = subprocess.run([self.gnuplot, gp], capture_output=True, text=True)
        if r.returncode != 0:
            self.errors.append(f"{name}: gnuplot failed: {r.stderr.strip()[:300]}")
            return None
        return os.path.basename(png)


# ------------------------------------------------------------------------------------------------------
# Section: crypto (P1)
# ------------------------------------------------------------------------------------------------------

def crypto_section(recs, ctx):
    tp = {}
    for r in recs:
        if r.get("metric") == "throughput" and "median" in r:
            p = r["params"]
            tp[(r["scenario"], r["impl"], p["size"], p["threads"])] = r
    sizes = sorted({k[2] for k in tp})
    out = ["## Crypto: AES-256-GCM regions (target P1)", ""]
    out.append(f"> P1: {TARGETS['P1']}.")
    out.append("")
    out.append(
        f"Throughput in MB/s (10^6 bytes per second), each figure {runs_phrase(recs)} "
        "(min–max in small print). Ours: `build/bench/bench_crypto`, each thread with its own `struct ccr_aead` "
        "and buffers, looping over one region for a fixed time per run, in place like the pipeline (open: only "
        "the opens are timed; the region is sealed back in place between them, untimed, which restores the "
        "same ciphertext and tag). `ccr1` = `ccr_ccr1_seal_region` / "
        "`ccr_ccr1_open_region` (64-byte header as AAD, tag after the region); `aead` = raw `ccr_aead_seal`, "
        "no AAD. Reference: `openssl speed -elapsed -evp aes-256-gcm -bytes SIZE -seconds 1`, in place, in one "
        "process, with `-multi 2` (two processes) and with `-decrypt`. Rounds of ours and of openssl are "
        "interleaved in the same run.")
    out.append("")
    summary = ctx["summary"]
    for scenario, title, ossl_desc in (("region-seal", "Seal", "openssl speed"),
                                       ("region-open", "Open", "openssl speed -decrypt")):
        rows = []
        r1_all, r2_all = [], []
        has_aead = any(k[0] == scenario and k[1] == "aead" for k in tp)
        has_o2 = any(k[0] == scenario and k[1] == "openssl" and k[3] == 2 for k in tp)
        hdr = ["Region size", "ccr1, 1 thread"]
        if has_aead:
            hdr.append("raw aead, 1 thread")
        hdr += [f"{ossl_desc}, 1 process", f"ccr1 ÷ openssl (P1 ≥ {P1_ONE})", "ccr1, 2 threads"]
        if has_o2:
            hdr.append(f"{ossl_desc} -multi 2")
        hdr += [f"ccr1 2 threads ÷ openssl 1 process (P1 ≥ {P1_TWO})"]
        if has_o2:
            hdr.append("ccr1 2 threads ÷ openssl -multi 2")
        plot_rows = []
        for s in sizes:
            c1 = tp.get((scenario, "ccr1", s, 1))
            c2 = tp.get((scenario, "ccr1", s, 2))
            a1 = tp.get((scenario, "aead", s, 1))
            o1 = tp.get((scenario, "openssl", s, 1))
            o2 = tp.get((scenario, "openssl", s, 2))
            if not (c1 or o1):
                continue
            r1, r2, r2m = ratio(c1, o1), ratio(c2, o1), ratio(c2, o2)
            if r1 is not None:
                r1_all.append((r1, s))
            if r2 is not None:
                r2_all.append((r2, s))
            row = [size_name(s), with_range(c1)]
            if has_aead:
                row.append(with_range(a1))
            row += [with_range(o1), f"{rtxt(r1)} {'' if r1 is None else verdict(r1 >= P1_ONE)}",
                    with_range(c2)]
            if has_o2:
                row.append(with_range(o2))
            row.append(f"{rtxt(r2)} {'' if r2 is None else verdict(r2 >= P1_TWO)}")
            if has_o2:
                row.append(rtxt(r2m))
            rows.append(row)
            med = lambda r: f"{r['median']:.1f}" if r else "?"  # noqa: E731
            plot_rows.append(f"{s} \"{size_name(s)}\" {med(c1)} {med(c2)} {med(o1)} {med(o2)} {med(a1)}")
        out.append(f"### {title}")
        out.append("")
        out += table(hdr, rows)
        out.append("")
        png = ctx["plotter"].plot(
            f"crypto_{scenario.split('-')[1]}", "\n".join(plot_rows) + "\n",
            f"set title 'AES-256-GCM region {title.lower()} (MB/s, median of runs)'\n"
            "set xlabel 'region size'\nset ylabel 'MB/s (10^6 B/s)'\nset logscale x 2\nset yrange [0:*]\n"
            "set style data linespoints\nset offsets graph 0.04, graph 0.04, 0, 0\n"
            "plot '$DAT' using 1:3:xtic(2) title 'ccr1, 1 thread' lw 2 lc rgb '#1f77b4' pt 7, "
            "'' using 1:5 title 'openssl, 1 process' lw 2 dt 2 lc rgb '#1f77b4' pt 6, "
            "'' using 1:4 title 'ccr1, 2 threads' lw 2 lc rgb '#d62728' pt 5, "
            "'' using 1:6 title 'openssl -multi 2' lw 2 dt 2 lc rgb '#d62728' pt 4"
            + (", '' using 1:7 title 'raw aead, 1 thread' lw 1 dt 3 lc rgb '#555555' pt 1" if has_aead else "")
            + "\n")
        if png:
            out += [f"![{title} throughput by region size](bench/{png})", ""]
        if r1_all:
            worst = min(r1_all)
            summary.append(["P1", f"{title.lower()}, 1 thread: ccr1 ÷ openssl (1 process), worst size",
                            f"{worst[0]:.2f}x at {size_name(worst[1])}", f"≥ {P1_ONE}x at every size",
                            verdict(all(r >= P1_ONE for r, _ in r1_all))])
        if r2_all:
            worst = min(r2_all)
            summary.append(["P1", f"{title.lower()}, 2 threads: ccr1 ÷ openssl (1 process), worst size",
                            f"{worst[0]:.2f}x at {size_name(worst[1])}", f"≥ {P1_TWO}x at every size",
                            verdict(all(r >= P1_TWO for r, _ in r2_all))])
    return out


# ------------------------------------------------------------------------------------------------------
# Section: file encrypt / decrypt on tmpfs (P2, P5, P9 by proxy)
# ------------------------------------------------------------------------------------------------------

FILE_IMPLS = [("ccr-ccr1", "ccr, ccr1 (1 MiB regions)"), ("ccr-cse", "ccr, cleanroom-cse (16 MiB chunks)"),
              ("gocryptfs", "gocryptfs (FUSE, dd into/out of the mount)"),
              ("rclone-crypt", "rclone crypt (`rclone copyto`)")]
PEERS = ["gocryptfs", "rclone-crypt"]


def file_section(recs, ctx):
    by = {}
    skipped = {}
    for r in recs:
        if r.get("skipped"):
            skipped[r["impl"]] = r["skipped"]
            continue
        if "median" in r:
            by[(r["scenario"], r["impl"], r["metric"])] = r
    impls = [(i, label) for i, label in FILE_IMPLS if any(k[1] == i for k in by)]
    impls += [(i, i) for i in sorted({k[1] for k in by}) if i not in dict(FILE_IMPLS)]
    any_rec = next(iter(by.values()), None)
    size = any_rec["params"].get("bytes") if any_rec else None
    out = ["## File encrypt and decrypt on tmpfs (P2, P5, P9 by proxy)", ""]
    out.append(
        f"One file of {size_name(size) if size else '?'} of incompressible data, source and output on tmpfs "
        "(`/dev/shm`; no network, no storage endpoint), every implementation on the same data in the same run. "
        f"Each figure is {runs_phrase(recs)}: MB/s = file bytes ÷ wall time (MB = 10^6 bytes); CPU-s/GB = user + "
        "system CPU seconds of every client process (for gocryptfs: its daemon plus `dd`) per 10^9 file bytes; "
        "peak RSS from `wait4` (for gocryptfs: daemon + dd). Encrypt runs are interleaved across "
        "implementations; decrypt runs read the ciphertext each implementation wrote, and the last output of "
        "each is checked byte-for-byte (SHA-256) against the source.")
    out.append("")
    for name, why in sorted(skipped.items()):
        out.append(f"- **{name} not measured**: {why}")
    if skipped:
        out.append("")
    for scenario in ("encrypt", "decrypt"):
        rows = []
        for impl, label in impls:
            tp = by.get((scenario, impl, "throughput"))
            if not tp:
                continue
            cpu = by.get((scenario, impl, "cpu"))
            rss = by.get((scenario, impl, "peak_rss"))
            p = tp["params"]
            ovh = "–"
            if p.get("ciphertext_bytes") and p.get("bytes"):
                x = (p['ciphertext_bytes'] / p['bytes'] - 1) * 100
                ovh = f"{x:.2f} %" if x >= 0.1 else f"{x:.4f} %"
            rows.append([label, with_range(tp), with_range(cpu, 2), with_range(rss, 0), ovh])
        if not rows:
            continue
        out.append(f"### {scenario.capitalize()}")
        out.append("")
        out += table(["Implementation", "MB/s", "CPU-s/GB", "peak RSS (MiB)", "ciphertext overhead"], rows)
        out.append("")
    # Ratios of ours over the peers.
    rrows = []
    for ours in ("ccr-ccr1", "ccr-cse"):
        for peer in PEERS:
            cells = []
            for scenario in ("encrypt", "decrypt"):
                cells.append(rtxt(ratio(by.get((scenario, ours, "throughput")),
                                        by.get((scenario, peer, "throughput")))))
            if any(c != "–" for c in cells):
                rrows.append([f"{ours} ÷ {peer}"] + cells)
    if rrows:
        out.append("### Ratios (throughput, medians)")
        out.append("")
        out += table(["", "encrypt", "decrypt"], rrows)
        out.append("")
    # Plots: throughput and CPU per implementation.
    lines_tp, lines_cpu = [], []
    for impl, _ in impls:
        def med(s, m):
            r = by.get((s, impl, m))
            return f"{r['median']:.3f}" if r else "?"
        lines_tp.append(f"\"{impl}\" {med('encrypt', 'throughput')} {med('decrypt', 'throughput')}")
        lines_cpu.append(f"\"{impl}\" {med('encrypt', 'cpu')} {med('decrypt', 'cpu')}")
    hist = ("set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
            "set boxwidth 0.9\nset yrange [0:*]\nset xtics nomirror\n")
    def labels(fmt):
        # Values above the bars: two bars per cluster, each 1/3 wide with gap 1, centred at x -/+ 1/6.
        return (f", '' using ($0-1/6.):2:(sprintf('{fmt}',$2)) with labels offset 0,0.6 notitle"
                f", '' using ($0+1/6.):3:(sprintf('{fmt}',$3)) with labels offset 0,0.6 notitle")

    images = []
    png = ctx["plotter"].plot("file_throughput", "\n".join(lines_tp) + "\n",
                              hist + "set title 'File encrypt / decrypt on tmpfs (MB/s, median of runs)'\n"
                              "set ylabel 'MB/s (10^6 B/s)'\n"
                              "plot '$DAT' using 2:xtic(1) title 'encrypt', '' using 3 title 'decrypt'"
                              + labels("%.0f") + "\n")
    if png:
        images.append(f"![File throughput](bench/{png})")
    png = ctx["plotter"].plot("file_cpu", "\n".join(lines_cpu) + "\n",
                              hist + "set title 'Client CPU per GB (CPU-s/GB, median of runs; lower is better)'\n"
                              "set ylabel 'CPU seconds per 10^9 bytes'\n"
                              "plot '$DAT' using 2:xtic(1) title 'encrypt', '' using 3 title 'decrypt'"
                              + labels("%.2f") + "\n")
    if png:
        images.append(f"![File CPU per GB](bench/{png})")
    if images:
        out += images + [""]

    # Targets by proxy: the encrypt of a file on tmpfs stands in for publish until publish exists.
    s = ctx["summary"]
    enc = by.get(("encrypt", "ccr-ccr1", "throughput"))
    if enc:
        s.append(["P2 (proxy)", "ccr1 file encrypt on tmpfs (stands in for publish to the local store)",
                  f"{num(enc['median'])} MB/s", f"≥ {num(P2_MBPS)} MB/s", verdict(enc["median"] >= P2_MBPS)])
        for peer, need in (("rclone-crypt", P2_RCLONE), ("gocryptfs", P2_GOCRYPTFS)):
            x = ratio(enc, by.get(("encrypt", peer, "throughput")))
            if x is not None:
                s.append(["P2 (proxy)", f"ccr1 encrypt ÷ {peer} encrypt", rtxt(x), f"≥ {need:.0f}x",
                          verdict(x >= need)])
    for scenario in ("encrypt", "decrypt"):
        cpu = by.get((scenario, "ccr-ccr1", "cpu"))
        if cpu:
            s.append(["P5 (proxy)", f"ccr1 file {scenario}: client CPU per GB", f"{cpu['median']:.2f} CPU-s/GB",
                      f"≤ {P5_CPU} CPU-s/GB", verdict(cpu["median"] <= P5_CPU)])
    worst = max((r for k, r in by.items() if k[1].startswith("ccr-") and k[2] == "peak_rss"),
                key=lambda r: r["max"], default=None)
    if worst:
        s.append(["P9 (proxy)", f"ccr file encrypt/decrypt: largest peak RSS ({worst['impl']} {worst['scenario']})",
                  f"{worst['max']:.0f} MiB", f"≤ {P9_MIB} MiB", verdict(worst["max"] <= P9_MIB)])
    return out


# ------------------------------------------------------------------------------------------------------
# Section: publish / download / verify on the local store (P2, P9, P10)
# ------------------------------------------------------------------------------------------------------

TRANSFER_IMPLS = [("ccr-ccr1", "ccr, ccr1"), ("ccr-cse", "ccr, cleanroom-cse"),
                  ("rclone-crypt", "rclone crypt (`rclone copy`)"), ("gocryptfs", "gocryptfs (`cp -r` via FUSE)")]
TRANSFER_OPS = ["publish", "download", "verify"]
OURS = ["ccr-ccr1", "ccr-cse"]


def mib_budget(memory):
    """"64M" -> 64; "512M (default)" -> 512; None if unknown."""
    if not memory:
        return None
    m = str(memory).split()[0].upper()
    try:
        return int(m.rstrip("MIB")) if m.endswith(("M", "MIB")) else int(m.rstrip("GIB")) * 1024
    except ValueError:
        return None


def bar_labels(ncols, fmt):
    """Value labels above the bars of a clustered histogram with ncols bars per cluster and gap 1."""
    w = 1.0 / (ncols + 1)
    parts = []
    for i in range(ncols):
        off = (i - (ncols - 1) / 2) * w
        parts.append(f", '' using ($0{off:+.4f}):{i + 2}:(sprintf('{fmt}',${i + 2})) with labels offset 0,0.6 "
                     "notitle")
    return "".join(parts)


def transfer_section(recs, ctx):
    by, skipped, skipped_ds = {}, {}, {}
    for r in recs:
        ds = r.get("params", {}).get("dataset")
        if r.get("skipped"):
            skipped.setdefault(r["impl"], r["skipped"])
            dsl = skipped_ds.setdefault((r["impl"], r["skipped"]), [])
            if ds and ds not in dsl and r.get("scenario") != "publish-memory":
                dsl.append(ds)
            continue
        if "median" in r:
            by[(ds, r["scenario"], r["impl"], r["metric"])] = r
    known = dict(TRANSFER_IMPLS)
    impls = [(i, lbl) for i, lbl in TRANSFER_IMPLS if any(k[2] == i for k in by)]
    impls += [(i, i) for i in sorted({k[2] for k in by}) if i not in known]
    peers = [i for i, _ in impls if i not in OURS]

    def get(ds, op, impl, metric):
        return by.get((ds, op, impl, metric))

    def first(ds):
        return next((r for k, r in by.items() if k[0] == ds), None)

    out = ["## Publish, download and verify on the local store (P2, P9, P10)", ""]
    out.append(f"> P2: {TARGETS['P2']}. P9: {TARGETS['P9']}. P10: {TARGETS['P10']}.")
    out.append("")
    out.append(
        "Every implementation on the same data in the same run, source, store and download all on tmpfs "
        "(`/dev/shm`; endpoint: the embedded local store, `file://`). Ours: `ccr datastore upload|download|verify "
        "--no-journal` (so that every run redoes the work) with default threads and the default 512 MiB memory "
        "budget, datastores created by `ccr datastore add --new-key`. Peers: `rclone copy` to / from a crypt "
        "remote over a local directory (`--transfers 8 --checkers 16` for the small files), and gocryptfs: "
        "`cp -r` into a freshly mounted cipher dir then `sync -f` (publish), `cp -r` out of a fresh mount "
        "(download); mounting is not timed, its CPU and RSS are the daemon's plus cp's. "
        f"Each figure is {runs_phrase(recs)}: MB/s = dataset bytes ÷ wall time (MB = 10^6 bytes), files/s = "
        "files ÷ wall time, CPU-s/GB = user + system CPU seconds of every client process per 10^9 dataset "
        "bytes, peak RSS from `wait4`. Publishes are interleaved across implementations; the last download of "
        "each implementation is compared (SHA-256 over every path and content) with the source. Peers have no "
        "verify.")
    out.append("")
    for (name, why), dsl in sorted(skipped_ds.items()):
        what = f" ({', '.join(dsl)} dataset{'s' if len(dsl) > 1 else ''})" if dsl else ""
        out.append(f"- **{name} not measured**{what}: {why}")
    if skipped_ds:
        out.append("")

    hist = ("set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
            "set boxwidth 0.9\nset yrange [0:*]\nset xtics nomirror\n")

    def med(r, digits=3):
        return f"{r['median']:.{digits}f}" if r else "?"

    datasets = [("large", "One large file"), ("small", "Many small files")]
    for ds, title in datasets:
        rec0 = first(ds)
        if not rec0:
            continue
        p = rec0["params"]
        nfiles, nbytes = p.get("files"), p.get("bytes")
        if ds == "large":
            approx = (f"{nbytes / (1 << 30):.2f} GiB" if nbytes >= 1 << 30 else f"{nbytes / (1 << 20):.1f} MiB") \
                if nbytes else "?"
            head = f"{title}: {approx} ({num(nbytes)} bytes)"
        else:
            each = nbytes // nfiles if nfiles and nbytes else None
            head = f"{title}: {num(nfiles)} x {size_name(each) if each else '?'}"
        out += [f"### {head}", ""]
        rate_metric = "throughput" if ds == "large" else "files_per_s"
        hdr = ["Implementation", "Operation"]
        hdr += ["MB/s"] if ds == "large" else ["files/s", "MB/s"]
        hdr += ["CPU-s/GB", "peak RSS (MiB)", "stored overhead"]
        rows = []
        for impl, label in impls:
            for op in TRANSFER_OPS:
                tp = get(ds, op, impl, "throughput")
                if not tp:
                    continue
                row = [label, op]
                row += [with_range(tp)] if ds == "large" else [with_range(get(ds, op, impl, "files_per_s")),
                                                               with_range(tp, 1)]
                ovh = "–"
                stored = tp["params"].get("stored_bytes")
                if stored and nbytes and op == "publish":
                    x = (stored / nbytes - 1) * 100
                    ovh = f"{x:.2f} %" if abs(x) >= 0.1 else f"{x:.4f} %"
                row += [with_range(get(ds, op, impl, "cpu"), 2), with_range(get(ds, op, impl, "peak_rss")), ovh]
                rows.append(row)
        out += table(hdr, rows) + [""]
        rrows = []
        for ours in OURS:
            for peer in peers:
                cells = [rtxt(ratio(get(ds, op, ours, rate_metric), get(ds, op, peer, rate_metric)))
                         for op in ("publish", "download")]
                if any(c != "–" for c in cells):
                    rrows.append([f"{ours} ÷ {peer}"] + cells)
        if rrows:
            what = "throughput" if ds == "large" else "files per second"
            out += [f"Ratios ({what}, medians):", ""] + table(["", "publish", "download"], rrows) + [""]
        # Plot: the rate per implementation, one bar per operation.
        ops = [op for op in TRANSFER_OPS if any(get(ds, op, i, rate_metric) for i, _ in impls)]
        lines = [f"\"{impl}\" " + " ".join(med(get(ds, op, impl, rate_metric)) for op in ops) for impl, _ in impls]
        unit = "MB/s (10^6 B/s)" if ds == "large" else "files per second"
        cols = ", ".join(f"'{'$DAT' if i == 0 else ''}' using {i + 2}{':xtic(1)' if i == 0 else ''} title '{op}'"
                         for i, op in enumerate(ops))
        png = ctx["plotter"].plot(
            f"transfer_{ds}", "\n".join(lines) + "\n",
            hist + f"set title '{head.replace(chr(39), '')} on the local store (tmpfs): {unit}, median of runs'\n"
            f"set ylabel '{unit}'\nplot {cols}" + bar_labels(len(ops), "%.0f") + "\n")
        if png:
            out += [f"![{head}](bench/{png})", ""]

    # CPU per GB, both datasets, publish and download.
    cpu_lines = []
    for impl, _ in impls:
        vals = [med(get(ds, op, impl, "cpu"), 2) for ds in ("large", "small") for op in ("publish", "download")]
        cpu_lines.append(f"\"{impl}\" " + " ".join(vals))
    if cpu_lines and any(k[3] == "cpu" for k in by):
        titles = ["large publish", "large download", "small publish", "small download"]
        cols = ", ".join(f"'{'$DAT' if i == 0 else ''}' using {i + 2}{':xtic(1)' if i == 0 else ''} title '{t}'"
                         for i, t in enumerate(titles))
        png = ctx["plotter"].plot(
            "transfer_cpu", "\n".join(cpu_lines) + "\n",
            hist + "set title 'Client CPU per GB (CPU-s/GB, median of runs; lower is better)'\n"
            "set ylabel 'CPU seconds per 10^9 bytes'\nset logscale y\nset yrange [*:*]\n"
            f"plot {cols}" + bar_labels(len(titles), "%.2f") + "\n")
        if png:
            out += [f"![Transfer CPU per GB](bench/{png})", ""]

    # Memory (P9).
    mem_rows, worst = [], None
    order = {"large": 0, "small": 1, "publish": 0, "download": 1, "verify": 2, "publish-memory": 3}
    for (ds, op, impl, metric), r in sorted(by.items(), key=lambda kv: (order.get(kv[0][0], 9), OURS.index(kv[0][2])
                                                                        if kv[0][2] in OURS else 9,
                                                                        order.get(kv[0][1], 9))):
        if metric != "peak_rss" or impl not in OURS:
            continue
        budget = mib_budget(r["params"].get("memory"))
        limit = budget + P9_SLACK_MIB if budget else None
        tp = get(ds, op, impl, "throughput")
        mem_rows.append([f"{impl} {op} ({ds})", f"{budget} MiB" if budget else "?", f"{r['max']:.0f}",
                         f"{limit} MiB" if limit else "–", verdict(r["max"] <= limit) if limit else "",
                         num(tp["median"]) if tp else "–"])
        if op != "publish-memory" and (worst is None or r["max"] > worst[0]["max"]):
            worst = (r, limit)
    if mem_rows:
        out += ["### Memory (P9)", "",
                "Largest peak RSS over the runs of each operation (MiB), against its memory budget + "
                f"{P9_SLACK_MIB} MiB. `publish-memory` is one extra publish of the large file with `--memory 64M`.",
                ""]
        out += table(["Run", "budget", "peak RSS (MiB)", "limit", "status", "MB/s"], mem_rows) + [""]

    # Targets.
    s = ctx["summary"]
    why_ours = skipped.get("ccr-ccr1")
    pub = get("large", "publish", "ccr-ccr1", "throughput")
    if pub:
        s.append(["P2", "ccr1 publish of the large file to the local store (tmpfs)", f"{num(pub['median'])} MB/s",
                  f"≥ {num(P2_MBPS)} MB/s", verdict(pub["median"] >= P2_MBPS)])
        for peer, need in (("rclone-crypt", P2_RCLONE), ("gocryptfs", P2_GOCRYPTFS)):
            x = ratio(pub, get("large", "publish", peer, "throughput"))
            if x is not None:
                s.append(["P2", f"ccr1 publish ÷ {peer} publish (large file)", rtxt(x), f"≥ {need:.0f}x",
                          verdict(x >= need)])
    elif why_ours:
        s.append(["P2", "ccr1 publish to the local store", f"not measured: {why_ours}", f"≥ {num(P2_MBPS)} MB/s",
                  verdict(None)])
    if worst:
        r, limit = worst
        s.append(["P9", f"ccr publish/download/verify, default budget: largest peak RSS ({r['impl']} "
                  f"{r['scenario']}, {r['params'].get('dataset')})", f"{r['max']:.0f} MiB",
                  f"≤ {limit} MiB" if limit else "?", verdict(r["max"] <= limit) if limit else "not measured"])
    m64 = get("large", "publish-memory", "ccr-ccr1", "peak_rss")
    if m64:
        budget = mib_budget(m64["params"].get("memory"))
        limit = budget + P9_SLACK_MIB
        s.append(["P9", f"ccr1 publish of the large file with `--memory {m64['params'].get('memory')}`: peak RSS",
                  f"{m64['max']:.0f} MiB", f"≤ {limit} MiB", verdict(m64["max"] <= limit)])
    for op in ("publish", "download"):
        ours = get("small", op, "ccr-ccr1", "files_per_s")
        peer = get("small", op, "rclone-crypt", "files_per_s")
        x = ratio(ours, peer)
        if x is not None:
            s.append(["P10", f"small files: ccr1 {op} ÷ rclone-crypt {op} (files/s: {num(ours['median'])} vs "
                      f"{num(peer['median'])})", rtxt(x), f"≥ {P10_RCLONE:.0f}x", verdict(x >= P10_RCLONE)])
        elif why_ours and op == "publish":
            s.append(["P10", "small files: ccr1 publish and download ÷ rclone-crypt (files/s)",
                      f"not measured: {why_ours}", f"≥ {P10_RCLONE:.0f}x", verdict(None)])
    return out

# ------------------------------------------------------------------------------------------------------
# Section: publish / download over the Azure Blob protocol (P3, P4, P5)
# ------------------------------------------------------------------------------------------------------

AZURE_IMPLS = [("raw-curl", "raw curl, unencrypted (ceiling)"), ("raw-curl-xms", "raw curl, x-ms-range (proxy hop)"),
               ("ccr-none", "ccr, mode none"), ("ccr-ccr1", "ccr, ccr1"), ("ccr-cse", "ccr, cleanroom-cse"),
               ("rclone-crypt", "rclone crypt"), ("sdk", "Python SDK"), ("sdk-cse", "Python SDK, client-side enc. v2")]
AZURE_OPS = ["publish", "download"]
AZURE_DEFAULT_CONNS = 32


def azure_section(recs, ctx):
    by, skipped = {}, {}
    for r in recs:
        p = r.get("params", {})
        ep, ds = p.get("endpoint"), p.get("dataset")
        if r.get("skipped"):
            skipped.setdefault((ep, r["impl"], r["skipped"]), set()).add(ds)
            continue
        if "median" in r:
            by[(ep, ds, r["scenario"], r["impl"], p.get("connections"), r["metric"])] = r
    known = dict(AZURE_IMPLS)

    def get(ep, ds, op, impl, metric, conns=AZURE_DEFAULT_CONNS):
        return by.get((ep, ds, op, impl, conns, metric))

    def impls_of(ep, ds):
        present = {k[3] for k in by if k[0] == ep and k[1] == ds}
        return [(i, lbl) for i, lbl in AZURE_IMPLS if i in present] + \
            [(i, i) for i in sorted(present) if i not in known]

    def first(ep, ds=None):
        return next((r for k, r in by.items() if k[0] == ep and (ds is None or k[1] == ds)), None)

    def med(r, digits=3):
        return f"{r['median']:.{digits}f}" if r else "?"

    hist = ("set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
            "set boxwidth 0.9\nset yrange [0:*]\nset xtics nomirror rotate by -20\n")
    out = ["## Publish and download over the Azure Blob protocol (P3, P4, P5)", ""]
    out.append(f"> P3: {TARGETS['P3']}. P4: {TARGETS['P4']}. P5: {TARGETS['P5']}.")
    out.append("")
    az0, ng0 = first("azurite"), first("nginx")
    az_server = az0["params"].get("server", "Azurite") if az0 else "Azurite"
    ng_server = ng0["params"].get("server", "nginx") if ng0 else "nginx"
    out.append(
        "Every implementation on the same data in the same run, source and downloads on tmpfs, two endpoints on "
        f"loopback. **Azurite** ({az_server}, in memory) speaks the real protocol, but it is one Node.js process "
        "(one JavaScript thread): it is the bottleneck of every figure against it, so each figure has the server's "
        "own CPU seconds per GB beside it (from /proc), and the raw curl rows are the most any client gets from "
        "it. It is restarted, untimed, whenever the data handed to it would pass a budget (it frees deleted data "
        f"only every 10 minutes). **nginx** ({ng_server}, 2 workers, a generated config) answers just enough of "
        "the protocol and costs little (about 0.3 CPU-s/GB for PUTs, 0.5 for GETs through the hop described "
        "next; shown): PUTs are answered 201 and their bodies discarded, List Blobs is "
        "a static XML, and GETs serve the stored blobs (the ccr1 blobs ccr published to Azurite in the same run; "
        "for mode none, the source files). nginx honours only the standard `Range` header, so the `x-ms-range` "
        "GETs that ccr sends go through an internal proxy hop (over a Unix socket) that turns it into `Range`; "
        "the two raw curl download rows show what that hop costs. nginx shares the machine's two cores with "
        "the client, so on this endpoint even raw curl downloads stay well under 2 GB/s. "
        "Ours: `ccr datastore upload|download --no-journal` (default threads and memory budget; --connections "
        f"{AZURE_DEFAULT_CONNS}, the default, unless stated). Peers, all with {AZURE_DEFAULT_CONNS} requests in "
        "flight: `curl --parallel` with a SAS (Put Block of 4 MiB pieces + Put Block List, ranged GETs of 8 MiB; "
        "one Put Blob / GET per small file), `rclone copy` through a crypt remote over an azureblob remote, "
        "and the Azure Python SDK (`upload_blob`/`download_blob`, max_concurrency 32, or 32 threads for the small "
        "files), without and with its client-side encryption v2. "
        f"Each figure is {runs_phrase(recs)}: MB/s = dataset bytes ÷ wall time (MB = 10^6 bytes), files/s = "
        "files ÷ wall, client CPU-s/GB = user + system CPU of the client and everything it reaped (wait4) per "
        "10^9 dataset bytes, peak RSS from wait4 (it cannot be lower than the scenario's own small RSS, which a "
        "forked child inherits), server CPU-s/GB from the server's /proc entries. The last download of every "
        "implementation is compared with the source. Note: Azurite computes an MD5 of every GET answer of at "
        "most 4 MiB, asked for or not (BlobHandler.js), which costs it more than sending the bytes; ccr1 "
        "(4 MiB + 64-byte ranges), cleanroom-cse (16 MiB chunks), rclone (32 MiB streams) and the raw curl "
        "ceiling (8 MiB ranges) do not trigger it, ccr mode none (exactly 4 MiB ranges) and the SDK (4 MiB "
        "chunks) do, and pay for it in the download figures; the Azurite CPU column shows it.")
    out.append("")
    for (ep, name, why), dsl in sorted(skipped.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        dsl = sorted(d for d in dsl if d)
        what = f" ({ep}{', ' + ', '.join(dsl) if dsl else ''})"
        out.append(f"- **{name} not measured**{what}: {why}")
    if skipped:
        out.append("")

    images = []
    # Azurite tables, one per dataset.
    for ds, title in (("large", "One large file"), ("small", "Many small files")):
        rec0 = first("azurite", ds)
        if not rec0:
            continue
        nfiles, nbytes = rec0["params"].get("files"), rec0["params"].get("bytes")
        head = (f"{title}: {size_name(nbytes) if nbytes else '?'}" if ds == "large" else
                f"{title}: {num(nfiles)} x {size_name(nbytes // nfiles) if nfiles and nbytes else '?'}")
        out += [f"### Azurite — {head}", ""]
        rate = "throughput" if ds == "large" else "files_per_s"
        hdr = ["Implementation", "Operation"] + (["MB/s"] if ds == "large" else ["files/s", "MB/s"]) + \
            ["client CPU-s/GB", "peak RSS (MiB)", "Azurite CPU-s/GB"]
        rows = []
        impls = impls_of("azurite", ds)
        for impl, label in impls:
            for op in AZURE_OPS:
                tp = get("azurite", ds, op, impl, "throughput")
                if not tp:
                    continue
                row = [label, op] + ([with_range(tp)] if ds == "large" else
                                     [with_range(get("azurite", ds, op, impl, "files_per_s")), with_range(tp, 1)])
                row += [with_range(get("azurite", ds, op, impl, "cpu"), 2),
                        with_range(get("azurite", ds, op, impl, "peak_rss")),
                        with_range(get("azurite", ds, op, impl, "server_cpu"), 2)]
                rows.append(row)
        out += table(hdr, rows) + [""]
        rrows = []
        for ours in ("ccr-ccr1", "ccr-none", "ccr-cse"):
            for peer in ("raw-curl", "rclone-crypt", "sdk", "sdk-cse"):
                cells = [rtxt(ratio(get("azurite", ds, op, ours, rate), get("azurite", ds, op, peer, rate)))
                         for op in AZURE_OPS]
                if any(c != "–" for c in cells):
                    rrows.append([f"{ours} ÷ {peer}"] + cells)
        if rrows:
            what = "throughput" if ds == "large" else "files per second"
            out += [f"Ratios ({what}, medians):", ""] + table(["", "publish", "download"], rrows) + [""]
        lines = [f"\"{impl}\" " + " ".join(med(get("azurite", ds, op, impl, rate)) for op in AZURE_OPS)
                 for impl, _ in impls]
        unit = "MB/s (10^6 B/s)" if ds == "large" else "files per second"
        png = ctx["plotter"].plot(
            f"azure_azurite_{ds}", "\n".join(lines) + "\n",
            hist + f"set title 'Azurite, {head.replace(chr(39), '')}: {unit}, median of runs'\n"
            f"set ylabel '{unit}'\nplot '$DAT' using 2:xtic(1) title 'publish', '' using 3 title 'download'"
            + bar_labels(2, "%.0f") + "\n")
        if png:
            images.append(f"![Azurite {ds}](bench/{png})")
    if images:
        out += images + [""]
        images = []

    # nginx tables: every connection count.
    for ds, title in (("large", "One large file"), ("small", "Many small files")):
        rec0 = first("nginx", ds)
        if not rec0:
            continue
        nfiles, nbytes = rec0["params"].get("files"), rec0["params"].get("bytes")
        head = (f"{title}: {size_name(nbytes) if nbytes else '?'}" if ds == "large" else
                f"{title}: {num(nfiles)} x {size_name(nbytes // nfiles) if nfiles and nbytes else '?'}")
        out += [f"### nginx (the client pipeline) — {head}", ""]
        hdr = ["Implementation", "connections", "Operation"] + (["MB/s"] if ds == "large" else ["files/s", "MB/s"]) \
            + ["client CPU-s/GB", "peak RSS (MiB)", "nginx CPU-s/GB"]
        rows, plot_rows = [], []
        keys = sorted({(k[3], k[4]) for k in by if k[0] == "nginx" and k[1] == ds},
                      key=lambda x: ([i for i, _ in AZURE_IMPLS].index(x[0]) if x[0] in known else 99,
                                     x[1] if isinstance(x[1], int) else 0))
        for impl, conns in keys:
            label = known.get(impl, impl)
            vals = []
            for op in AZURE_OPS:
                tp = get("nginx", ds, op, impl, "throughput", conns)
                vals.append(med(get("nginx", ds, op, impl, "throughput", conns)))
                if not tp:
                    continue
                row = [label, str(conns), op] + ([with_range(tp)] if ds == "large" else
                                                 [with_range(get("nginx", ds, op, impl, "files_per_s", conns)),
                                                  with_range(tp, 1)])
                row += [with_range(get("nginx", ds, op, impl, "cpu", conns), 2),
                        with_range(get("nginx", ds, op, impl, "peak_rss", conns)),
                        with_range(get("nginx", ds, op, impl, "server_cpu", conns), 2)]
                rows.append(row)
            plot_rows.append(f"\"{impl} {conns}\" " + " ".join(vals))
        out += table(hdr, rows) + [""]
        png = ctx["plotter"].plot(
            f"azure_nginx_{ds}", "\n".join(plot_rows) + "\n",
            hist + f"set title 'nginx (loopback), {head.replace(chr(39), '')}: MB/s by connections, median of runs'\n"
            "set ylabel 'MB/s (10^6 B/s)'\nplot '$DAT' using 2:xtic(1) title 'publish', '' using 3 title 'download'"
            + bar_labels(2, "%.0f") + "\n")
        if png:
            images.append(f"![nginx {ds}](bench/{png})")
    # Client CPU per GB, large file, both endpoints.
    cpu_rows = []
    for ep in ("azurite", "nginx"):
        for impl, _ in impls_of(ep, "large"):
            vals = [med(get(ep, "large", op, impl, "cpu"), 2) for op in AZURE_OPS]
            if any(v != "?" for v in vals):
                cpu_rows.append(f"\"{impl} ({ep})\" " + " ".join(vals))
    if cpu_rows:
        png = ctx["plotter"].plot(
            "azure_cpu", "\n".join(cpu_rows) + "\n",
            hist + "set title 'Client CPU per GB, large file, 32 connections (CPU-s/GB, median; lower is better)'\n"
            "set ylabel 'CPU seconds per 10^9 bytes'\n"
            "plot '$DAT' using 2:xtic(1) title 'publish', '' using 3 title 'download'" + bar_labels(2, "%.2f") + "\n")
        if png:
            images.append(f"![Azure client CPU](bench/{png})")
    if images:
        out += images + [""]

    # Targets.
    s = ctx["summary"]

    def why_not(ep, impl):
        return next((w for (e, n, w) in skipped if e == ep and n == impl), None)

    pub = get("azurite", "large", "publish", "ccr-ccr1", "throughput")
    dl = get("azurite", "large", "download", "ccr-ccr1", "throughput")
    if pub or dl:
        for op, r, tgt, rows in (("publish", pub, "P3", [("raw-curl", P3_RAW), ("rclone-crypt", P3_PEER),
                                                           ("sdk-cse", P3_PEER), ("sdk", P3_PEER)]),
                                 ("download", dl, "P4", [("raw-curl", P4_RAW), ("rclone-crypt", P4_RCLONE)])):
            if not r:
                continue
            for peer, need in rows:
                pr = get("azurite", "large", op, peer, "throughput")
                x = ratio(r, pr)
                if x is None:
                    continue
                s.append([tgt, f"Azurite, large file: ccr1 {op} ÷ {peer} {op} ({num(r['median'])} vs "
                          f"{num(pr['median'])} MB/s)", rtxt(x), f"≥ {need}x", verdict(x >= need)])
    else:
        why = why_not("azurite", "ccr-ccr1") or "no measurement in this run"
        s.append(["P3", "ccr1 publish to Azurite", f"not measured: {why}", f"≥ {P3_RAW}x raw", verdict(None)])
        s.append(["P4", "ccr1 download from Azurite", f"not measured: {why}", f"≥ {P4_RAW}x raw", verdict(None)])
    # P5 is judged on the default (adaptive connections) where the run has it, else on 32.
    p5c = "auto" if get("nginx", "large", "publish", "ccr-ccr1", "throughput", "auto") else AZURE_DEFAULT_CONNS
    npub = get("nginx", "large", "publish", "ccr-ccr1", "throughput", p5c)
    ndl = get("nginx", "large", "download", "ccr-ccr1", "throughput", p5c)
    best = {}
    for op in AZURE_OPS:
        cands = [(r["median"], k[4]) for k, r in by.items()
                 if k[0] == "nginx" and k[1] == "large" and k[2] == op and k[3] == "ccr-ccr1" and k[5] == "throughput"]
        if cands:
            best[op] = max(cands, key=lambda c: c[0])
    for op, r, need in (("publish", npub, P5_PUB_MBPS), ("download", ndl, P5_GET_MBPS)):
        if not r:
            continue
        extra = ""
        if op in best and best[op][1] != p5c:
            extra = f"; best {num(best[op][0])} MB/s with --connections {best[op][1]}"
        how = "default connections (adaptive)" if p5c == "auto" else f"--connections {p5c}"
        s.append(["P5", f"nginx, large file: ccr1 {op}, {how}{extra}",
                  f"{num(r['median'])} MB/s", f"≥ {num(need)} MB/s", verdict(r["median"] >= need)])
        cpu = get("nginx", "large", op, "ccr-ccr1", "cpu", p5c)
        if cpu:
            s.append(["P5", f"nginx, large file: ccr1 {op}: client CPU per GB", f"{cpu['median']:.2f} CPU-s/GB",
                      f"≤ {P5_CPU} CPU-s/GB", verdict(cpu["median"] <= P5_CPU)])
    if not (npub or ndl):
        why = why_not("nginx", "ccr-ccr1")
        if why:
            s.append(["P5", "ccr1 publish / download over nginx", f"not measured: {why}",
                      f"≥ {num(P5_PUB_MBPS)} / {num(P5_GET_MBPS)} MB/s", verdict(None)])
    return out


# ------------------------------------------------------------------------------------------------------
# Generic section for suites without a renderer
# ------------------------------------------------------------------------------------------------------

# ------------------------------------------------------------------------------------------------------
# Section: the FUSE mount (P6, P7, P8, P9, P11)
# ------------------------------------------------------------------------------------------------------

MOUNT_IMPLS = [("ccr-ccr1", "ccr mount (ccr1)"), ("gocryptfs", "gocryptfs"), ("rclone-crypt", "rclone mount (crypt)")]


def mount_section(recs, ctx):
    by, skipped = {}, []
    for r in recs:
        p = r.get("params", {})
        if r.get("skipped"):
            skipped.append(r)
            continue
        if "median" in r:
            by[(r["scenario"], r["impl"], p.get("mode"), r["metric"])] = r

    def get(sc, impl, metric, mode=None):
        return by.get((sc, impl, mode, metric))

    out = ["## The FUSE mount (P6, P7, P8, P9, P11)", ""]
    for t in ("P6", "P7", "P8", "P11"):
        out.append(f"> {t}: {TARGETS[t]}.")
    out.append("")
    size = next((r["params"].get("bytes") for k, r in by.items() if k[0] in ("seq-read", "seq-write")), None)
    cold = next((r["params"].get("drop_caches") for k, r in by.items() if k[0] == "seq-read"), None)
    out.append(
        f"One file of {size_name(size) if size else '?'} on tmpfs, every implementation on the same data in the same "
        "run. Sequential reads are cold: every run gets a fresh mount (" +
        ("and `echo 1 > /proc/sys/vm/drop_caches` before it" if cold else "drop_caches was not permitted") +
        "), then `dd if=MNT/data.bin of=/dev/null bs=1M`, buffered or with `iflag=direct`. Ours: `ccr mount` of a "
        "ccr1 datastore (4 MiB regions) on the local store on tmpfs, default `--memory 512M --prefetch 64M`; "
        "peers: gocryptfs (cipher dir on tmpfs) and `rclone mount --vfs-cache-mode off` of a crypt remote over a "
        "tmpfs directory. Writes: `dd if=SRC of=MNT/out.bin bs=1M conv=fsync` (durable at close) into `ccr mount "
        "--read-write` of an empty ccr1 datastore and into gocryptfs. CPU-s/GB is the mount daemon's own user + "
        "system time (from /proc/PID/stat; for reads its whole life, mounting included), per 10^9 bytes; peak "
        "RSS is its VmHWM just before unmount; over-read is ccr's bytes fetched ÷ bytes read (`--stats-file`). "
        f"Each figure is {runs_phrase(recs)}; MB/s = 10^6 B/s.")
    out.append("")
    for r in skipped:
        out.append(f"- **{r['impl']} not measured** ({r['scenario']}): {r['skipped']}")
    if skipped:
        out.append("")
    s = ctx["summary"]

    # Sequential reads and writes.
    rows = []
    for sc, modes in (("seq-read", ("buffered", "direct")), ("seq-write", (None,))):
        for impl, label in MOUNT_IMPLS:
            for mode in modes:
                tp = get(sc, impl, "throughput", mode)
                if not tp:
                    continue
                ov = get(sc, impl, "over_read", mode)
                rows.append([label, "read" if sc == "seq-read" else "write (conv=fsync)", mode or "buffered",
                             with_range(tp), with_range(get(sc, impl, "cpu", mode), 2),
                             with_range(get(sc, impl, "peak_rss", mode)),
                             with_range(ov, 4) if ov else "–"])
    if rows:
        out += ["### Sequential, one reader or writer (local store on tmpfs)", ""]
        out += table(["Implementation", "Operation", "I/O", "MB/s", "daemon CPU-s/GB", "daemon peak RSS (MiB)",
                      "over-read"], rows) + [""]
        rrows = []
        for peer in ("gocryptfs", "rclone-crypt"):
            cells = [rtxt(ratio(get("seq-read", "ccr-ccr1", "throughput", m), get("seq-read", peer, "throughput", m)))
                     for m in ("buffered", "direct")]
            cells.append(rtxt(ratio(get("seq-write", "ccr-ccr1", "throughput"), get("seq-write", peer, "throughput"))))
            if any(c != "–" for c in cells):
                rrows.append([f"ccr ÷ {peer}"] + cells)
        if rrows:
            out += ["Ratios (MB/s, medians):", ""] + table(["", "read buffered", "read O_DIRECT", "write"], rrows)
            out.append("")

    # Random reads.
    iops = get("rand-read", "ccr-ccr1", "iops")
    if iops:
        p = iops["params"]
        fpr, fpm = get("rand-read", "ccr-ccr1", "fetched_per_read"), get("rand-read", "ccr-ccr1", "fetched_per_miss")
        mpr = get("rand-read", "ccr-ccr1", "miss_per_read")
        out += ["### Random 4 KiB reads over Azurite with 5 ms added per request", "",
                f"`ccr mount` of a ccr1 datastore with {size_name(p.get('region_size', 0))} regions holding a "
                f"{size_name(p.get('bytes', 0))} file, on in-memory Azurite behind the test proxy "
                f"(tests/integration/faultproxy.py) adding {p.get('delay_ms')} ms to every request; "
                f"{p.get('threads')} threads of O_DIRECT preads of 4 KiB at random aligned offsets for "
                f"{p.get('seconds'):.0f} s, a fresh (cold) mount per run. O_DIRECT sends every read to the mount "
                "(the page cache would otherwise soon answer them all); the region cache (`--memory`, default "
                "512M) still warms up during a run, so the miss share below says how cold the run stayed.", ""]
        out += table(["IOPS", "bytes fetched per read", "region-cache misses per read", "bytes fetched per miss",
                      "daemon peak RSS (MiB)"],
                     [[with_range(iops), with_range(fpr), with_range(mpr, 3), with_range(fpm),
                       with_range(get("rand-read", "ccr-ccr1", "peak_rss"))]]) + [""]

    # Targets.
    buf, dio = get("seq-read", "ccr-ccr1", "throughput", "buffered"), get("seq-read", "ccr-ccr1", "throughput", "direct")
    if buf:
        s.append(["P6", "mount, cold sequential read, buffered, one reader", f"{num(buf['median'])} MB/s",
                  f"≥ {num(P6_BUF_MBPS)} MB/s", verdict(buf["median"] >= P6_BUF_MBPS)])
        x = ratio(buf, get("seq-read", "gocryptfs", "throughput", "buffered"))
        s.append(["P6", "mount, cold sequential read, buffered: ccr ÷ gocryptfs", rtxt(x), f"≥ {P6_GOCRYPTFS}x",
                  verdict(None if x is None else x >= P6_GOCRYPTFS)])
    else:
        s.append(["P6", "mount, cold sequential read", "not measured", f"≥ {num(P6_BUF_MBPS)} MB/s", verdict(None)])
    if dio:
        s.append(["P6", "mount, cold sequential read, O_DIRECT 1 MiB", f"{num(dio['median'])} MB/s",
                  f"≥ {num(P6_DIRECT_MBPS)} MB/s", verdict(dio["median"] >= P6_DIRECT_MBPS)])
    w = get("seq-write", "ccr-ccr1", "throughput")
    if w:
        s.append(["P7", "mount, sequential write, conv=fsync", f"{num(w['median'])} MB/s", f"≥ {num(P7_MBPS)} MB/s",
                  verdict(w["median"] >= P7_MBPS)])
        x = ratio(w, get("seq-write", "gocryptfs", "throughput"))
        s.append(["P7", "mount, sequential write: ccr ÷ gocryptfs", rtxt(x), f"≥ {P7_GOCRYPTFS:.0f}x",
                  verdict(None if x is None else x >= P7_GOCRYPTFS)])
    else:
        s.append(["P7", "mount, sequential write", "not measured", f"≥ {num(P7_MBPS)} MB/s", verdict(None)])
    if iops:
        s.append(["P8", "mount, random 4 KiB reads, 16 in flight, +5 ms (Azurite)", f"{num(iops['median'])} IOPS",
                  f"≥ {num(P8_IOPS)} IOPS", verdict(iops["median"] >= P8_IOPS)])
        region = iops["params"].get("region_size", 0)
        worst = max(fpm["max"], fpr["max"]) if fpm and fpr else None
        if worst is not None:
            s.append(["P8", "mount, random reads: bytes fetched per read (per region-cache miss, worst run)",
                      f"{num(fpr['median'])} B ({num(fpm['max'])} B per miss)",
                      f"≤ one region ({size_name(region)})", verdict(fpm["max"] <= region + P8_FRAMING)])
    else:
        s.append(["P8", "mount, random 4 KiB reads", "not measured", f"≥ {num(P8_IOPS)} IOPS", verdict(None)])
    ovs = [r for k, r in by.items() if k[0] == "seq-read" and k[1] == "ccr-ccr1" and k[3] == "over_read"]
    if ovs:
        worst = max(r["max"] for r in ovs)
        s.append(["P11", "mount, sequential read over-read (bytes fetched ÷ read), worst run", f"{worst:.4f}",
                  f"≤ {P11_RATIO}", verdict(worst <= P11_RATIO)])
    rss = [r for k, r in by.items() if k[1] == "ccr-ccr1" and k[3] == "peak_rss"]
    if rss:
        worst = max(rss, key=lambda r: r["max"])
        s.append(["P9", f"mount daemon, default budget: largest peak RSS ({worst['scenario']})",
                  f"{worst['max']:.0f} MiB", f"≤ {P9_MIB} MiB", verdict(worst["max"] <= P9_MIB)])
    return out


def generic_section(suite, recs, ctx):
    out = [f"## Suite `{suite}`", "", f"(No dedicated section yet.) Each figure is {runs_phrase(recs)}.", ""]
    rows = []
    for r in recs:
        if "median" not in r:
            continue
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.get("params", {}).items()))
        rows.append([r.get("scenario", "?"), r.get("impl", "?"), r.get("metric", "?"), params,
                     f"{with_range(r, 2)} {r.get('unit', '')}"])
    out += table(["scenario", "impl", "metric", "params", "median"], rows)
    out.append("")
    return out


SECTIONS = {"crypto": crypto_section, "file": file_section, "transfer": transfer_section, "azure": azure_section,
            "mount": mount_section}


def table(hdr, rows):
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def machine_section(m, quick):
    rows = [
        ["Date", m.get("date", "?")],
        ["Commit", f"`{m.get('commit', '?')}`" + (" (with uncommitted changes)" if m.get("commit_dirty") else "")],
        ["CPU", f"{m.get('cpu_model', '?')}; {m.get('cores', '?')} logical cores; "
                f"flags: {' '.join(m.get('cpu_flags', []))}"],
        ["Memory", f"{m.get('ram_gib', '?')} GiB ({m.get('mem_available_gib', '?')} GiB available at start)"],
        ["Kernel / OS", f"{m.get('kernel', '?')} / {m.get('os', '?')}"],
        ["Medium", f"scratch data on tmpfs: {m.get('tmpfs', '?')}; each section names the endpoint its figures "
                   "used"],
        ["OpenSSL", m.get("openssl", "?")],
        ["gocryptfs", m.get("gocryptfs", "?")],
        ["rclone", m.get("rclone", "?")],
        ["Compiler", m.get("compiler", "?")],
        ["Run", f"{'quick (smoke test of the harness)' if quick else 'full'}; "
                f"{m.get('run_wall_s', '?')} s wall"],
    ]
    other, steal = m.get("other_cpu_pct"), m.get("steal_pct")
    la = (m.get("stat_start", {}).get("loadavg"), m.get("stat_end", {}).get("loadavg"))
    if other is not None:
        quiet = other < 5 and (steal or 0) < 2
        rows.append(["Background load", f"other processes used {other} % of the machine's CPU time during the run"
                     f" (steal {steal} %; 1-min load average {la[0]:.2f} at start, {la[1]:.2f} at end): "
                     + ("quiet" if quiet else "**noisy** — figures may be low and ratios distorted")])
    return table(["", ""], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()

    recs = []
    with open(a.results, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    print(f"report: {a.results}:{n}: {e}", file=sys.stderr)
    with open(a.machine, encoding="utf-8") as f:
        machine = json.load(f)
    quick = a.quick or any(r.get("quick") for r in recs)

    docdir = os.path.dirname(os.path.abspath(a.out))
    plotdir = os.path.join(docdir, "bench")
    work = os.path.join(os.path.dirname(os.path.abspath(a.results)), "plots")
    ctx = {"summary": [], "plotter": Plotter(work, plotdir)}

    suites = []
    for r in recs:
        if r.get("suite") not in suites:
            suites.append(r.get("suite"))
    body = []
    for suite in [s for s in SECTIONS if s in suites] + [s for s in suites if s not in SECTIONS and s != "harness"]:
        rs = [r for r in recs if r.get("suite") == suite]
        body += (SECTIONS[suite](rs, ctx) if suite in SECTIONS else generic_section(suite, rs, ctx))

    md = ["# Benchmarks", "",
          "<!-- Generated by bench/report.py from `make bench` (bench/run.sh); do not edit by hand. -->", ""]
    if quick:
        md += ["> **Quick run** (`bench/run.sh BUILD --quick`): fewer sizes, 3 runs, a small file. It checks that "
               "the harness works; its figures are not the project's numbers.", ""]
    other = machine.get("other_cpu_pct")
    if other is not None and (other >= 5 or (machine.get("steal_pct") or 0) >= 2):
        md += [f"> **Noisy run**: other processes used {other} % of the machine's CPU time while it ran (CPU "
               f"steal {machine.get('steal_pct')} %). Figures are low and ratios, especially two-thread ones, "
               "are distorted; rerun on a quiet machine before drawing conclusions.", ""]
    failed = [r for r in recs if r.get("suite") == "harness" and r.get("failed")]
    for r in failed:
        md.append(f"> **Scenario `{r['scenario']}` failed** ({r.get('notes', '')}): some or all of its figures are missing.")
    if failed:
        md.append("")
    md += [f"Measured on {machine.get('date', '?')} at commit `{str(machine.get('commit', '?'))[:12]}` on "
           f"{machine.get('cpu_model', '?')} ({machine.get('cores', '?')} cores), data on tmpfs. Every target is a "
           "ratio to a reference measured in the same run on the same data (see `shared/design/targets.md`); "
           "every figure is the median of the runs stated in its section. MB = 10^6 bytes, MiB = 2^20 bytes. "
           "How to run and extend: `bench/README.md`. Raw records: [bench/results.jsonl](bench/results.jsonl).",
           ""]
    md += ["## Targets", ""]
    # A "(proxy)" row stands in for a target until that target's own measurement exists in this run.
    real = {row[0] for row in ctx["summary"] if "proxy" not in row[0] and row[4] != "not measured"}
    summary = [row for row in ctx["summary"] if row[0].replace(" (proxy)", "") not in real or "proxy" not in row[0]]
    summary.sort(key=lambda row: int("".join(c for c in row[0].split()[0] if c.isdigit()) or 0))
    if summary:
        md += table(["Target", "What", "Measured", "Target", "Status"], summary) + [""]
        if any("proxy" in row[0] for row in summary):
            md += ["\"(proxy)\": the target's own scenario (publish and download over the high-throughput "
                   "endpoint, the mount) does not exist yet, or did not run; the file encrypt/decrypt scenario "
                   "on tmpfs stands in for it.", ""]
    else:
        md += ["No target could be evaluated in this run.", ""]
    md += body
    md += ["## Machine", ""] + machine_section(machine, quick) + [""]
    if ctx["plotter"].errors:
        md += ["Plots missing: " + "; ".join(ctx["plotter"].errors), ""]

    os.makedirs(docdir, exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    shutil.copyfile(a.results, os.path.join(plotdir, "results.jsonl"))
    for e in ctx["plotter"].errors:
        print(f"report: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
