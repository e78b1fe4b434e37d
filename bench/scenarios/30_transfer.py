#!/usr/bin/python3
"""Scenario transfer (targets P2, P9, P10): publish, download and verify on the local store on tmpfs.

Two datasets, generated on tmpfs (/dev/shm) in the same run, every implementation on the same data:
  large   one file of BENCH_TRANSFER_SIZE bytes (default 4 GiB + 1 MiB + 37 B; quick 256 MiB + 4 KiB + 37 B)
  small   BENCH_TRANSFER_FILES files (default 10,000) of 4 KiB in 20 directories
Implementations:
  ccr-ccr1      `ccr datastore upload|download|verify` of a ccr1 datastore (`datastore add --new-key`) on
                the local store (file:///dev/shm/...), with --no-journal (so reruns redo the work), default
                threads and memory budget (512 MiB)
  ccr-cse       the same with a cleanroom-cse datastore (large file only)
  rclone-crypt  `rclone copy` to / from a crypt remote over a local tmpfs directory (--transfers 8
                --checkers 16 for the small files; rclone defaults otherwise)
  gocryptfs     a cipher dir on tmpfs, mounted (-scryptn 10): `cp -r` of the tree into the mount then
                `sync -f` (publish); `cp -r` out of a fresh mount (download). CPU and peak RSS: cp plus
                the gocryptfs daemon.
Per run: wall time -> MB/s (dataset bytes / wall, MB = 10^6 B) and files/s; client CPU seconds per GB
(user + system of every client process, from wait4); peak RSS (ru_maxrss). Median of BENCH_RUNS runs.
P9: one more ccr1 upload of the large file with --memory 64M, its peak RSS against 64 MiB + 64 MiB.

Order per dataset: BENCH_RUNS - 1 rounds of publishes interleaved across implementations (each store
copy removed right after), then per implementation: the last publish (kept), the downloads (each output
removed after it is measured; the last one is compared with the source), the verifies (ccr), and the
store copy removed. So tmpfs holds at most the source, one store copy and one downloaded copy.

ccr is used only when `ccr datastore add/upload/download/verify` round-trip a small tree byte for byte in
a mode; otherwise that implementation is recorded as skipped with the reason (the report shows it).
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

MiB, GiB = B.MiB, B.GiB
SUITE = "transfer"
LARGE = B.parse_size(os.environ.get("BENCH_TRANSFER_SIZE", "256M+4K+37" if B.QUICK else "4G+1M+37"))
SMALL_FILES = int(os.environ.get("BENCH_TRANSFER_FILES", "10000"))
SMALL_SIZE = 4096
SMALL_DIRS = 20
MEMORY_P9 = "64M"
MEDIUM = "tmpfs (/dev/shm)"


def timeout_for(nbytes, nfiles):
    """Generous per-command limit (a hung implementation must not hang `make bench`): 20 MB/s, 200 files/s."""
    return 60 + nbytes / 20e6 + nfiles / 200


class Dataset:
    def __init__(self, name, root, files, nbytes):
        self.name, self.root, self.files, self.bytes = name, root, files, nbytes
        self.digest = None
        self.timeout = timeout_for(nbytes, files)

    @property
    def params(self):
        return {"dataset": self.name, "bytes": self.bytes, "files": self.files, "medium": MEDIUM}


def gen_large(work):
    root = os.path.join(work, "src-large")
    os.makedirs(root)
    B.gen_keystream(os.path.join(root, "data.bin"), LARGE)
    return Dataset("large", root, 1, LARGE)


def gen_small(work):
    """SMALL_FILES files of 4 KiB cut from one keystream, in SMALL_DIRS directories."""
    root = os.path.join(work, "src-small")
    os.makedirs(root)
    stream = os.path.join(work, "small.stream")
    B.gen_keystream(stream, SMALL_FILES * SMALL_SIZE, iv="01")
    per_dir = (SMALL_FILES + SMALL_DIRS - 1) // SMALL_DIRS
    with open(stream, "rb") as f:
        for i in range(SMALL_FILES):
            d = os.path.join(root, f"d{i // per_dir:02d}")
            if i % per_dir == 0:
                os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as out:
                out.write(f.read(SMALL_SIZE))
    B.rm(stream)
    return Dataset("small", root, SMALL_FILES, SMALL_FILES * SMALL_SIZE)


def dir_bytes(path):
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for n in filenames:
            total += os.path.getsize(os.path.join(dirpath, n))
    return total


# ------------------------------------------------------------------------------------------------------
# Implementations: upload(ds) -> Measured, download(ds, dst) -> Measured, verify(ds) -> Measured (ccr only),
# stored_bytes(ds), discard(ds) (remove the store copy), teardown().
# ------------------------------------------------------------------------------------------------------

class Ccr:
    """`ccr datastore ...` with a private config (--config) and datastores on the local store."""

    verifies = True

    def __init__(self, name, ccr, mode, work):
        self.name, self.ccr, self.mode = name, ccr, mode
        self.dsname = "bench-" + ("ccr1" if mode == "ccr1" else "cse")
        self.confdir = os.path.join(work, "ccr-config")
        self.config = os.path.join(self.confdir, "config.json")
        self.container = os.path.join(work, "store", self.dsname)
        self.out = os.path.join(work, f"{name}.json")
        self.datasets = ("large", "small") if mode == "ccr1" else ("large",)
        self.env = dict(os.environ, CCR_CONFIG=self.config)
        self.env.pop("CCR_MEMORY", None)
        self.params = {"mode": mode, "memory": "512M (default)", "threads": "default (online CPUs)"}
        self.notes = (f"`ccr datastore upload|download|verify --no-journal` of a {mode} datastore on the local "
                      f"store (`file://` on tmpfs), default threads and memory budget")

    def cmd(self, verb, *args):
        return [self.ccr, "datastore", verb, "--config", self.config, *args]

    def add(self):
        """Creates the datastore (and its key); returns None or why it failed."""
        os.makedirs(self.confdir, mode=0o700, exist_ok=True)
        r = subprocess.run(self.cmd("add", self.dsname, "--url", "file://" + self.container, "--mode", self.mode,
                                    "--new-key"), capture_output=True, text=True, env=self.env, timeout=60)
        if r.returncode != 0:
            return f"`ccr datastore add --mode {self.mode} --new-key` exit {r.returncode}: {r.stderr.strip()[:200]}"
        return None

    def _run(self, ds, verb, *args, expect_files=None):
        errfile = self.out + ".stderr"
        with open(self.out, "w", encoding="utf-8") as out, open(errfile, "w", encoding="utf-8") as err:
            m = B.run_measured(self.cmd(verb, self.dsname, *args, "--quiet", "--json"), check=False,
                               env=self.env, stdout=out, stderr=err, timeout=ds.timeout if ds else 120)
        with open(errfile, encoding="utf-8", errors="replace") as f:
            stderr = f.read().strip()
        if stderr:
            B.log(f"transfer: ccr datastore {verb} ({self.mode}) said: {stderr[-500:]}")
        if m.rc != 0:
            why = "timed out" if m.rc == -9 else f"exit {m.rc}"
            raise RuntimeError(f"`ccr datastore {verb}` ({self.mode}) {why}: {stderr[-200:]}")
        with open(self.out, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        try:
            summary = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError) as e:
            raise RuntimeError(f"ccr datastore {verb}: no JSON summary on stdout ({e})") from None
        want = expect_files if expect_files is not None else (ds.files if ds else None)
        if summary.get("errors") or (want is not None and summary.get("files") != want):
            raise RuntimeError(f"ccr datastore {verb} ({self.mode}): {lines[-1][:300]}")
        return m

    def upload(self, ds, memory=None):
        extra = ["--memory", memory] if memory else []
        return self._run(ds, "upload", ds.root, "--no-journal", *extra)

    def download(self, ds, dst):
        return self._run(ds, "download", dst, "--no-journal")

    def verify(self, ds):
        return self._run(ds, "verify")

    def stored_bytes(self, ds):
        return dir_bytes(self.container) - dir_bytes(os.path.join(self.container, ".ccr"))

    def discard(self, ds=None):
        """Empties the container (keeps it and its `.ccr` staging directory)."""
        if not os.path.isdir(self.container):
            return
        for n in os.listdir(self.container):
            if n != ".ccr":
                B.rm(os.path.join(self.container, n))

    def teardown(self):
        self.discard()


class Gocryptfs:
    name = "gocryptfs"
    verifies = False
    datasets = ("large", "small")

    def __init__(self, work):
        self.cipherdir = os.path.join(work, "gocryptfs-cipher")
        self.mnt = os.path.join(work, "gocryptfs-mnt")
        self.passfile = os.path.join(work, "gocryptfs.pass")
        with open(self.passfile, "w", encoding="utf-8") as f:
            f.write("ccr-bench-password\n")
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = None
        self.params = {"version": B.version(["gocryptfs", "--version"])}
        self.notes = ("gocryptfs (AES-256-GCM, 4 KiB blocks) over a cipher dir on tmpfs, -scryptn 10; publish = "
                      "`cp -r` into a fresh mount then `sync -f`; download = `cp -r` out of a fresh mount; "
                      "CPU = daemon + cp; RSS = sum of their peaks; mount and unmount not timed")

    def _mount(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(["gocryptfs", "-fg", "-q", "-passfile", self.passfile, self.cipherdir,
                                      self.mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not B.mounted(self.mnt):
            if self.proc.poll() is not None:
                raise RuntimeError(f"gocryptfs mount failed (exit {self.proc.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError("gocryptfs mount did not come up in 20 s")
            time.sleep(0.01)
        return t0

    def _unmount(self, t0):
        B.unmount(self.mnt)
        m = B.wait_measured(self.proc, t0)
        self.proc = None
        return m

    def upload(self, ds):
        B.rm(self.cipherdir)
        os.makedirs(self.cipherdir)
        B.run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", self.passfile, self.cipherdir],
              capture=True)
        t0 = self._mount()
        try:
            cp = B.run_measured(["sh", "-c", 'cp -r "$1" "$2" && sync -f "$2"', "sh", ds.root,
                                 os.path.join(self.mnt, ds.name)], timeout=ds.timeout)
        finally:
            daemon = self._unmount(t0)
        return B.combine(cp, daemon)

    def download(self, ds, dst):
        t0 = self._mount()
        try:
            cp = B.run_measured(["cp", "-r", os.path.join(self.mnt, ds.name), dst], timeout=ds.timeout)
        finally:
            daemon = self._unmount(t0)
        return B.combine(cp, daemon)

    def stored_bytes(self, ds):
        return dir_bytes(self.cipherdir)

    def discard(self, ds=None):
        B.rm(self.cipherdir)

    def teardown(self):
        B.unmount(self.mnt)
        if self.proc:
            B.stop(self.proc)
        self.discard()


class Rclone:
    name = "rclone-crypt"
    verifies = False
    datasets = ("large", "small")

    def __init__(self, work):
        self.remote_dir = os.path.join(work, "rclone-remote")
        conf = os.path.join(work, "rclone.conf")
        open(conf, "w").close()
        obscured = B.run(["rclone", "obscure", "ccr-bench-password"], capture=True).stdout.strip()
        self.env = dict(os.environ, RCLONE_CONFIG=conf, RCLONE_CONFIG_CCRBENCH_TYPE="crypt",
                        RCLONE_CONFIG_CCRBENCH_REMOTE=self.remote_dir,
                        RCLONE_CONFIG_CCRBENCH_PASSWORD=obscured)
        self.params = {"version": B.version(["rclone", "version"])}
        self.notes = ("`rclone copy` to / from a crypt remote (XSalsa20-Poly1305, 64 KiB chunks, standard name "
                      "encryption) over a local directory on tmpfs; `--transfers 8 --checkers 16` for the small "
                      "files, rclone defaults otherwise")

    def flags(self, ds):
        return ["--transfers", "8", "--checkers", "16"] if ds.files > 1 else []

    def upload(self, ds):
        os.makedirs(self.remote_dir, exist_ok=True)
        return B.run_measured(["rclone", "copy", *self.flags(ds), ds.root, f"ccrbench:{ds.name}"], env=self.env,
                              timeout=ds.timeout)

    def download(self, ds, dst):
        return B.run_measured(["rclone", "copy", *self.flags(ds), f"ccrbench:{ds.name}", dst], env=self.env,
                              timeout=ds.timeout)

    def stored_bytes(self, ds):
        return dir_bytes(self.remote_dir)

    def discard(self, ds=None):
        B.rm(self.remote_dir)

    def teardown(self):
        self.discard()


# ------------------------------------------------------------------------------------------------------
# Is ccr's datastore CLI there and working?
# ------------------------------------------------------------------------------------------------------

def ccr_probe(impl, work):
    """Creates the datastore, round-trips a small tree (upload, download, verify) and empties the store again.
    Returns None when it works, else the reason."""
    why = impl.add()
    if why:
        return why
    root = os.path.join(work, "probe-src")
    dst = os.path.join(work, "probe-dst")
    try:
        ds = Dataset("probe", root, *B.probe_tree(root))
        ds.timeout = 120
        impl.upload(ds)
        impl.download(ds, dst)
        if B.tree_digest(dst) != B.tree_digest(root):
            return f"{impl.mode} upload + download round trip is not byte-exact"
        impl.verify(ds)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return str(e)[:300]
    finally:
        B.rm(root)
        B.rm(dst)
        impl.discard()
    return None


# ------------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------------

def record_all(ds, impl, scenario, ms, extra_params=None):
    params = dict(impl.params, **ds.params, **(extra_params or {}))
    notes = impl.notes + f"; dataset {ds.name}: {ds.files:,} file(s), {ds.bytes:,} bytes, on {MEDIUM}"
    gb = ds.bytes / 1e9
    B.record(SUITE, scenario, impl.name, "throughput", params, [ds.bytes / 1e6 / m.wall for m in ms], "MB/s", notes)
    if ds.files > 1:
        B.record(SUITE, scenario, impl.name, "files_per_s", params, [ds.files / m.wall for m in ms], "files/s",
                 notes)
    B.record(SUITE, scenario, impl.name, "cpu", params, [m.cpu / gb for m in ms], "CPU-s/GB", notes,
             user_s=[round(m.user, 3) for m in ms], sys_s=[round(m.sys, 3) for m in ms])
    B.record(SUITE, scenario, impl.name, "peak_rss", params, [m.maxrss_kib / 1024 for m in ms], "MiB", notes)


def describe(ds, m):
    rate = f", {ds.files / m.wall:,.0f} files/s" if ds.files > 1 else ""
    return f"{ds.bytes / 1e6 / m.wall:,.0f} MB/s{rate}, {m}"


def measure(ds, impls, work, runs, failures):
    """All runs of one dataset, recording each implementation's figures when its runs are done. An
    implementation that fails (a command error or time-out, a download that differs from the source) is
    recorded as skipped with the reason, added to failures and left out of the rest of the dataset."""
    res = {}
    dst = os.path.join(work, "download")
    impls = [i for i in impls if ds.name in i.datasets]
    failed = set()

    def fail(impl, why):
        B.log(f"transfer: {ds.name}: {impl.name} FAILED: {why}")
        failed.add(impl.name)
        failures.append(f"{impl.name} ({ds.name}): {why}")
        B.rm(dst)
        impl.discard(ds)
        for scenario in ("publish", "download", "verify"):
            B.append_raw({"suite": SUITE, "scenario": scenario, "impl": impl.name, "metric": "throughput",
                          "params": ds.params, "skipped": f"failed during the run on the {ds.name} dataset: {why}"})

    def publish(impl, r):
        impl.discard(ds)
        m = impl.upload(ds)
        B.log(f"transfer: {ds.name} publish {impl.name} run {r + 1}/{runs}: {describe(ds, m)}")
        res.setdefault(("publish", impl.name), []).append(m)

    for r in range(runs - 1):
        for impl in impls:
            if impl.name in failed:
                continue
            try:
                publish(impl, r)
            except RuntimeError as e:
                fail(impl, str(e)[:300])
            impl.discard(ds)
    for impl in impls:
        if impl.name in failed:
            continue
        try:
            publish(impl, runs - 1)
            stored = impl.stored_bytes(ds)
            for r in range(runs):
                B.rm(dst)
                m = impl.download(ds, dst)
                B.log(f"transfer: {ds.name} download {impl.name} run {r + 1}/{runs}: {describe(ds, m)}")
                res.setdefault(("download", impl.name), []).append(m)
                if r < runs - 1:
                    B.rm(dst)
            got = B.tree_digest(dst)
            B.rm(dst)
            if got[2] != ds.digest:
                raise RuntimeError(f"the downloaded {ds.name} dataset differs from the source ({got[0]} files, "
                                   f"{got[1]} bytes; source {ds.files} files, {ds.bytes} bytes)")
            if impl.verifies:
                for r in range(runs):
                    m = impl.verify(ds)
                    B.log(f"transfer: {ds.name} verify {impl.name} run {r + 1}/{runs}: {describe(ds, m)}")
                    res.setdefault(("verify", impl.name), []).append(m)
        except RuntimeError as e:
            fail(impl, str(e)[:300])
            continue
        impl.discard(ds)
        extra = {"stored_bytes": stored}
        for scenario in ("publish", "download", "verify"):
            if (scenario, impl.name) in res:
                record_all(ds, impl, scenario, res[(scenario, impl.name)], extra)
    return res


def main():
    work = B.scratch_dir("transfer")
    need = 3 * LARGE + 1 * GiB
    st = os.statvfs(work)
    if B.mem_available_bytes() < need or st.f_bavail * st.f_frsize < need:
        raise SystemExit(f"transfer: need {need / GiB:.1f} GiB free memory and tmpfs space for a "
                         f"{LARGE / GiB:.2f} GiB file (source, store copy, downloaded copy); "
                         "set BENCH_TRANSFER_SIZE smaller")
    runs = B.RUNS

    failures = []
    with B.Cleanup() as cleanup:
        cleanup.add(B.rm, work)
        impls = []
        ccr = B.tool_path("ccr")
        for name, mode in (("ccr-ccr1", "ccr1"), ("ccr-cse", "cleanroom-cse")):
            impl = Ccr(name, ccr, mode, work) if ccr else None
            why = ccr_probe(impl, work) if impl else f"no ccr binary in {B.BUILD}/tools"
            if why:
                B.log(f"transfer: {name} skipped: {why}")
                dsets = ("large", "small") if mode == "ccr1" else ("large",)
                for dsname in dsets:
                    for scenario in ("publish", "download", "verify"):
                        B.append_raw({"suite": SUITE, "scenario": scenario, "impl": name, "metric": "throughput",
                                      "params": {"dataset": dsname}, "skipped": why})
                if mode == "ccr1":
                    B.append_raw({"suite": SUITE, "scenario": "publish-memory", "impl": name,
                                  "metric": "peak_rss", "params": {"dataset": "large", "memory": MEMORY_P9},
                                  "skipped": why})
            else:
                impls.append(impl)
                cleanup.add(impl.teardown)
        for prog, cls in (("gocryptfs", Gocryptfs), ("rclone", Rclone)):
            if shutil.which(prog):
                impl = cls(work)
                impls.append(impl)
                cleanup.add(impl.teardown)
            else:
                why = f"{prog} is not installed (tools/bootstrap.sh bench)"
                B.log(f"transfer: {cls.name} skipped: {why}")
                B.append_raw({"suite": SUITE, "scenario": "publish", "impl": cls.name, "metric": "throughput",
                              "params": {}, "skipped": why})

        # Small files first: they need little memory, and a failure shows early.
        B.log(f"transfer: generating {SMALL_FILES:,} files of {SMALL_SIZE} bytes")
        small = gen_small(work)
        small.digest = B.tree_digest(small.root)[2]
        measure(small, impls, work, runs, failures)
        B.rm(small.root)

        B.log(f"transfer: generating a file of {LARGE:,} bytes ({LARGE / GiB:.2f} GiB)")
        large = gen_large(work)
        large.digest = B.tree_digest(large.root)[2]
        B.prefault(work, 2 * LARGE)
        measure(large, impls, work, runs, failures)

        # P9: the same publish under a 64 MiB budget.
        ccr1 = next((i for i in impls if i.name == "ccr-ccr1"), None)
        if ccr1 and any(f.startswith("ccr-ccr1 (large)") for f in failures):
            B.append_raw({"suite": SUITE, "scenario": "publish-memory", "impl": "ccr-ccr1", "metric": "peak_rss",
                          "params": dict(large.params, memory=MEMORY_P9),
                          "skipped": "ccr-ccr1 failed on the large dataset"})
        elif ccr1:
            params = dict(ccr1.params, **large.params, memory=MEMORY_P9)
            try:
                ccr1.discard()
                m = ccr1.upload(large, memory=MEMORY_P9)
                ccr1.discard()
                B.log(f"transfer: large publish ccr-ccr1 --memory {MEMORY_P9}: {describe(large, m)}")
                notes = (f"one `ccr datastore upload --memory {MEMORY_P9} --no-journal` of the large file "
                         f"({large.bytes:,} bytes) to a ccr1 datastore on tmpfs")
                B.record(SUITE, "publish-memory", "ccr-ccr1", "peak_rss", params, [m.maxrss_kib / 1024], "MiB",
                         notes)
                B.record(SUITE, "publish-memory", "ccr-ccr1", "throughput", params, [large.bytes / 1e6 / m.wall],
                         "MB/s", notes)
            except RuntimeError as e:
                why = f"`ccr datastore upload --memory {MEMORY_P9}` failed: {str(e)[:300]}"
                B.log(f"transfer: {why}")
                failures.append(why)
                B.append_raw({"suite": SUITE, "scenario": "publish-memory", "impl": "ccr-ccr1",
                              "metric": "peak_rss", "params": params, "skipped": why})
        B.rm(large.root)
    if failures:
        raise SystemExit("transfer: failed: " + "; ".join(failures))
    B.log("transfer: done, scratch removed")


if __name__ == "__main__":
    main()
