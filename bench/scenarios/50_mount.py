#!/usr/bin/python3
"""Scenario mount (targets P6, P7, P8, P9, P11): the FUSE mount, beside gocryptfs and `rclone mount`.

Same data in the same run: one file of BENCH_MOUNT_SIZE bytes (default 1 GiB; quick 128 MiB) on tmpfs.
  seq-read (P6, P9, P11)  one reader, cold: every run gets a fresh mount (unmount, `echo 1 >
          /proc/sys/vm/drop_caches` when permitted, mount), then `dd if=MNT/data.bin of=/dev/null bs=1M`,
          buffered and with iflag=direct.
            ccr-ccr1      `ccr mount` of a ccr1 datastore (default 4 MiB regions) on the local store (tmpfs),
                          default --memory 512M and --prefetch 64M
            gocryptfs     a gocryptfs file system (-scryptn 10) whose cipher dir is on tmpfs
            rclone-crypt  `rclone mount --vfs-cache-mode off` of a crypt remote over a tmpfs directory
  seq-write (P7)  `dd if=SRC of=MNT/out.bin bs=1M conv=fsync` (durable at close) into `ccr mount
          --read-write` of an empty ccr1 datastore on tmpfs, and into gocryptfs; the file is removed (untimed)
          after each run, one mount per implementation.
  rand-read (P8)  ccr-ccr1 over Azurite (in memory, tests/integration/azurite.py) behind the delaying proxy
          (tests/integration/faultproxy.py, delay_ms=5 on every request), a ccr1 datastore with --region-size
          64K holding a BENCH_MOUNT_RAND_SIZE file (default 256 MiB), published through the proxy; per run a
          fresh mount and 16 threads of O_DIRECT preads of 4 KiB at random 4 KiB-aligned offsets for
          BENCH_MOUNT_RAND_SECONDS (default 10; quick 5), in a child process (this file run as `rand-reader`).
Per run: MB/s (MB = 10^6 B) or IOPS; the daemon's CPU-s per GB read or written (user + system of the mount
daemon from /proc/PID/stat just before unmount, so it includes mounting, not dd); its peak RSS (VmHWM from
/proc/PID/status just before unmount); for ccr, bytes fetched ÷ bytes read (over-read, P11) or bytes fetched
per pread (P8) from --stats-file. A peer that is missing or cannot mount is recorded as skipped with the reason.
"""

import ctypes
import json
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

MiB, GiB, KiB = B.MiB, B.GiB, B.KiB
SUITE = "mount"
SIZE = B.parse_size(os.environ.get("BENCH_MOUNT_SIZE", "128M" if B.QUICK else "1G"))
RAND_SIZE = B.parse_size(os.environ.get("BENCH_MOUNT_RAND_SIZE", "256M"))
RAND_MEMORY = os.environ.get("BENCH_MOUNT_RAND_MEMORY", "16M")  # the mount's budget: most reads miss
RAND_SECONDS = float(os.environ.get("BENCH_MOUNT_RAND_SECONDS", "5" if B.QUICK else "10"))
RAND_THREADS = 16
RAND_REGION = "64K"
DELAY_MS = 5
INTEGRATION = os.path.join(B.ROOT, "tests", "integration")
PY = "/usr/bin/python3"


# ------------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------------

