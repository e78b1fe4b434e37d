#!/usr/bin/python3
"""machine.py - describes the machine and how busy it was during a bench run (stdlib only).

  machine.py start FILE              writes the description and a /proc/stat snapshot
  machine.py end FILE CPU_SECONDS    adds an end snapshot; CPU_SECONDS is what the harness's own processes
                                     used (subtracted to estimate the CPU other processes used meanwhile:
                                     the noise on a shared machine)
"""

import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def first_line(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        out = (r.stdout or r.stderr).strip()
        return out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def cpuinfo():
    model, flags = "unknown", set()
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k == "model name" and model == "unknown":
                model = v.strip()
            elif k == "flags" and not flags:
                flags = set(v.split())
    wanted = ["aes", "pclmulqdq", "vaes", "vpclmulqdq", "avx2", "avx512f", "sha_ni"]
    return model, [f for f in wanted if f in flags]


def meminfo_kib(key):
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def os_name():
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def git(*args):
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never take the index lock
    try:
        r = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, env=env, timeout=20)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def proc_stat():
    """Jiffies of the whole machine: busy, idle and steal, from the first line of /proc/stat."""
    with open("/proc/stat", encoding="utf-8") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "steal": steal,
            "time": time.time(), "loadavg": os.getloadavg()[0]}


def describe():
    model, flags = cpuinfo()
    st = os.statvfs("/dev/shm")
    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu_model": model,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "ram_gib": round(meminfo_kib("MemTotal") / 1048576, 1),
        "mem_available_gib": round(meminfo_kib("MemAvailable") / 1048576, 1),
        "kernel": platform.release(),
        "os": os_name(),
        "tmpfs": f"/dev/shm, {st.f_blocks * st.f_frsize / 2**30:.1f} GiB",
        "openssl": first_line(["openssl", "version"]),
        "gocryptfs": first_line(["gocryptfs", "--version"]),
        "rclone": first_line(["rclone", "version"]),
        "compiler": first_line(["cc", "--version"]),
        "commit": commit or "unknown",
        "commit_dirty": bool(dirty) if dirty is not None else None,
    }


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("start", "end"):
        sys.exit(__doc__)
    path = sys.argv[2]
    if sys.argv[1] == "start":
        doc = describe()
        doc["stat_start"] = proc_stat()
    else:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        a, b = doc["stat_start"], proc_stat()
        doc["stat_end"] = b
        hz = os.sysconf("SC_CLK_TCK")
        wall = b["time"] - a["time"]
        ours = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
        busy = (b["busy"] - a["busy"]) / hz
        cap = wall * (os.cpu_count() or 1)
        doc["run_wall_s"] = round(wall, 1)
        doc["harness_cpu_s"] = round(ours, 1)
        doc["machine_busy_cpu_s"] = round(busy, 1)
        # What the machine did beyond the harness's processes, as a share of all its CPU time.
        doc["other_cpu_pct"] = round(max(0.0, busy - ours) / cap * 100, 1) if cap > 0 else None
        doc["steal_pct"] = round((b["steal"] - a["steal"]) / hz / cap * 100, 1) if cap > 0 else None
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
