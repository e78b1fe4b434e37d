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
    "P5": "publish / download over the high-throughput endpoint: >= 1.5 / 2.0 GB/s; client CPU <= 0.8 CPU-s per GB",
    "P9": "memory: peak RSS <= budget + 64 MiB for any size or count of files (default budget 512 MiB)",
}
P1_ONE, P1_TWO = 0.95, 1.8
P2_MBPS, P2_RCLONE, P2_GOCRYPTFS = 1500.0, 8.0, 4.0
P5_CPU = 0.8
P9_MIB = 512 + 64

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
        "and buffers, looping over one region for a fixed time per run (seal in place; open out of place, "
        "because opening in place destroys the ciphertext it would reuse). `ccr1` = `ccr_ccr1_seal_region` / "
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
# Generic section for suites without a renderer
# ------------------------------------------------------------------------------------------------------

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


SECTIONS = {"crypto": crypto_section, "file": file_section}


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
        md.append(f"> **Scenario `{r['scenario']}` failed** ({r.get('notes', '')}): its figures are missing.")
    if failed:
        md.append("")
    md += [f"Measured on {machine.get('date', '?')} at commit `{str(machine.get('commit', '?'))[:12]}` on "
           f"{machine.get('cpu_model', '?')} ({machine.get('cores', '?')} cores), data on tmpfs. Every target is a "
           "ratio to a reference measured in the same run on the same data (see `shared/design/targets.md`); "
           "every figure is the median of the runs stated in its section. MB = 10^6 bytes, MiB = 2^20 bytes. "
           "How to run and extend: `bench/README.md`. Raw records: [bench/results.jsonl](bench/results.jsonl).",
           ""]
    md += ["## Targets", ""]
    if ctx["summary"]:
        md += table(["Target", "What", "Measured", "Target", "Status"], ctx["summary"]) + [""]
        if any("proxy" in row[0] for row in ctx["summary"]):
            md += ["\"(proxy)\": no publish, download or mount exists yet; the file encrypt/decrypt scenario on "
                   "tmpfs stands in for them until their own scenarios are added.", ""]
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
