#!/usr/bin/python3
"""Bad input and atomicity through the CLI: missing/unreadable sources, unwritable/read-only destinations,
bad key files, loose key permissions, a full disk (ENOSPC on a small tmpfs), SIGINT/SIGTERM mid-way.
Every failure must leave no temporary or partial output, and must not touch an existing DST.

These tests run as root (the CI container). Root bypasses file permission bits, so EACCES is provoked by
running `ccr` as the unprivileged user `nobody` (setpriv); if that is impossible (binary not executable by
nobody) those cases are skipped and EROFS via a read-only tmpfs mount still covers "cannot write DST".
Mount-based cases need root (CAP_SYS_ADMIN); they are skipped otherwise."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import os
import shutil
import signal
import stat
import subprocess
import time

import ccrtest
from ccrtest import MiB, GiB, CcrTestCase, ccr, ccr_ref as R

IS_ROOT = os.geteuid() == 0
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")


def mount_tmpfs(path, opts):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def umount(path):
    subprocess.run(["umount", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def can_mount():
    if not IS_ROOT or not shutil.which("mount"):
        return False
    d = "/tmp/ccr-it-mountprobe-%d" % os.getpid()
    try:
        mount_tmpfs(d, "size=64k")
        umount(d)
        return True
    except (subprocess.CalledProcessError, OSError):
        return False
    finally:
        try:
            os.rmdir(d)
        except OSError:
            pass


MOUNT_OK = can_mount()


def nobody_can_run():
    if not IS_ROOT or not shutil.which("setpriv"):
        return False
    try:
        p = subprocess.run(list(NOBODY) + [ccrtest.CCR, "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        return p.returncode == 0
    except OSError:
        return False


NOBODY_OK = nobody_can_run()


class Inputs(CcrTestCase):
    def test_missing_src(self):
        for op in ("encrypt", "decrypt"):
            with self.subTest(op=op):
                src = self.path("does-not-exist")
                dst = self.path("out-" + op)
                r = ccr(op, "--key", self.key, src, dst)
                self.assertRc(r, 2)
                self.assertIn(src, r.err)
                self.assertRegex(r.err.lower(), r"no such file|not found|does not exist")
                self.assertFalse(os.path.exists(dst))
        r = ccr("inspect", self.path("nope"))
        self.assertRc(r, 2)

    def test_dst_parent_missing(self):
        src = self.path("p")
        ccrtest.write_random(src, 100)
        r = ccr("encrypt", "--key", self.key, src, self.path("no", "such", "dir", "out"))
        self.assertRc(r, 2)

    def test_bad_key_files(self):
        src = self.path("p")
        ccrtest.write_random(src, 1000)
        enc = self.path("p.ccr")
        self.assertOk(ccr("encrypt", "--key", self.key, src, enc))
        bad = {}
        for name, content in (("empty", b""), ("short", b"k" * 31), ("long", b"k" * 33),
                              ("pem", b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")):
            p = self.path("key-" + name)
            with open(p, "wb") as f:
                f.write(content)
            os.chmod(p, 0o600)
            bad[name] = p
        bad["missing"] = self.path("key-missing")
        bad["directory"] = self.path("keydir")
        os.makedirs(bad["directory"])
        for name, kp in bad.items():
            for args in (("encrypt", "--key", kp, src, self.path("o1")),
                         ("decrypt", "--key", kp, enc, self.path("o2")),
                         ("inspect", "--key", kp, enc),
                         ("key", "id", "--key", kp)):
                with self.subTest(key=name, cmd=args[0]):
                    r = ccr(*args)
                    self.assertRc(r, 2)
                    self.assertIn(kp, r.err, "error does not name the key file")
                    self.assertFalse(os.path.exists(self.path("o1")))
                    self.assertFalse(os.path.exists(self.path("o2")))

    def test_loose_key_permissions_warn(self):
        src = self.path("p")
        ccrtest.write_random(src, 1000)
        for mode in (0o644, 0o640, 0o604, 0o660):
            with self.subTest(mode=oct(mode)):
                os.chmod(self.key, mode)
                out = self.path("o-%o" % mode)
                r = ccr("encrypt", "--key", self.key, src, out)
                self.assertOk(r)
                self.assertIn(self.key, r.err)
                self.assertIn("chmod 600", r.err)
                self.assertEqual(R.ccr1_decrypt_bytes(self.dek, ccrtest.read(out)), ccrtest.read(src))
        os.chmod(self.key, 0o600)
        r = ccr("encrypt", "--key", self.key, src, self.path("o-600"))
        self.assertOk(r)
        self.assertNotIn("chmod", r.err)
        os.chmod(self.key, 0o400)
        r = ccr("encrypt", "--key", self.key, src, self.path("o-400"))
        self.assertOk(r)
        self.assertNotIn("chmod", r.err)

    def test_garbage_input(self):
        junk = self.path("junk")
        with open(junk, "wb") as f:
            f.write(os.urandom(5000))
        txt = self.path("text.txt")
        with open(txt, "w") as f:
            f.write("just some plaintext, not a blob\n" * 10)
        for src in (junk, txt):
            for mode in ("ccr1", "cleanroom-cse"):
                with self.subTest(src=os.path.basename(src), mode=mode):
                    dst = self.path("out")
                    r = ccr("decrypt", "--key", self.key, "--mode", mode, src, dst)
                    self.assertRc(r, 3)
                    self.assertIn(src, r.err)
                    self.assertFalse(os.path.exists(dst))
        self.assertNoTemp(self.tmp)

    def test_failed_decrypt_keeps_existing_dst(self):
        """--force onto an existing file: a failing decrypt must leave the old file untouched."""
        src = self.path("p")
        ccrtest.write_random(src, 3 * 4096 + 5)
        enc = self.path("p.ccr")
        self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", "4K", src, enc))
        with open(enc, "r+b") as f:
            f.seek(64 + 2 * 4112 + 9)
            f.write(b"\xee")
        dst = self.path("existing")
        with open(dst, "wb") as f:
            f.write(b"precious")
        r = ccr("decrypt", "--key", self.key, "--force", enc, dst)
        self.assertRc(r, 3)
        self.assertEqual(ccrtest.read(dst), b"precious")
        self.assertNoTemp(self.tmp)

    def test_temp_file_mode(self):
        """Completed outputs exist under their final names only; no temporary names remain."""
        src = self.path("p")
        ccrtest.write_random(src, 100000)
        out = self.path("o")
        self.assertOk(ccr("encrypt", "--key", self.key, src, out))
        self.assertEqual(sorted(os.listdir(self.tmp)), ["k.bin", "o", "p"])


@__import__("unittest").skipUnless(NOBODY_OK, "cannot run ccr as nobody (not root, no setpriv, or binary "
                                   "not reachable by nobody): EACCES cases skipped")
class Permissions(CcrTestCase):
    """EACCES: ccr runs as nobody; root-owned files with restrictive modes are then really unreadable."""

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.nkey = self.path("nobody.key")
        ccrtest.write_key(self.nkey, self.dek)
        os.chown(self.nkey, 65534, 65534)
        self.outdir = self.path("outdir")
        os.makedirs(self.outdir)
        os.chown(self.outdir, 65534, 65534)

    def test_unreadable_src(self):
        src = self.path("secret.bin")
        ccrtest.write_random(src, 10000)
        os.chmod(src, 0o000)
        dst = os.path.join(self.outdir, "out")
        r = ccr("encrypt", "--key", self.nkey, src, dst, prefix=NOBODY)
        self.assertRc(r, 2)
        self.assertIn(src, r.err)
        self.assertRegex(r.err.lower(), r"permission denied|eacces|not permitted")
        self.assertEqual(os.listdir(self.outdir), [])

    def test_unreadable_file_in_tree(self):
        src = self.path("tree")
        os.makedirs(src)
        ccrtest.write_random(os.path.join(src, "ok.bin"), 5000)
        ccrtest.write_random(os.path.join(src, "locked.bin"), 5000)
        os.chmod(os.path.join(src, "locked.bin"), 0o000)
        os.chmod(src, 0o755)
        dst = os.path.join(self.outdir, "enc")
        r = ccr("encrypt", "--key", self.nkey, "--json", src, dst, prefix=NOBODY)
        self.assertRc(r, 2)
        self.assertIn("locked.bin", r.err)
        self.assertEqual(sorted(os.listdir(dst)), ["ok.bin"])
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual(j["errors"], 1)
        self.assertIn("locked.bin", j["failed"][0]["path"])
        self.assertNoTemp(dst)

    def test_unreadable_key(self):
        src = self.path("p")
        ccrtest.write_random(src, 100)
        os.chmod(src, 0o644)
        # self.key is root-owned 0600: nobody cannot read it
        r = ccr("encrypt", "--key", self.key, src, os.path.join(self.outdir, "o"), prefix=NOBODY)
        self.assertRc(r, 2)
        self.assertIn(self.key, r.err)
        self.assertEqual(os.listdir(self.outdir), [])

    def test_unwritable_dst_dir(self):
        src = self.path("p")
        ccrtest.write_random(src, 10000)
        os.chmod(src, 0o644)
        ro = self.path("rootdir")
        os.makedirs(ro)
        os.chmod(ro, 0o755)  # root-owned: nobody cannot create files in it
        r = ccr("encrypt", "--key", self.nkey, src, os.path.join(ro, "out"), prefix=NOBODY)
        self.assertRc(r, 2)
        self.assertRegex(r.err.lower(), r"permission denied|eacces|not permitted")
        self.assertEqual(os.listdir(ro), [])


@__import__("unittest").skipUnless(MOUNT_OK, "needs root and tmpfs mounts")
class Mounts(CcrTestCase):
    def mount(self, opts):
        d = self.path("mnt")
        mount_tmpfs(d, opts)
        self.addCleanup(umount, d)
        return d

    def test_read_only_dst(self):
        d = self.mount("size=1m,ro")
        src = self.path("p")
        ccrtest.write_random(src, 10000)
        r = ccr("encrypt", "--key", self.key, src, os.path.join(d, "out"))
        self.assertRc(r, 2)
        self.assertRegex(r.err.lower(), r"read-only|erofs")
        self.assertEqual(os.listdir(d), [])

    def _enospc(self, mode, rs):
        src = self.path("big-" + mode)
        ccrtest.write_random(src, 5 * MiB)
        enc = self.path("big-%s.enc" % mode)
        self.assertOk(ccr("encrypt", "--key", self.key, "--mode", mode, "--region-size", rs, src, enc))
        d = self.mount("size=2m")
        for op, s in (("encrypt", src), ("decrypt", enc)):
            with self.subTest(op=op):
                r = ccr(op, "--key", self.key, "--mode", mode, "--region-size", rs, s, os.path.join(d, "out"))
                self.assertRc(r, 2)
                self.assertIn("out", r.err)
                self.assertRegex(r.err.lower(), r"no space|enospc|disk full")
                self.assertEqual(os.listdir(d), [], "left behind on a full disk")

    def test_enospc_ccr1(self):
        self._enospc("ccr1", "1M")

    def test_enospc_cse(self):
        self._enospc("cleanroom-cse", "1M")

    def test_enospc_tree(self):
        """Tree into a full disk: failures reported, every file present is complete and valid, no temps."""
        src = self.path("tree")
        os.makedirs(src)
        for i in range(6):
            ccrtest.write_random(os.path.join(src, "f%d" % i), 700 * 1024)
        d = self.mount("size=2m")
        dst = os.path.join(d, "enc")
        r = ccr("encrypt", "--key", self.key, "--region-size", "64K", "--json", src, dst)
        self.assertRc(r, 2)
        j = ccrtest.parse_json_line(r.out)
        self.assertGreaterEqual(j["errors"], 1)
        self.assertRegex(r.err.lower(), r"no space|enospc|disk full")
        self.assertNoTemp(d)
        present = os.listdir(dst) if os.path.isdir(dst) else []
        self.assertLess(len(present), 6)
        for name in present:
            blob = ccrtest.read(os.path.join(dst, name))
            self.assertEqual(R.ccr1_decrypt_bytes(self.dek, blob), ccrtest.read(os.path.join(src, name)), name)


class Signals(CcrTestCase):
    """SIGINT/SIGTERM mid-way: exit 130/143 and no temporary or partial output."""

    def _interrupt(self, argv, dst_dir, sig, want_rc):
        p = subprocess.Popen([ccrtest.CCR] + [str(a) for a in argv], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # wait until the output is being written (a temporary file exists), then a bit more
            t0 = time.time()
            while time.time() - t0 < 20 and p.poll() is None and not ccrtest.leftovers(dst_dir):
                time.sleep(0.005)
            time.sleep(0.2)
            if p.poll() is not None:
                self.fail("ccr finished (rc %s) before the signal could be sent; make the input larger" % p.returncode)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        rc = p.returncode
        if rc < 0:
            self.fail("ccr was killed by signal %d instead of cleaning up and exiting %d" % (-rc, want_rc))
        self.assertEqual(rc, want_rc, err.decode(errors="replace"))
        self.assertEqual(ccrtest.leftovers(dst_dir), [], "temporary files left after the signal")
        return err.decode(errors="replace")

    def _sparse(self, name, size):
        p = self.path(name)
        with open(p, "wb") as f:
            f.truncate(size)
            f.seek(size // 2)
            f.write(b"middle")
        return p

    def test_sigint_encrypt(self):
        src = self._sparse("sparse", 2 * GiB)
        out = self.path("outdir")
        os.makedirs(out)
        self._interrupt(["encrypt", "--key", self.key, src, os.path.join(out, "enc")], out, signal.SIGINT, 130)
        self.assertEqual(os.listdir(out), [])

    def test_sigterm_encrypt_cse(self):
        src = self._sparse("sparse", 2 * GiB)
        out = self.path("outdir")
        os.makedirs(out)
        self._interrupt(["encrypt", "--key", self.key, "--mode", "cleanroom-cse", src, os.path.join(out, "enc")],
                        out, signal.SIGTERM, 143)
        self.assertEqual(os.listdir(out), [])

    def test_sigterm_decrypt(self):
        src = self._sparse("sparse", GiB)
        enc = self.path("enc")
        self.assertOk(ccr("encrypt", "--key", self.key, "--quiet", src, enc, timeout=120))
        os.unlink(src)
        out = self.path("outdir")
        os.makedirs(out)
        self._interrupt(["decrypt", "--key", self.key, enc, os.path.join(out, "dec")], out, signal.SIGTERM, 143)
        self.assertEqual(os.listdir(out), [])

    def test_sigint_tree(self):
        """Interrupting a tree: files already finished may stay (complete), nothing partial or temporary."""
        src = self.path("tree")
        os.makedirs(src)
        for i in range(4):
            with open(os.path.join(src, "f%d" % i), "wb") as f:
                f.truncate(512 * MiB)
        out = self.path("outdir")
        os.makedirs(out)
        dst = os.path.join(out, "enc")
        self._interrupt(["encrypt", "--key", self.key, "--threads", "1", src, dst], out, signal.SIGINT, 130)
        if os.path.isdir(dst):
            for name in os.listdir(dst):
                self.assertEqual(os.path.getsize(os.path.join(dst, name)), R.ccr1_blob_size(512 * MiB, MiB), name)


if __name__ == "__main__":
    ccrtest.main()
