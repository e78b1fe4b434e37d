"""benchlib - what every bench scenario shares (Python 3 standard library only).

A scenario is a program in bench/scenarios/ that run.sh starts with these environment variables:
  BENCH_ROOT     the repository root            BENCH_BUILD    the CMake build directory
  BENCH_RESULTS  the JSONL file to append to    BENCH_SCRATCH  a private directory on tmpfs (/dev/shm)
  BENCH_QUICK    "1" for a quick smoke run      BENCH_RUNS     runs per figure (5 full, 3 quick)
It appends one JSON line per measurement with record() and cleans up after itself with Cleanup (run.sh
also removes BENCH_SCRATCH and anything mounted under it when it exits).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.environ.get("BENCH_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("BENCH_BUILD", os.path.join(ROOT, "build"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "bench", "out", "results.jsonl"))
SCRATCH = os.environ.get("BENCH_SCRATCH", "/dev/shm")
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "3" if QUICK else "5"))


def log(msg):
    """Progress for the person running the bench (stderr; run.sh also keeps it in bench/out/logs/)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stats(values):
    values = [float(v) for v in values]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def record(suite, scenario, impl, metric, params, runs, unit, notes="", **extra):
    """Appends one measurement: the per-run values and their median, min and max."""
    rec = {"suite": suite, "scenario": scenario, "impl": impl, "metric": metric, "params": params,
           "runs": [round(float(r), 4) for r in runs], "unit": unit}
    rec.update({k: round(v, 4) if isinstance(v, float) else v for k, v in stats(runs).items()})
    rec["notes"] = notes
    rec.update(extra)
    rec["quick"] = QUICK
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=False) + "\n")
    return rec


def append_raw(rec):
    """Appends a record produced elsewhere (e.g. by a bench_*.c program), marking quick runs."""
    rec = dict(rec)
    rec.setdefault("quick", QUICK)
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


class Measured:
    """Wall time and the resources of a finished command and everything it waited for."""

    def __init__(self, rc, wall, user, sys_, maxrss_kib):
        self.rc, self.wall, self.user, self.sys, self.maxrss_kib = rc, wall, user, sys_, maxrss_kib

    @property
    def cpu(self):
        return self.user + self.sys

    def __repr__(self):
        return (f"rc={self.rc} wall={self.wall:.3f}s cpu={self.cpu:.3f}s "
                f"(user {self.user:.3f} sys {self.sys:.3f}) maxrss={self.maxrss_kib} KiB")


def wait_measured(proc, t0):
    """Reaps proc with wait4: its rusage includes the descendants it reaped; ru_maxrss is the largest."""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss)