def make_subreaper():
    """`ccr mount` forks its daemon into the background; as a child subreaper we adopt it and can reap it."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout):
    """Waits for pid to end (reaping it if it is ours); True when it did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            p, _ = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                return True
        except ChildProcessError:
            if not alive(pid):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def proc_cpu(pid):
    return B.proc_cpu(pid)


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def drop_caches():
    """Drops clean page cache (needs root); False when not permitted."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


def dd(args, timeout):
    return B.run_measured(["dd"] + args + ["status=none"], timeout=timeout, stderr=subprocess.PIPE)


def wait_mounted(mp, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not B.mounted(mp):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before mounting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not mount in {timeout} s")
        time.sleep(0.01)


# ------------------------------------------------------------------------------------------------------
# Mounts: each has mount() -> pid of the daemon, unmount(), and the file's path
# ------------------------------------------------------------------------------------------------------

class CcrMount:
    def __init__(self, name, ccr, env, work, datastore, extra=()):
        self.name, self.ccr, self.env, self.datastore, self.extra = name, ccr, env, datastore, list(extra)
        self.mp = os.path.join(work, f"mnt-{name}")
        self.ready = os.path.join(work, f"{name}.ready")
        self.stats = os.path.join(work, f"{name}.stats")
        self.logf = os.path.join(work, f"{name}.log")
        os.makedirs(self.mp, exist_ok=True)
        self.pid = None

    def mount(self):
        for p in (self.ready, self.stats):
            B.rm(p)
        r = subprocess.run([self.ccr, "mount", self.datastore, self.mp, "--ready-file", self.ready, "--stats-file",
                            self.stats, "--log-file", self.logf] + self.extra, env=self.env, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"ccr mount {self.datastore}: exit {r.returncode}: {r.stderr.strip()[:300]}")
        with open(self.ready, encoding="utf-8") as f:
            self.pid = json.load(f)["pid"]
        wait_mounted(self.mp, None, "ccr mount")
        return self.pid

    def stats_json(self, pred=None, timeout=3.0):
        """The daemon's counters (rewritten every second): waits up to timeout for pred to hold."""
        deadline = time.monotonic() + timeout
        s = {}
        while True:
            try:
                with open(self.stats, encoding="utf-8") as f:
                    s = json.load(f)
            except (OSError, ValueError):
                pass
            if (s and (pred is None or pred(s))) or time.monotonic() > deadline:
                return s
            time.sleep(0.1)

    def unmount(self):
        if B.mounted(self.mp):
            r = subprocess.run([self.ccr, "unmount", self.mp], env=self.env, capture_output=True, text=True,
                               timeout=300)
            if r.returncode != 0:
                B.log(f"mount: ccr unmount {self.mp}: exit {r.returncode}: {r.stderr.strip()[:200]}")
        B.unmount(self.mp)
        if self.pid and not wait_gone(self.pid, 60):
            B.log(f"mount: ccr daemon {self.pid} still running after unmount; killing it")
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(self.pid, 10)
        self.pid = None


class ProcMount:
    """A peer daemon run in the foreground as our child (gocryptfs -fg, rclone mount)."""

    def __init__(self, name, mp, argv, env=None):
        self.name, self.mp, self.argv, self.env = name, mp, argv, env
        os.makedirs(mp, exist_ok=True)
        self.proc = None
        self.errf = None

    def mount(self):
        self.errf = open(self.mp + ".stderr", "w+b")  # noqa: SIM115 (closed in unmount)
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=self.errf)
        try:
            wait_mounted(self.mp, self.proc, self.name)
        except RuntimeError as e:
            self.errf.seek(0)
            detail = self.errf.read().decode(errors="replace").strip()[-300:]
            self.unmount()
            raise RuntimeError(f"{e}: {detail}") from None
        return self.proc.pid

    def unmount(self):
        B.unmount(self.mp)
        if self.proc:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                B.stop(self.proc)
            self.proc = None
        if self.errf:
            self.errf.close()
            self.errf = None


# ------------------------------------------------------------------------------------------------------
# Recording
# ------------------------------------------------------------------------------------------------------

def skip(scenario, impl, why, params=None):
    B.log(f"mount: {scenario} {impl} skipped: {why}")
    B.append_raw({"suite": SUITE, "scenario": scenario, "impl": impl, "metric": "throughput",
                  "params": params or {}, "skipped": why, "notes": why})


def rec(scenario, impl, metric, params, runs, unit, notes=""):
    runs = [r for r in runs if r is not None]
    if runs:
        B.record(SUITE, scenario, impl, metric, params, runs, unit, notes)


