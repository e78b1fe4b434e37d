#!/usr/bin/python3
"""`ccr mount` / `ccr unmount` with real FUSE mounts, over the local store (on /dev/shm) and over Azurite:
sequential and random reads equal the source in every mode, 32 parallel readers, the directory tree, data
written by the independent Python implementation, writes through a --read-write mount (sequential, small,
random-offset, mkdir, rename, unlink, truncate) downloaded back byte-exact, a failing commit making close()
fail, SIGTERM during a write committing what was written, kill -9 during a write leaving no blob, a tampered
region reading as EIO while the rest reads, the daemon's peak memory under --memory, the ready and stats
files, and unmount leaving no mount behind.

Needs /dev/fuse and fusermount3 (skipped otherwise). The test process makes itself a child subreaper, so the
mount daemons (which `ccr mount` forks into the background) are reparented to it and their exit codes can be
checked. Every mount is taken down in cleanup (fusermount3 -u -z), even when a test fails."""

import sys

sys.dont_write_bytecode = True

import ctypes
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import unittest

import ccrtest
from ccrtest import KiB, MiB, CcrTestCase, ccr, ccr_ref as R, parse_json_line, tree_listing, write_random

SHM = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
FUSE_OK = os.path.exists("/dev/fuse") and shutil.which("fusermount3") is not None
SEED = int(os.environ.get("CCR_TEST_SEED", "20240611"))


def _make_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


SUBREAPER = _make_subreaper()