def run_measured(cmd, check=True, env=None, stdout=subprocess.DEVNULL, stderr=None, cwd=None, timeout=None):
    """Runs cmd (a list), timing it with a monotonic clock and taking its rusage from wait4.

    With timeout (seconds), a command still running then is killed (SIGKILL, by its pid) and, with check,
    reported as timed out; its Measured has rc -9.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, cwd=cwd)
    timer = None
    if timeout:
        timer = threading.Timer(timeout, _kill_quietly, (proc,))
        timer.daemon = True
        timer.start()
    try:
        m = wait_measured(proc, t0)
    except BaseException:  # a signal (SystemExit from Cleanup) while waiting: stop the child we started
        stop(proc)
        raise
    finally:
        if timer:
            timer.cancel()
    if check and m.rc != 0:
        why = f"timed out after {timeout:.0f} s" if timeout and m.rc == -9 else f"exit {m.rc}"
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {why}")
    return m


def _kill_quietly(proc):
    try:
        proc.kill()
    except ProcessLookupError:
        pass


def stop(proc, timeout=10):
    """Terminates a child we started (by its pid), then kills it if it lingers; reaps it."""
    if proc.returncode is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


def run(cmd, check=True, capture=False, env=None, cwd=None, input=None):
    """Runs a helper command (untimed)."""
    r = subprocess.run(cmd, check=False, capture_output=capture, text=True, env=env, cwd=cwd, input=input)
    if check and r.returncode != 0:
        detail = (r.stderr or "").strip() if capture else ""
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode} {detail}")
    return r


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path:
                return True
    return False


def unmount(path):
    """Unmounts a FUSE mount, lazily as a last resort; quiet when nothing is mounted there."""
    if not mounted(path):
        return
    for cmd in (["fusermount3", "-u", path], ["fusermount3", "-u", "-z", path], ["umount", "-l", path]):
        if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode == 0 and not mounted(path):
            return


def mem_available_bytes():
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def scratch_dir(name):
    d = os.path.join(SCRATCH, name)
    os.makedirs(d, exist_ok=True)
    return d


def rm(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Cleanup:
    """Runs registered undo actions in reverse order on exit, on an exception, and on SIGINT/SIGTERM/SIGHUP.

        with Cleanup() as cleanup:
            cleanup.add(unmount, mnt)
    """

    def __init__(self):
        self.actions = []

    def add(self, fn, *args):
        self.actions.append((fn, args))

    def _signal(self, signum, frame):
        raise SystemExit(128 + signum)

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self._signal)
        return self

    def __exit__(self, *exc):
        while self.actions:
            fn, args = self.actions.pop()
            try:
                fn(*args)
            except Exception as e:  # keep undoing the rest
                log(f"cleanup: {fn.__name__}{args}: {e}")
        return False


def tool_path(name):
    """A program of the build directory (bench/bench_x or tools/ccr), or None when it is not there."""
    for sub in ("bench", "tools", ""):
        p = os.path.join(BUILD, sub, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


# ------------------------------------------------------------------------------------------------------
# Data and sizes shared by the scenarios
# ------------------------------------------------------------------------------------------------------

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def parse_size(s):
    """"4G", "256M", "512K", "1000" (bytes); a sum like "4G+1M+37" is allowed."""
    total = 0
    for part in s.strip().upper().replace("IB", "").split("+"):
        part = part.strip()
        mult = {"K": KiB, "M": MiB, "G": GiB}.get(part[-1:], 1)
        total += int(part.rstrip("KMG")) * mult
    return total


def gen_keystream(path, size, iv="00"):
    """Writes size bytes of deterministic incompressible data (AES-128-CTR keystream of a fixed key; iv is
    one hex byte repeated, so different ivs give different data)."""
    run(["bash", "-c", "set -o pipefail; openssl enc -aes-128-ctr -nosalt -K " + "00" * 16 + " -iv " + iv * 16 +
         f" -in /dev/zero 2>/dev/null | head -c {size} > '{path}'; test $(stat -c %s '{path}') -eq {size}"])


def sha256_file(path, h=None):
    import hashlib
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 * MiB)
            if not b:
                break
            h.update(b)
    return h


def tree_digest(root):
    """(files, bytes, SHA-256 over every regular file's relative path and content, in sorted order)."""
    import hashlib
    h = hashlib.sha256()
    files = nbytes = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            h.update(rel.encode() + b"\0")
            sha256_file(p, h)
            files += 1
            nbytes += os.path.getsize(p)
    return files, nbytes, h.hexdigest()


def version(cmd):
    """First line of a program's version output, or "unknown"."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def combine(a, b):
    """Two processes that ran side by side: the wall of a, the CPU of both, the sum of their peaks."""
    return Measured(a.rc or b.rc, a.wall, a.user + b.user, a.sys + b.sys, a.maxrss_kib + b.maxrss_kib)


def prefault(directory, size):
    """Writes and deletes size bytes on tmpfs once, so that no implementation pays for the first touch of guest
    memory (slow on a VM whose host backs memory lazily)."""
    warm = os.path.join(directory, "prefault.bin")
    run(["dd", "if=/dev/zero", f"of={warm}", "bs=1M", f"count={(size + MiB - 1) // MiB}", "status=none"])
    rm(warm)


def proc_cpu(pid, gone=None):
    """User + system CPU seconds of a live process (all its threads), from /proc/PID/stat; `gone` if it has
    exited or cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return gone


def probe_tree(root):
    """Writes the small tree the scenarios round-trip before measuring an implementation (a file of a few
    units, a small one, an empty one in a subdirectory). Returns (files, bytes)."""
    os.makedirs(os.path.join(root, "sub"))
    big = 3 * (1 << 20) + 123
    with open(os.path.join(root, "a.bin"), "wb") as f:
        f.write(os.urandom(big))
    with open(os.path.join(root, "sub", "b.bin"), "wb") as f:
        f.write(os.urandom(4096))
    open(os.path.join(root, "sub", "empty"), "wb").close()
    return 3, big + 4096