def seq_read(impl, mnt, runs, params, notes, can_drop, timeout):
    """P6: runs cold reads through fresh mounts, buffered then O_DIRECT; records per mode."""
    for mode, flags in (("buffered", []), ("direct", ["iflag=direct"])):
        tp, cpu, rss, over = [], [], [], []
        for i in range(runs):
            pid = mnt.mount()
            try:
                if can_drop:
                    drop_caches()
                cpu0 = proc_cpu(pid)
                m = dd([f"if={os.path.join(mnt.mp, 'data.bin')}", "of=/dev/null", "bs=1M"] + flags, timeout)
                c1, hwm = proc_cpu(pid), vm_hwm_mib(pid)
                if isinstance(mnt, CcrMount):
                    s = mnt.stats_json(lambda s: s.get("bytes_read", 0) >= SIZE)
                    if s.get("bytes_read"):
                        over.append(s["bytes_fetched"] / s["bytes_read"])
            finally:
                mnt.unmount()
            tp.append(SIZE / m.wall / 1e6)
            if c1 is not None and cpu0 is not None:
                cpu.append(c1 / (SIZE / 1e9))  # whole daemon life: mounting included (small)
            rss.append(hwm)
            B.log(f"mount: read {impl} {mode} run {i + 1}/{runs}: {tp[-1]:.0f} MB/s, daemon "
                  f"{(c1 or 0):.2f} CPU-s, VmHWM {hwm or 0:.0f} MiB" + (f", over-read {over[-1]:.4f}" if over else ""))
        p = dict(params, mode=mode, bytes=SIZE, bs="1M")
        n = notes + ("; O_DIRECT (dd iflag=direct)" if mode == "direct" else "; buffered (page cache, readahead)")
        rec("seq-read", impl, "throughput", p, tp, "MB/s", n)
        rec("seq-read", impl, "cpu", p, cpu, "CPU-s/GB", "mount daemon, user + system, from /proc/PID/stat")
        rec("seq-read", impl, "peak_rss", p, rss, "MiB", "mount daemon VmHWM before unmount")
        rec("seq-read", impl, "over_read", p, over, "ratio", "bytes_fetched / bytes_read (--stats-file)")


def seq_write(impl, mnt, src, runs, params, notes, can_drop, timeout):
    """P7: dd with conv=fsync into one mount; the output removed after each run (untimed)."""
    tp, cpu = [], []
    pid = mnt.mount()
    try:
        for i in range(runs):
            out = os.path.join(mnt.mp, "out.bin")
            if can_drop:
                drop_caches()
            c0 = proc_cpu(pid)
            m = dd([f"if={src}", f"of={out}", "bs=1M", "conv=fsync"], timeout)
            c1 = proc_cpu(pid)
            if os.path.getsize(out) != SIZE:
                raise RuntimeError(f"{impl}: wrote {os.path.getsize(out)} bytes, expected {SIZE}")
            os.unlink(out)
            tp.append(SIZE / m.wall / 1e6)
            if c0 is not None and c1 is not None:
                cpu.append((c1 - c0) / (SIZE / 1e9))
            B.log(f"mount: write {impl} run {i + 1}/{runs}: {tp[-1]:.0f} MB/s")
        hwm = vm_hwm_mib(pid)
        if isinstance(mnt, CcrMount):
            s = mnt.stats_json(lambda s: s.get("commits", 0) >= runs)
            params = dict(params, commits=s.get("commits"), bytes_uploaded=s.get("bytes_uploaded"))
    finally:
        mnt.unmount()
    p = dict(params, bytes=SIZE, bs="1M")
    rec("seq-write", impl, "throughput", p, tp, "MB/s", notes + "; dd conv=fsync (durable at close)")
    rec("seq-write", impl, "cpu", p, cpu, "CPU-s/GB", "mount daemon during dd, from /proc/PID/stat")
    rec("seq-write", impl, "peak_rss", p, [hwm] if hwm else [], "MiB", "mount daemon VmHWM after every run")


# ------------------------------------------------------------------------------------------------------
# Random reads (P8)
# ------------------------------------------------------------------------------------------------------

