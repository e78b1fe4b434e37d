#!/usr/bin/python3
"""`ccr datastore upload/download/verify` through the binary, with a temporary --config and a local store on
/dev/shm (when present): round trips of a 10,000-file tree in every mode, kill -9 during upload and download
then resume, a source modified during upload, bad input (missing source, symlink, fifo, full disk, unknown
datastore, wrong key, tampered blob) and peak memory of a 3 GiB publish under --memory 64M."""

import sys

sys.dont_write_bytecode = True

import os
import shutil
import signal
import subprocess
import time

import ccrtest
from ccrtest import (EXIT_AUTH, EXIT_IO, MiB, CcrTestCase, ccr, files_equal, parse_json_line, tree_listing,
                     write_key, write_random)

SHM = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
CCR1_R = MiB


def ccr1_size_ok(size, r=CCR1_R):
    if size < 64 + 16:
        return False
    n = -(-(size - 64) // (r + 16))
    return size - 64 - 16 * n >= 0 and (size - 64 - 16 * n) > (n - 1) * r - (1 if n == 1 else 0)


class TransferCase(CcrTestCase):
    tmp_parent = SHM

    def setUp(self):
        super().setUp()
        self.env = dict(os.environ)
        self.env["CCR_CONFIG"] = self.path("cfg", "config.json")
        self.env["XDG_STATE_HOME"] = self.path("state")
        self.env.pop("CCR_STORE_FAULTS", None)
        self.env.pop("CCR_MEMORY", None)

    def run_ccr(self, *args, env=None, timeout=300):
        return ccr(*args, env=env or self.env, timeout=timeout)

    def add(self, name, mode="ccr1", extra=()):
        args = ["datastore", "add", name, "--url", self.path("store-" + name), "--mode", mode]
        if mode != "none":
            args.append("--new-key")
        r = self.run_ccr(*args, *extra)
        self.assertOk(r)
        return self.path("store-" + name)

    def popen(self, *args, env=None):
        return subprocess.Popen([ccrtest.CCR] + [str(a) for a in args], env=env or self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def make_tree(root, small=10000):
    os.makedirs(root)
    for i in range(small):
        d = os.path.join(root, "s%02d" % (i % 50))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d.dat" % i), "wb") as f:
            f.write(os.urandom(i % 3000))
    os.makedirs(os.path.join(root, "empty"))
    for n in ("a", "b", "c"):
        open(os.path.join(root, "empty", n), "wb").close()
    deep = os.path.join(root, *["d%d" % i for i in range(30)])
    os.makedirs(deep)
    open(os.path.join(deep, "leaf-empty"), "wb").close()
    with open(os.path.join(deep, "leaf"), "wb") as f:
        f.write(b"deep")
    u = os.path.join(root, "ünïcødé", "日本語")
    os.makedirs(u)
    with open(os.path.join(u, "🔑 key file.csv"), "wb") as f:
        f.write(b"a,b\n1,2\n")
    write_random(os.path.join(root, "big.bin"), 9 * MiB + 123)
    return small + 3 + 2 + 1 + 1


class TestRoundTrip(TransferCase):
    def test_tree_every_mode(self):
        src = self.path("src")
        n = make_tree(src)
        want = tree_listing(src)
        for mode in ("ccr1", "cleanroom-cse", "none"):
            with self.subTest(mode=mode):
                name = "ds-" + mode
                extra = ("--region-size", "1M") if mode == "cleanroom-cse" else ()
                self.add(name, mode, extra)
                r = self.run_ccr("datastore", "upload", name, src, "--json")
                self.assertOk(r)
                j = parse_json_line(r.out)
                self.assertEqual((j["files"], j["errors"], j["resumed"]), (n, 0, 0), r)
                self.assertEqual(j["command"], "datastore upload")
                r = self.run_ccr("datastore", "upload", name, src, "--json")
                self.assertOk(r)
                j = parse_json_line(r.out)
                self.assertEqual((j["files"], j["resumed"]), (0, n), "a re-run resumes everything")
                r = self.run_ccr("datastore", "verify", name, "--json")
                self.assertOk(r)
                self.assertEqual(parse_json_line(r.out)["files"], n)
                out = self.path("out-" + mode)
                r = self.run_ccr("datastore", "download", name, out, "--json")
                self.assertOk(r)
                self.assertEqual(parse_json_line(r.out)["files"], n)
                got = tree_listing(out)
                self.assertEqual({k: v for k, v in got.items() if v[0] == "file"},
                                 {k: v for k, v in want.items() if v[0] == "file"})
                self.assertNoTemp(out)
                shutil.rmtree(out)
                shutil.rmtree(self.path("store-" + name))

    def test_one_large_file_uses_every_worker(self):
        # A single file is shared by the workers unit by unit: threads are capped by transfer units, not by
        # files (a cap by files once ran a whole 4 GiB publish on one worker). A one-unit file needs one.
        src = self.path("src")
        os.makedirs(src)
        write_random(os.path.join(src, "one.bin"), 32 * MiB)  # 8 transfer units of 4 MiB
        self.add("par")
        r = self.run_ccr("datastore", "upload", "par", src, "--threads", "2", "--no-journal", "--json")
        self.assertOk(r)
        j = parse_json_line(r.out)
        self.assertEqual((j["files"], j["threads"]), (1, 2), j)
        small = self.path("small")
        os.makedirs(small)
        write_random(os.path.join(small, "tiny.bin"), 1000)
        r = self.run_ccr("datastore", "upload", "par", small, "--prefix", "s", "--threads", "2", "--json")
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["threads"], 1)
        r = self.run_ccr("datastore", "verify", "par", "--threads", "2", "--json")
        self.assertOk(r)
        j = parse_json_line(r.out)
        self.assertEqual((j["files"], j["threads"]), (2, 2), j)

class TestKill(TransferCase):
    def make_medium(self, root, files=24, size=4 * MiB + 1000):
        os.makedirs(root)
        for i in range(files):
            write_random(os.path.join(root, "f%02d.bin" % i), size + i)
        for i in range(200):
            with open(os.path.join(root, "small%03d" % i), "wb") as f:
                f.write(os.urandom(100 + i))

    def check_store_consistent(self, store, name):
        for dirpath, dirnames, filenames in os.walk(store):
            if ".ccr" in dirnames:
                dirnames.remove(".ccr")
            for n in filenames:
                size = os.path.getsize(os.path.join(dirpath, n))
                self.assertTrue(ccr1_size_ok(size), "blob %s has a size (%d) no ccr1 blob has" % (n, size))
        r = self.run_ccr("datastore", "verify", name, "--json")
        self.assertOk(r, "every visible blob verifies")

    def test_kill_during_upload(self):
        src = self.path("src")
        self.make_medium(src)
        store = self.add("k")
        slow = dict(self.env, CCR_STORE_FAULTS="put_block:delay=15,put_blob:delay=3")
        for delay in (0.2, 0.5, 1.0):
            p = self.popen("datastore", "upload", "k", src, "--threads", "2", "--quiet", env=slow)
            time.sleep(delay)
            p.kill()
            p.communicate()
            self.check_store_consistent(store, "k")
        r = self.run_ccr("datastore", "upload", "k", src, "--json")
        self.assertOk(r)
        j = parse_json_line(r.out)
        self.assertEqual(j["files"] + j["resumed"], 224)
        self.assertGreater(j["resumed"], 0, "some files were complete before the kills")
        out = self.path("out")
        self.assertOk(self.run_ccr("datastore", "download", "k", out, "--quiet"))
        self.assertEqual(tree_listing(out), tree_listing(src))

    def test_kill_during_download(self):
        src = self.path("src")
        self.make_medium(src)
        self.add("k")
        self.assertOk(self.run_ccr("datastore", "upload", "k", src, "--quiet"))
        out = self.path("out")
        slow = dict(self.env, CCR_STORE_FAULTS="get:delay=10")
        for delay in (0.3, 0.8):
            p = self.popen("datastore", "download", "k", out, "--threads", "2", "--quiet", env=slow)
            time.sleep(delay)
            p.kill()
            p.communicate()
            if os.path.isdir(out):
                for n in os.listdir(out):
                    if ".ccr-tmp-" in n:
                        continue
                    self.assertTrue(files_equal(os.path.join(out, n), os.path.join(src, n)),
                                    "%s is complete or absent, never partial" % n)
        r = self.run_ccr("datastore", "download", "k", out, "--json")
        self.assertOk(r)
        j = parse_json_line(r.out)
        self.assertEqual(j["files"] + j["resumed"], 224)
        self.assertNoTemp(out)
        self.assertEqual(tree_listing(out), tree_listing(src))


class TestChanged(TransferCase):
    def test_source_modified_during_upload(self):
        src = self.path("src")
        os.makedirs(src)
        big = write_random(os.path.join(src, "growing.bin"), 24 * MiB)
        with open(os.path.join(src, "ok.txt"), "wb") as f:
            f.write(b"fine")
        store = self.add("c")
        slow = dict(self.env, CCR_STORE_FAULTS="put_block:delay=200")
        p = self.popen("datastore", "upload", "c", src, "--threads", "2", "--json", env=slow)
        time.sleep(0.4)
        with open(big, "r+b") as f:
            f.seek(5 * MiB)
            f.write(b"MODIFIED")
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, EXIT_IO, err)
        self.assertIn("growing.bin", err.decode())
        self.assertIn("modified while being published", err.decode())
        j = parse_json_line(out.decode())
        self.assertEqual((j["files"], j["errors"]), (1, 1))
        self.assertFalse(os.path.exists(os.path.join(store, "growing.bin")))
        self.assertTrue(os.path.exists(os.path.join(store, "ok.txt")))