def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1 : i + 4].isdigit():
            out.append(chr(int(s[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mount_type(path):
    """The file system type mounted at path ('fuse.ccr', ...) or None."""
    path = os.path.abspath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split(" ")
            if len(fields) >= 5 and _unescape(fields[4]) == path:
                found = right.split(" ")[0]
    return found


def is_mounted(path):
    return mount_type(path) is not None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_exit(pid, timeout):
    """Waits for process pid to end; returns its exit code when it was our (adopted) child, else None.
    Raises AssertionError on timeout."""
    deadline = time.time() + timeout
    while True:
        try:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                return os.waitstatus_to_exitcode(st)
        except ChildProcessError:
            if not alive(pid):
                return None
        if time.time() > deadline:
            raise AssertionError("process %d still running after %.0f s" % (pid, timeout))
        time.sleep(0.02)


def sanitized(pid):
    """Is the process built with AddressSanitizer (its shadow memory and quarantine break memory bounds)?"""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def vm_hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KiB
    return 0


class Mount:
    def __init__(self, mp, pid, ready, stats, log):
        self.mp, self.pid, self.ready, self.stats, self.log = mp, pid, ready, stats, log

    def p(self, *parts):
        return os.path.join(self.mp, *parts)

    def stats_json(self):
        with open(self.stats) as f:
            return json.load(f)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


@unittest.skipUnless(FUSE_OK, "needs /dev/fuse and fusermount3")
class MountCase(CcrTestCase):
    tmp_parent = SHM
    counter = 0

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("AZURE_") or k.startswith("CCR_AZ") or k in ("CCR_STORE_FAULTS", "CCR_MEMORY"):
                del self.env[k]
        self.env["CCR_CONFIG"] = self.path("cfg", "config.json")
        self.env["XDG_STATE_HOME"] = self.path("state")

    def run_ccr(self, *args, env=None, timeout=300):
        return ccr(*args, env=env or self.env, timeout=timeout)

    def add(self, name, mode="ccr1", url=None, extra=(), key=None):
        url = url or self.path("store-" + name)
        args = ["datastore", "add", name, "--url", url, "--mode", mode]
        if mode != "none":
            args += ["--key", key] if key else ["--new-key"]
        self.assertOk(self.run_ccr(*args, *extra))
        return url

    def upload(self, name, src):
        self.assertOk(self.run_ccr("datastore", "upload", name, src, "--quiet"))

    def mount(self, name, *extra, env=None, mp=None):
        MountCase.counter += 1
        n = MountCase.counter
        mp = mp or self.path("mnt-%s-%d" % (name, n))
        os.makedirs(mp, exist_ok=True)
        ready = self.path("ready-%d.json" % n)
        stats = self.path("stats-%d.json" % n)
        log = self.path("mount-%d.log" % n)
        holder = {"pid": None}
        self.addCleanup(self._teardown_mount, mp, holder, log)
        r = self.run_ccr("mount", name, mp, "--ready-file", ready, "--stats-file", stats, "--log-file", log,
                         *extra, env=env, timeout=120)
        self.assertOk(r)
        self.assertTrue(os.path.exists(ready), "the ready file exists when `ccr mount` returns")
        with open(ready) as f:
            info = json.load(f)
        holder["pid"] = info["pid"]
        self.assertEqual(info["mountpoint"], os.path.realpath(mp))
        self.assertEqual(mount_type(mp), "fuse.ccr")
        self.assertTrue(alive(info["pid"]))
        return Mount(mp, info["pid"], ready, stats, log)

    def _teardown_mount(self, mp, holder, log):
        if is_mounted(mp):
            subprocess.run(["fusermount3", "-u", "-z", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = holder["pid"]
        if pid and alive(pid):
            try:
                wait_exit(pid, 10)
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
                wait_exit(pid, 10)
        elif pid:
            try:
                wait_exit(pid, 0.1)
            except AssertionError:
                pass

    def unmount(self, m, expect_code=0):
        r = self.run_ccr("unmount", m.mp)
        self.assertOk(r)
        self.assertFalse(is_mounted(m.mp), "unmount leaves no mount behind")
        code = wait_exit(m.pid, 60)
        if code is not None:
            self.assertEqual(code, expect_code, "daemon exit code; its log:\n" + m.log_text())
        return code

    def wait_stats(self, m, pred, timeout=5):
        deadline = time.time() + timeout
        while True:
            s = m.stats_json()
            if pred(s) or time.time() > deadline:
                return s
            time.sleep(0.1)


def make_src(root, rng):
    """A ~20 MiB file plus small files around region boundaries, nested and non-ASCII names."""
    os.makedirs(root)
    write_random(os.path.join(root, "big.bin"), 20 * MiB + 12345, seed=rng.random())
    small = os.path.join(root, "small")
    os.makedirs(small)
    sizes = [0, 1, 15, 16, 17, 4095, 4096, 4097, 65539, MiB - 1, MiB, MiB + 1, 3 * MiB + 7]
    sizes += [rng.randrange(1, 200000) for _ in range(8)]
    for i, n in enumerate(sizes):
        with open(os.path.join(small, "s%02d.bin" % i), "wb") as f:
            f.write(rng.randbytes(n))
    deep = os.path.join(root, "a", "b", "c")
    os.makedirs(deep)
    with open(os.path.join(deep, "deep.txt"), "wb") as f:
        f.write(b"deep\n")
    u = os.path.join(root, "ünï", "名前 dir")
    os.makedirs(u)
    with open(os.path.join(u, "key file.csv"), "wb") as f:
        f.write(b"a,b\n1,2\n")


def walk_sizes(root):
    """({relative dir}, {relative file: size}) under root, through os.walk."""
    dirs, files = set(), {}
    for dp, dns, fns in os.walk(root):
        for d in dns:
            dirs.add(os.path.relpath(os.path.join(dp, d), root))
        for n in fns:
            p = os.path.join(dp, n)
            files[os.path.relpath(p, root)] = os.stat(p).st_size
    return dirs, files


def read_all(path, bs=MiB):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(bs)
            if not b:
                return h.hexdigest()
            h.update(b)


class TestReadOnly(MountCase):
    def test_every_mode_sequential_tree_ready_stats_unmount(self):
        rng = random.Random(SEED)
        src = self.path("src")
        make_src(src, rng)
        want_dirs, want_files = walk_sizes(src)
        want = tree_listing(src)
        for mode in ("ccr1", "cleanroom-cse", "none"):
            with self.subTest(mode=mode):
                name = "ro-" + mode
                self.add(name, mode)
                self.upload(name, src)
                m = self.mount(name)
                got_dirs, got_files = walk_sizes(m.mp)
                self.assertEqual(got_dirs, want_dirs)
                self.assertEqual(got_files, want_files, "names and plaintext sizes")
                total = sum(want_files.values())
                for rel, (kind, digest) in want.items():
                    if kind == "file":
                        self.assertEqual(read_all(m.p(rel)), digest, rel)
                s = self.wait_stats(m, lambda s: s["bytes_read"] >= total)
                self.assertGreaterEqual(s["bytes_read"], total)
                self.assertGreaterEqual(s["bytes_fetched"], s["bytes_read"] * 0.99)
                if mode != "cleanroom-cse":  # cse pads every small file to a whole 16 MiB chunk
                    self.assertLessEqual(s["bytes_fetched"], s["bytes_read"] * 1.2 + MiB)
                self.assertAlmostEqual(s["over_read"], s["bytes_fetched"] / s["bytes_read"], places=3)
                self.assertEqual(s["auth_failures"], 0)
                self.assertEqual(s["pid"], m.pid)
                self.assertTrue(s["mounted"])
                self.assertFalse(s["writable"])
                # the kernel keeps the pages of an unchanged file across opens (keep_cache): a second
                # pass is served without asking the daemon (the kernel may still drop a page or two of its
                # own accord, under memory pressure or at the file's partial last page)
                self.assertEqual(read_all(m.p("big.bin")), want["big.bin"][1])
                time.sleep(1.2)
                again = m.stats_json()["bytes_read"] - s["bytes_read"]
                self.assertLessEqual(again, 16 * KiB, "served from the page cache: %d bytes asked again" % again)
                # read-only: the kernel refuses changes
                for fn in (lambda: open(m.p("new.bin"), "wb"), lambda: open(m.p("big.bin"), "r+b"),
                           lambda: os.mkdir(m.p("newdir")), lambda: os.unlink(m.p("a", "b", "c", "deep.txt"))):
                    with self.assertRaises(OSError) as cm:
                        fn()
                    self.assertEqual(cm.exception.errno, errno.EROFS)
                with self.assertRaises(FileNotFoundError):
                    os.stat(m.p("no-such-file"))
                if mode == "ccr1":
                    # busy: a plain unmount refuses while a file is open, and says why
                    f = open(m.p("big.bin"), "rb")
                    r = self.run_ccr("unmount", m.mp)
                    self.assertEqual(r.rc, ccrtest.EXIT_IO, r)
                    self.assertIn("busy", r.err)
                    self.assertTrue(is_mounted(m.mp))
                    f.close()
                self.unmount(m)
                s = m.stats_json()
                self.assertFalse(s["mounted"], "the final statistics are written at exit")
                self.assertIn("unmounted", m.log_text())
                self.assertIn("over-read", m.log_text())

    def test_random_reads_and_parallel_readers(self):
        rng = random.Random(SEED + 1)
        src = self.path("src")
        os.makedirs(src)
        size = 20 * MiB + 777
        write_random(os.path.join(src, "r.bin"), size, seed=SEED)
        data = ccrtest.read(os.path.join(src, "r.bin"))
        self.add("rnd", "ccr1", extra=("--region-size", "64K"))
        self.upload("rnd", src)
        m = self.mount("rnd")
        path = m.p("r.bin")
        fd = os.open(path, os.O_RDONLY)
        try:
            lens = [1, 100, 4096, 65536, 65537, MiB + 3]
            for i in range(2000):
                if i % 100 == 0:  # drop the kernel's pages now and then: the reads must reach the mount
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                off = rng.randrange(0, size + 100)
                ln = rng.choice(lens) if rng.random() < 0.7 else rng.randrange(1, 3 * MiB)
                got = os.pread(fd, ln, off)
                self.assertEqual(got, data[off : off + ln], "pread(%d, %d)" % (ln, off))
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

        errors = []

        def reader(k):
            try:
                r = random.Random(SEED * 100 + k)
                with open(path, "rb", buffering=0) as f:
                    for _ in range(40):
                        off = r.randrange(0, size)
                        ln = r.randrange(1, 512 * KiB)
                        f.seek(off)
                        if f.read(ln) != data[off : off + ln]:
                            errors.append("thread %d: mismatch at %d+%d" % (k, off, ln))
                            return
                    # and one sequential slice of a few MiB
                    start = (k * 613 * KiB) % size
                    f.seek(start)
                    got = f.read(4 * MiB)
                    if got != data[start : start + 4 * MiB]:
                        errors.append("thread %d: sequential slice at %d differs" % (k, start))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append("thread %d: %r" % (k, e))

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertFalse(any(t.is_alive() for t in threads))
        s = self.wait_stats(m, lambda s: s["fuse_requests"] > 2000)
        self.assertGreater(s["cache_hits"] + s["cache_misses"], 0)
        self.unmount(m)

    def test_blobs_written_by_the_python_reference(self):
        rng = random.Random(SEED + 2)
        plain_big = rng.randbytes(20 * MiB + 5)
        plain_small = rng.randbytes(1000)
        cases = (("cleanroom-cse", "cse"), ("ccr1", "ccr1"))
        for mode, tag in cases:
            with self.subTest(mode=mode):
                name = "py-" + tag
                store = self.add(name, mode, key=self.key)
                os.makedirs(os.path.join(store, "ref"), exist_ok=True)
                for fname, plain in (("big.bin", plain_big), ("small.bin", plain_small), ("empty.bin", b"")):
                    pin = self.path("plain-" + fname)
                    with open(pin, "wb") as f:
                        f.write(plain)
                    with open(pin, "rb") as fin, open(os.path.join(store, "ref", fname), "wb") as fout:
                        if mode == "cleanroom-cse":
                            R.cse_encrypt_stream(self.dek, fin, fout, R.CSE_DEFAULT_CHUNK)
                        else:
                            R.ccr1_encrypt_stream(self.dek, fin, fout, 20)
                m = self.mount(name)
                self.assertEqual(sorted(os.listdir(m.p("ref"))), ["big.bin", "empty.bin", "small.bin"])
                self.assertEqual(os.stat(m.p("ref", "big.bin")).st_size, len(plain_big))
                self.assertEqual(ccrtest.read(m.p("ref", "big.bin")), plain_big)
                self.assertEqual(ccrtest.read(m.p("ref", "small.bin")), plain_small)
                self.assertEqual(ccrtest.read(m.p("ref", "empty.bin")), b"")
                self.unmount(m)

    def test_tampered_region_reads_eio_rest_reads(self):
        src = self.path("src")
        os.makedirs(src)
        size = 8 * MiB
        write_random(os.path.join(src, "t.bin"), size, seed=SEED + 3)
        data = ccrtest.read(os.path.join(src, "t.bin"))
        store = self.add("tamper", "ccr1")  # 1 MiB regions
        self.upload("tamper", src)
        blob = os.path.join(store, "t.bin")
        pos = 64 + 4 * (MiB + 16) + 1000  # inside region 4
        with open(blob, "r+b") as f:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0x40]))
        m = self.mount("tamper")
        fd = os.open(m.p("t.bin"), os.O_RDONLY)
        try:
            with self.assertRaises(OSError) as cm:
                os.pread(fd, 4096, 4 * MiB + 8192)
            self.assertEqual(cm.exception.errno, errno.EIO)
            for region in (0, 1, 3, 5, 7):
                off = region * MiB
                self.assertEqual(os.pread(fd, MiB, off), data[off : off + MiB], "region %d" % region)
            with self.assertRaises(OSError) as cm:
                os.pread(fd, MiB, 4 * MiB)
            self.assertEqual(cm.exception.errno, errno.EIO)
        finally:
            os.close(fd)
        with self.assertRaises(OSError):  # a whole-file read fails too
            ccrtest.read(m.p("t.bin"))
        s = self.wait_stats(m, lambda s: s["auth_failures"] > 0)
        self.assertGreater(s["auth_failures"], 0)
        self.unmount(m)
        self.assertIn("t.bin", m.log_text(), "the failure is logged naming the blob")

    def test_memory_stays_within_budget(self):
        src = self.path("src")
        os.makedirs(src)
        write_random(os.path.join(src, "huge.bin"), 96 * MiB + 1, seed=SEED + 4)
        want = ccrtest.sha256_file(os.path.join(src, "huge.bin"))
        self.add("mem", "ccr1")
        self.upload("mem", src)
        shutil.rmtree(src)
        m = self.mount("mem", "--memory", "16M")
        self.assertEqual(read_all(m.p("huge.bin")), want)
        hwm = vm_hwm(m.pid)
        s = self.wait_stats(m, lambda s: s["bytes_read"] >= 96 * MiB)
        if not sanitized(m.pid):
            self.assertLessEqual(hwm, 16 * MiB + 64 * MiB, "peak RSS %.1f MiB" % (hwm / MiB))
        self.assertLessEqual(s["over_read"], 1.05, s)
        self.assertLessEqual(s["memory_peak"], 16 * MiB, s)
        self.unmount(m)


class TestReadWrite(MountCase):
    def test_writes_then_download(self):
        rng = random.Random(SEED + 10)
        self.add("rw", "ccr1")
        m = self.mount("rw", "--read-write")
        expect = {}

        def put(rel, content):
            expect[rel] = content

        # a sequential big file, written in 1 MiB pieces
        big = rng.randbytes(24 * MiB + 99)
        fd = os.open(m.p("big.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, len(big), MiB):
            self.assertEqual(os.write(fd, big[off : off + MiB]), len(big[off : off + MiB]))
        self.assertEqual(os.fstat(fd).st_size, len(big), "the size written so far")
        os.close(fd)
        put("big.bin", big)
        # small files in a new directory
        os.mkdir(m.p("sub"))
        for i in range(30):
            c = rng.randbytes(rng.choice([0, 1, 100, 4096, 70000, rng.randrange(1, 300000)]))
            with open(m.p("sub", "f%02d.dat" % i), "wb") as f:
                f.write(c)
            put("sub/f%02d.dat" % i, c)
        os.makedirs(m.p("sub", "deeper", "still"))
        with open(m.p("sub", "deeper", "still", "leaf.txt"), "wb") as f:
            f.write(b"leaf\n")
        put("sub/deeper/still/leaf.txt", b"leaf\n")
        # a file written at random offsets (blocks shuffled, then some overwrites)
        size = 5 * MiB + 333
        want = bytearray(rng.randbytes(size))
        blocks = list(range(0, size, 64 * KiB))
        rng.shuffle(blocks)
        fd = os.open(m.p("random.bin"), os.O_RDWR | os.O_CREAT, 0o644)
        for off in blocks:
            os.pwrite(fd, bytes(want[off : off + 64 * KiB]), off)
        for _ in range(50):
            off = rng.randrange(0, size)
            c = rng.randbytes(rng.randrange(1, 20000))
            c = c[: size - off]
            os.pwrite(fd, c, off)
            want[off : off + len(c)] = c
        self.assertEqual(os.pread(fd, 1000, 4 * MiB), bytes(want[4 * MiB : 4 * MiB + 1000]), "read own writes")
        os.close(fd)
        put("random.bin", bytes(want))
        # rename (across directories), unlink, truncate (shrink by path, extend through the descriptor)
        with open(m.p("r1.bin"), "wb") as f:
            f.write(b"renamed content")
        os.rename(m.p("r1.bin"), m.p("sub", "r2.bin"))
        self.assertFalse(os.path.exists(m.p("r1.bin")))
        put("sub/r2.bin", b"renamed content")
        with open(m.p("gone.bin"), "wb") as f:
            f.write(b"x" * 5000)
        os.unlink(m.p("gone.bin"))
        self.assertFalse(os.path.exists(m.p("gone.bin")))
        t1 = rng.randbytes(3 * MiB)
        with open(m.p("t1.bin"), "wb") as f:
            f.write(t1)
        os.truncate(m.p("t1.bin"), MiB + 5)
        self.assertEqual(os.stat(m.p("t1.bin")).st_size, MiB + 5)
        put("t1.bin", t1[: MiB + 5])
        fd = os.open(m.p("t2.bin"), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"y" * 100000)
        os.ftruncate(fd, 2 * MiB)
        os.close(fd)
        put("t2.bin", b"y" * 100000 + b"\0" * (2 * MiB - 100000))
        # overwrite an existing file in place (copy-on-write of its committed content)
        with open(m.p("sub", "f00.dat"), "wb") as f:
            f.write(b"replaced")
        put("sub/f00.dat", b"replaced")
        with open(m.p("sub", "f01.dat"), "r+b") as f:
            old = expect["sub/f01.dat"]
            if len(old) >= 2:
                f.seek(1)
                f.write(b"Z")
                expect["sub/f01.dat"] = old[:1] + b"Z" + old[2:]
        # directories: empty ones come and go; renaming one is refused with EXDEV (mv then copies)
        os.mkdir(m.p("empty"))
        os.rmdir(m.p("empty"))
        self.assertFalse(os.path.exists(m.p("empty")))
        with self.assertRaises(OSError) as cm:
            os.rename(m.p("sub"), m.p("sub2"))
        self.assertEqual(cm.exception.errno, errno.EXDEV)
        with self.assertRaises(OSError) as cm:
            os.rmdir(m.p("sub"))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
        with self.assertRaises(OSError) as cm:
            os.symlink("big.bin", m.p("link"))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        os.chmod(m.p("big.bin"), 0o600)  # accepted, changes nothing
        # everything reads back through the mount
        for rel, content in expect.items():
            self.assertEqual(ccrtest.read(m.p(rel)), content, rel)
        s = self.wait_stats(m, lambda s: s["commits"] >= len(expect))
        self.assertGreaterEqual(s["commits"], len(expect))
        self.assertEqual(s["commit_failures"], 0)
        self.assertGreaterEqual(s["bytes_written"], sum(len(c) for c in expect.values()))
        self.unmount(m)

        out = self.path("out")
        self.assertOk(self.run_ccr("datastore", "download", "rw", out, "--quiet"))
        got = {k: v for k, v in tree_listing(out).items() if v[0] == "file"}
        self.assertEqual(got, {k: ("file", hashlib.sha256(v).hexdigest()) for k, v in expect.items()})

    def test_failed_commit_fails_close(self):
        self.add("cf", "ccr1")
        env = dict(self.env)
        env["CCR_STORE_FAULTS"] = "commit:fail=EIO,put_blob:fail=EIO"
        m = self.mount("cf", "--read-write", env=env)
        for fname, size in (("small.bin", 1000), ("multi.bin", 9 * MiB + 1)):
            with self.subTest(file=fname):
                fd = os.open(m.p(fname), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                payload = os.urandom(size)
                for off in range(0, size, MiB):
                    os.write(fd, payload[off : off + MiB])
                with self.assertRaises(OSError) as cm:
                    os.fsync(fd)
                self.assertEqual(cm.exception.errno, errno.EIO, "fsync reports the failed commit")
                with self.assertRaises(OSError) as cm:
                    os.close(fd)
                self.assertEqual(cm.exception.errno, errno.EIO, "close() reports the failed commit")
        r = self.run_ccr("datastore", "ls", "cf", "--json")
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["blobs"], [], "nothing was stored")
        s = self.wait_stats(m, lambda s: s["commit_failures"] >= 2)
        self.assertGreaterEqual(s["commit_failures"], 2)
        self.assertIn("injected fault", m.log_text())
        self.unmount(m)

    def test_sigterm_during_write_commits_what_was_written(self):
        self.add("term", "ccr1")
        m = self.mount("term", "--read-write")
        payload = os.urandom(10 * MiB + 17)
        fd = os.open(m.p("open.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for off in range(0, len(payload), MiB):
                os.write(fd, payload[off : off + MiB])
            os.kill(m.pid, signal.SIGTERM)  # the file is still open
            code = wait_exit(m.pid, 60)
            if code is not None:
                self.assertEqual(code, 0, m.log_text())
            self.assertFalse(is_mounted(m.mp))
            with self.assertRaises(OSError):
                os.write(fd, b"more")
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
        self.assertIn("committed", m.log_text())
        out = self.path("out")
        self.assertOk(self.run_ccr("datastore", "download", "term", out, "--quiet"))
        self.assertEqual(ccrtest.read(os.path.join(out, "open.bin")), payload, "complete, as written")

    def test_kill9_during_big_write_leaves_no_blob(self):
        store = self.add("k9", "ccr1")
        m = self.mount("k9", "--read-write")
        written = [0]
        failure = []

        def writer():
            block = os.urandom(MiB)
            try:
                fd = os.open(m.p("big.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            except OSError as e:
                failure.append(e)
                return
            try:
                for _ in range(256):
                    os.write(fd, block)
                    written[0] += MiB
            except OSError as e:
                failure.append(e)
            finally:
                try:
                    os.close(fd)
                except OSError as e:
                    failure.append(e)

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.time() + 60
        while written[0] < 24 * MiB and t.is_alive() and time.time() < deadline:
            time.sleep(0.01)
        self.assertTrue(t.is_alive(), "the writer should still be writing (%d bytes)" % written[0])
        os.kill(m.pid, signal.SIGKILL)
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertTrue(failure, "writes after the daemon died fail")
        wait_exit(m.pid, 10)
        r = self.run_ccr("datastore", "ls", "k9", "--json")
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["blobs"], [], "no partial blob")
        self.assertFalse(os.path.exists(os.path.join(store, "big.bin")))
        # the dead mount: `ccr mount` refuses it with a hint, `ccr unmount` removes it
        r = self.run_ccr("mount", "k9", m.mp)
        self.assertEqual(r.rc, ccrtest.EXIT_IO, r)
        self.assertIn("unmount", r.err)
        self.assertOk(self.run_ccr("unmount", m.mp))
        self.assertFalse(is_mounted(m.mp))


class TestAzurite(MountCase):
    az = None

    @classmethod
    def setUpClass(cls):
        from azurite import Azurite

        cls.az = Azurite()
        cls.az.start()

    @classmethod
    def tearDownClass(cls):
        if cls.az:
            cls.az.close()

    def setUp(self):
        super().setUp()
        self.env["AZURE_STORAGE_KEY"] = self.az.key

    def test_read_and_write_over_azurite(self):
        rng = random.Random(SEED + 20)
        src = self.path("src")
        make_src(src, rng)
        want = tree_listing(src)
        self.add("azr", "ccr1", url=self.az.url("mount-ro"))
        self.upload("azr", src)
        m = self.mount("azr")
        self.assertEqual(walk_sizes(m.mp), walk_sizes(src))
        for rel, (kind, digest) in want.items():
            if kind == "file":
                self.assertEqual(read_all(m.p(rel)), digest, rel)
        self.unmount(m)

        self.add("azw", "ccr1", url=self.az.url("mount-rw"))
        w = self.mount("azw", "--read-write")
        payload = rng.randbytes(9 * MiB + 3)
        with open(w.p("out.bin"), "wb") as f:
            f.write(payload)
        os.mkdir(w.p("d"))
        with open(w.p("d", "small.txt"), "wb") as f:
            f.write(b"hello azurite\n")
        self.unmount(w)
        out = self.path("out")
        self.assertOk(self.run_ccr("datastore", "download", "azw", out, "--quiet"))
        self.assertEqual(ccrtest.read(os.path.join(out, "out.bin")), payload)
        self.assertEqual(ccrtest.read(os.path.join(out, "d", "small.txt")), b"hello azurite\n")


class TestCli(MountCase):
    def test_usage_and_errors(self):
        r = self.run_ccr("mount", "--help")
        self.assertOk(r)
        self.assertIn("--read-write", r.out)
        self.assertIn("--stats-file", r.out)
        self.assertUsageHint(self.run_ccr("mount", "x"))
        self.assertUsageHint(self.run_ccr("mount", "x", self.tmp, "--list-ttl", "soon"))
        self.assertUsageHint(self.run_ccr("unmount"))
        r = self.run_ccr("mount", "nope", self.tmp)
        self.assertEqual(r.rc, ccrtest.EXIT_IO, r)
        self.assertIn("unknown datastore", r.err)
        self.add("cli", "ccr1")
        r = self.run_ccr("mount", "cli", self.path("missing-dir"))
        self.assertEqual(r.rc, ccrtest.EXIT_IO, r)
        self.assertIn("missing-dir", r.err)
        r = self.run_ccr("unmount", self.tmp)
        self.assertEqual(r.rc, ccrtest.EXIT_IO, r)
        self.assertIn("not a mount point", r.err)
        self.assertIn("mount", self.run_ccr("--help").out)


if __name__ == "__main__":
    ccrtest.main("test_mount")