def rand_reader(argv):
    """Child: `rand-reader PATH THREADS SECONDS`; prints {"reads": N, "seconds": S, "errors": E}."""
    path, threads, seconds = argv[0], int(argv[1]), float(argv[2])
    # O_DIRECT: every pread reaches the mount (the kernel's page cache would otherwise soon hold the whole
    # file and the figure would be the page cache's); each thread reads into its own page-aligned buffer.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    blocks = os.fstat(fd).st_size // 4096
    counts, errors = [0] * threads, [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(i):
        rng = random.Random(1000 + i)
        buf = mmap.mmap(-1, 4096)
        start.wait()
        end = stop_at[0]
        n = 0
        while time.monotonic() < end:
            try:
                if os.preadv(fd, [buf], rng.randrange(blocks) * 4096) != 4096:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
            n += 1
        counts[i] = n

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    t0 = time.monotonic()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    print(json.dumps({"reads": sum(counts), "seconds": wall, "errors": sum(errors)}))


def rand_read(ccr, env, work, runs, cleanup):
    sys.path.insert(0, INTEGRATION)
    try:
        import azurite  # noqa: E402
        from faultproxy import FaultProxy  # noqa: E402
    except ImportError as e:
        skip("rand-read", "ccr-ccr1", f"cannot import the Azurite / proxy helpers: {e}")
        return
    limit_mb = int((2 * RAND_SIZE + 256 * MiB) / MiB)
    az = azurite.Azurite(extra_args=["--extentMemoryLimit", str(limit_mb)])
    try:
        az.start()
    except Exception as e:  # noqa: BLE001 (any reason Azurite cannot run is a skip)
        az.close()
        skip("rand-read", "ccr-ccr1", f"Azurite cannot run: {str(e)[:300]}")
        return
    cleanup.add(az.close)
    proxy = FaultProxy(az.port, delay_ms=DELAY_MS)
    proxy.start()
    cleanup.add(proxy.stop)
    url = f"{proxy.endpoint(az.account)}/mountbench" if hasattr(az, "account") else \
        f"{proxy.endpoint()}/mountbench"
    aenv = dict(env, AZURE_STORAGE_KEY=az.key)
    src = os.path.join(work, "src-rand")
    os.makedirs(src)
    B.gen_keystream(os.path.join(src, "data.bin"), RAND_SIZE, iv="02")
    B.run([ccr, "datastore", "add", "rnd", "--url", url, "--mode", "ccr1", "--new-key", "--region-size",
           RAND_REGION], env=aenv, capture=True)
    B.log(f"mount: publishing {RAND_SIZE / MiB:.0f} MiB to Azurite through the proxy")
    t0 = time.monotonic()
    B.run([ccr, "datastore", "upload", "rnd", src, "--quiet"], env=aenv, capture=True)
    B.log(f"mount: published in {time.monotonic() - t0:.1f} s")
    B.rm(src)
    # A cache far smaller than the file, so that the reads are cold: with the default 512M budget the
    # whole 256 MiB file sat in the cache after a second and the figure measured cache hits.
    mnt = CcrMount("rnd", ccr, aenv, work, "rnd", extra=("--memory", RAND_MEMORY))
    cleanup.add(mnt.unmount)
    iops, per_read, rss, cpu, misses, per_miss = [], [], [], [], [], []
    for i in range(runs):
        pid = mnt.mount()
        try:
            r = B.run([PY, os.path.abspath(__file__), "rand-reader", os.path.join(mnt.mp, "data.bin"),
                       str(RAND_THREADS), str(RAND_SECONDS)], env=aenv, capture=True)
            res = json.loads(r.stdout)
            s = mnt.stats_json(lambda s: s.get("bytes_read", 0) >= res["reads"] * 4096 * 0.99)
            c, hwm = proc_cpu(pid), vm_hwm_mib(pid)
        finally:
            mnt.unmount()
        if res["errors"]:
            raise RuntimeError(f"rand-read: {res['errors']} of {res['reads']} preads failed")
        iops.append(res["reads"] / res["seconds"])
        per_read.append(s.get("bytes_fetched", 0) / max(res["reads"], 1))
        misses.append(s.get("cache_misses", 0) / max(res["reads"], 1))
        per_miss.append(s.get("bytes_fetched", 0) / max(s.get("cache_misses", 0), 1))
        rss.append(hwm)
        if c is not None:
            cpu.append(c)
        B.log(f"mount: rand-read run {i + 1}/{runs}: {iops[-1]:.0f} IOPS, {per_read[-1]:.0f} B fetched per read, "
              f"{res['reads']} reads, cache misses per read {misses[-1]:.3f}, fuse_requests {s.get('fuse_requests')}, VmHWM {hwm or 0:.0f} MiB")
    p = {"bytes": RAND_SIZE, "region_size": 64 * KiB, "threads": RAND_THREADS, "seconds": RAND_SECONDS,
         "delay_ms": DELAY_MS, "endpoint": "azurite+proxy", "io": "4K", "o_direct": True}
    notes = (f"ccr mount (ccr1, --region-size {RAND_REGION}) over in-memory Azurite behind a proxy adding "
             f"{DELAY_MS} ms per request; {RAND_THREADS} threads of O_DIRECT preads of 4 KiB at random aligned offsets, "
             f"{RAND_SECONDS:.0f} s, a fresh mount per run, --memory {RAND_MEMORY} so that most reads miss the cache")
    rec("rand-read", "ccr-ccr1", "iops", p, iops, "IOPS", notes)
    rec("rand-read", "ccr-ccr1", "fetched_per_read", p, per_read, "B", "bytes_fetched (--stats-file) / preads")
    rec("rand-read", "ccr-ccr1", "miss_per_read", p, misses, "ratio",
        "cache_misses (--stats-file) / preads: the share of reads the region cache did not answer")
    rec("rand-read", "ccr-ccr1", "fetched_per_miss", p, per_miss, "B",
        "bytes_fetched / cache_misses: what one region-cache miss costs (a 64 KiB region + its framing)")
    rec("rand-read", "ccr-ccr1", "peak_rss", p, rss, "MiB", "mount daemon VmHWM before unmount")
    rec("rand-read", "ccr-ccr1", "cpu_s", p, cpu, "CPU-s", "mount daemon CPU seconds per run")
    B.log(f"mount: proxy counts {proxy.counts}")


# ------------------------------------------------------------------------------------------------------

def main():
    work = B.scratch_dir("mount")
    runs = B.RUNS
    need = 4 * SIZE + 2 * RAND_SIZE + 1 * GiB
    if B.mem_available_bytes() < need:
        raise SystemExit(f"mount: need {need / GiB:.1f} GiB free memory; set BENCH_MOUNT_SIZE smaller")
    ccr = B.tool_path("ccr")
    if not ccr:
        raise SystemExit(f"mount: no ccr binary in {B.BUILD}/tools")
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        why = "no /dev/fuse or fusermount3: FUSE mounts cannot run here"
        for sc in ("seq-read", "seq-write", "rand-read"):
            skip(sc, "ccr-ccr1", why)
        return
    make_subreaper()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "CCR_"))}
    env["CCR_CONFIG"] = os.path.join(work, "cfg", "config.json")
    env["XDG_STATE_HOME"] = os.path.join(work, "state")
    can_drop = drop_caches()
    B.log(f"mount: drop_caches {'permitted' if can_drop else 'not permitted (remounting only)'}")
    timeout = 60 + SIZE / 20e6
    t_start = time.monotonic()

    with B.Cleanup() as cleanup:
        src_dir = os.path.join(work, "src")
        os.makedirs(src_dir)
        src = os.path.join(src_dir, "data.bin")
        B.log(f"mount: generating a file of {SIZE:,} bytes")
        B.gen_keystream(src, SIZE)
        B.prefault(work, 2 * SIZE)
        common = {"cold": True, "drop_caches": can_drop}

        # ---- ccr: a datasource and a datasink on the local store ----
        B.run([ccr, "datastore", "add", "seq", "--url", os.path.join(work, "store-seq"), "--mode", "ccr1",
               "--new-key"], env=env, capture=True)
        B.run([ccr, "datastore", "upload", "seq", src_dir, "--quiet"], env=env, capture=True)
        B.run([ccr, "datastore", "add", "sink", "--url", os.path.join(work, "store-sink"), "--mode", "ccr1",
               "--new-key"], env=env, capture=True)
        ccr_ro = CcrMount("seq", ccr, env, work, "seq")
        cleanup.add(ccr_ro.unmount)
        ccr_rw = CcrMount("sink", ccr, env, work, "sink", ["--read-write"])
        cleanup.add(ccr_rw.unmount)
        ccr_notes = "`ccr mount` of a ccr1 datastore (4 MiB regions) on the local store (tmpfs), default --memory/--prefetch"

        # ---- gocryptfs ----
        gocry = None
        if shutil.which("gocryptfs"):
            cipher = os.path.join(work, "gocryptfs-cipher")
            os.makedirs(cipher)
            passfile = os.path.join(work, "gocryptfs.pass")
            with open(passfile, "w", encoding="utf-8") as f:
                f.write("ccr-bench-password\n")
            B.run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", passfile, cipher], capture=True)
            gocry = ProcMount("gocryptfs", os.path.join(work, "mnt-gocryptfs"),
                              ["gocryptfs", "-fg", "-q", "-passfile", passfile, cipher,
                               os.path.join(work, "mnt-gocryptfs")])
            cleanup.add(gocry.unmount)
            try:
                gocry.mount()
                B.run(["dd", f"if={src}", f"of={os.path.join(gocry.mp, 'data.bin')}", "bs=1M", "status=none"])
                gocry.unmount()
            except RuntimeError as e:
                gocry.unmount()
                skip("seq-read", "gocryptfs", f"gocryptfs cannot mount: {e}")
                skip("seq-write", "gocryptfs", f"gocryptfs cannot mount: {e}")
                gocry = None
        else:
            for sc in ("seq-read", "seq-write"):
                skip(sc, "gocryptfs", "gocryptfs is not installed (tools/bootstrap.sh bench)")
        go_params = dict(common, version=B.version(["gocryptfs", "--version"])) if gocry else {}
        go_notes = "gocryptfs (AES-256-GCM, 4 KiB blocks), cipher dir on tmpfs, -scryptn 10, defaults"

        # ---- rclone mount ----
        rcl = None
        if not shutil.which("rclone"):
            skip("seq-read", "rclone-crypt", "rclone is not installed (tools/bootstrap.sh bench)")
        else:
            remote = os.path.join(work, "rclone-remote")
            os.makedirs(remote)
            conf = os.path.join(work, "rclone.conf")
            open(conf, "w").close()
            obscured = B.run(["rclone", "obscure", "ccr-bench-password"], capture=True).stdout.strip()
            renv = dict(os.environ, RCLONE_CONFIG=conf, RCLONE_CONFIG_CCRBENCH_TYPE="crypt",
                        RCLONE_CONFIG_CCRBENCH_REMOTE=remote, RCLONE_CONFIG_CCRBENCH_PASSWORD=obscured)
            B.run(["rclone", "copyto", src, "ccrbench:data.bin"], env=renv, capture=True)
            rmp = os.path.join(work, "mnt-rclone")
            rcl = ProcMount("rclone-crypt", rmp, ["rclone", "mount", "ccrbench:", rmp, "--vfs-cache-mode", "off"],
                            env=renv)
            cleanup.add(rcl.unmount)
            try:
                rcl.mount()
                rcl.unmount()
            except RuntimeError as e:
                skip("seq-read", "rclone-crypt", f"`rclone mount` does not work here: {e}")
                rcl = None
        rc_params = dict(common, version=B.version(["rclone", "version"])) if rcl else {}
        rc_notes = "`rclone mount --vfs-cache-mode off` of a crypt remote (64 KiB chunks) over a tmpfs directory"

        # ---- P6 / P9 / P11: cold sequential reads ----
        t0 = time.monotonic()
        seq_read("ccr-ccr1", ccr_ro, runs, dict(common, region_size=4 * MiB), ccr_notes, can_drop, timeout)
        if gocry:
            seq_read("gocryptfs", gocry, runs, go_params, go_notes, can_drop, timeout)
        if rcl:
            try:
                seq_read("rclone-crypt", rcl, runs, rc_params, rc_notes, can_drop, timeout)
            except RuntimeError as e:
                skip("seq-read", "rclone-crypt", f"rclone mount read failed: {str(e)[:300]}")
            B.rm(os.path.join(work, "rclone-remote"))
        B.log(f"mount: sequential reads done in {time.monotonic() - t0:.0f} s")

        # ---- P7: sequential writes ----
        t0 = time.monotonic()
        seq_write("ccr-ccr1", ccr_rw, src, runs, dict(common, region_size=4 * MiB),
                  "`ccr mount --read-write` of an empty ccr1 datastore on the local store (tmpfs)", can_drop, timeout)
        if gocry:
            B.rm(os.path.join(work, "store-seq"))  # room: the read side is done
            seq_write("gocryptfs", gocry, src, runs, go_params, go_notes, can_drop, timeout)
        B.log(f"mount: sequential writes done in {time.monotonic() - t0:.0f} s")
        B.rm(src_dir)
        B.rm(os.path.join(work, "gocryptfs-cipher"))

        # ---- P8: random reads over Azurite with 5 ms added ----
        t0 = time.monotonic()
        rand_read(ccr, env, work, runs, cleanup)
        B.log(f"mount: random reads done in {time.monotonic() - t0:.0f} s")
    B.log(f"mount: done in {time.monotonic() - t_start:.0f} s, scratch removed")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rand-reader":
        rand_reader(sys.argv[2:])
    else:
        main()