class TestBadInput(TransferCase):
    def test_missing_source_and_unknown_datastore(self):
        self.add("b")
        r = self.run_ccr("datastore", "upload", "b", self.path("nope"))
        self.assertRc(r, EXIT_IO)
        self.assertIn("nope", r.err)
        r = self.run_ccr("datastore", "upload", "zz", self.path("nope"))
        self.assertRc(r, EXIT_IO)
        self.assertIn("unknown datastore 'zz'", r.err)
        r = self.run_ccr("datastore", "download", "zz", self.path("o"))
        self.assertRc(r, EXIT_IO)
        r = self.run_ccr("datastore", "upload", "b", self.path("nope"), "--shard", "4/4")
        self.assertRc(r, 1)

    def test_symlink_and_fifo(self):
        src = self.path("src")
        os.makedirs(src)
        with open(os.path.join(src, "real"), "wb") as f:
            f.write(b"data")
        os.symlink("real", os.path.join(src, "link"))
        os.mkfifo(os.path.join(src, "fifo"))
        store = self.add("s", "none")
        r = self.run_ccr("datastore", "upload", "s", src, "--json")
        self.assertOk(r)
        self.assertIn("link: skipped", r.err)
        self.assertIn("fifo: skipped", r.err)
        j = parse_json_line(r.out)
        self.assertEqual((j["files"], j["skipped"]), (1, 2))
        self.assertFalse(os.path.exists(os.path.join(store, "link")))
        r = self.run_ccr("datastore", "upload", "s", src, "--follow-symlinks", "--json")
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["skipped"], 1)
        with open(os.path.join(store, "link"), "rb") as f:
            self.assertEqual(f.read(), b"data")

    def test_full_destination_disk(self):
        mnt = self.path("small")
        os.makedirs(mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], capture_output=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % p.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        src = self.path("src")
        os.makedirs(src)
        write_random(os.path.join(src, "a-big.bin"), 3 * MiB)
        with open(os.path.join(src, "b-small.txt"), "wb") as f:
            f.write(b"small")
        self.add("f")
        self.assertOk(self.run_ccr("datastore", "upload", "f", src, "--quiet"))
        out = os.path.join(mnt, "out")
        r = self.run_ccr("datastore", "download", "f", out, "--threads", "1")
        self.assertRc(r, EXIT_IO)
        self.assertIn("a-big.bin", r.err)
        self.assertIn("No space left on device", r.err)
        self.assertFalse(os.path.exists(os.path.join(out, "a-big.bin")))
        self.assertNoTemp(out)
        with open(os.path.join(out, "b-small.txt"), "rb") as f:
            self.assertEqual(f.read(), b"small")

    def test_wrong_key_and_tamper(self):
        src = self.path("src")
        os.makedirs(src)
        write_random(os.path.join(src, "victim.bin"), 3 * MiB)
        write_random(os.path.join(src, "fine.bin"), 2 * MiB)
        store = self.add("t")
        self.assertOk(self.run_ccr("datastore", "upload", "t", src, "--quiet"))
        other = self.path("other.key")
        write_key(other)
        self.assertOk(self.run_ccr("datastore", "add", "t2", "--url", store, "--key", other))
        r = self.run_ccr("datastore", "download", "t2", self.path("o2"))
        self.assertRc(r, EXIT_IO)
        self.assertIn("wrong key", r.err)
        r = self.run_ccr("datastore", "verify", "t2")
        self.assertRc(r, EXIT_IO)
        # flip a byte in region 2 of victim.bin
        off = 64 + 2 * (MiB + 16)
        with open(os.path.join(store, "victim.bin"), "r+b") as f:
            f.seek(off + 100)
            b = f.read(1)
            f.seek(off + 100)
            f.write(bytes([b[0] ^ 1]))
        for verb in ("verify", "download"):
            args = ["datastore", verb, "t"] + ([self.path("o")] if verb == "download" else [])
            r = self.run_ccr(*args)
            self.assertRc(r, EXIT_AUTH, verb)
            self.assertIn("victim.bin", r.err)
            self.assertIn("region 2", r.err)
            self.assertIn("byte offset %d" % off, r.err)
        self.assertFalse(os.path.exists(self.path("o", "victim.bin")))
        self.assertTrue(files_equal(self.path("o", "fine.bin"), os.path.join(src, "fine.bin")))
        self.assertNoTemp(self.path("o"))


class TestMemory(TransferCase):
    def test_peak_rss_3g_publish(self):
        src = self.path("src")
        os.makedirs(src)
        with open(os.path.join(src, "sparse.bin"), "wb") as f:
            f.truncate(3 << 30)
            f.seek(1 << 30)
            f.write(b"marker")
        self.add("m")
        r = ccr("datastore", "upload", "m", src, "--memory", "64M", "--json", env=self.env, timeout=600,
                prefix=["/usr/bin/time", "-f", "peak-rss-kib=%M"])
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["bytes_in"], 3 << 30)
        peak_kib = int(r.err.strip().splitlines()[-1].split("=")[1])
        self.assertGreater(peak_kib, 0)
        self.assertLess(peak_kib * 1024, 128 * MiB, "peak RSS %d KiB" % peak_kib)
        shutil.rmtree(self.path("store-m"))
        r = self.run_ccr("datastore", "upload", "m", src, "--memory", "64M", "--threads", "32")
        self.assertRc(r, EXIT_IO)
        self.assertIn("memory", r.err)


if __name__ == "__main__":
    ccrtest.main()
