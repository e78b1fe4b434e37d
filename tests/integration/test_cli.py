#!/usr/bin/python3
"""CLI behaviour of `ccr` per the CLI contract: keys, KEKs and wrapping, --help, usage errors, file and tree
round trips, DST handling, --json summaries, inspect (human and --json) for both modes."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import base64
import json
import os
import re
import stat

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import ccrtest
from ccrtest import KiB, MiB, CcrTestCase, ccr, ccr_ref as R


def num_re(n):
    """Matches n written plainly or with thousands separators (, or _ or thin space)."""
    s = str(n)
    groups = []
    while len(s) > 3:
        groups.insert(0, s[-3:])
        s = s[:-3]
    groups.insert(0, s)
    return re.compile(r"(?<![\d,])(%s|%s)(?![\d,])" % (str(n), r"[,_ ]?".join(groups)))


OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class Keys(CcrTestCase):
    def test_key_new(self):
        out = self.path("new.bin")
        r = ccr("key", "new", "--out", out)
        self.assertOk(r)
        self.assertEqual(r.out, "")
        st = os.stat(out)
        self.assertEqual(st.st_size, 32)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        first = ccrtest.read(out)
        self.assertNotEqual(first, b"\0" * 32)
        # refuses an existing file without --force, leaves it alone
        r = ccr("key", "new", "--out", out)
        self.assertRc(r, 2)
        self.assertIn(out, r.err)
        self.assertEqual(ccrtest.read(out), first)
        r = ccr("key", "new", "--out", out, "--force")
        self.assertOk(r)
        second = ccrtest.read(out)
        self.assertEqual(len(second), 32)
        self.assertNotEqual(second, first)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        self.assertEqual(ccrtest.leftovers(self.tmp), [])

    def test_key_new_json(self):
        out = self.path("j.bin")
        r = ccr("key", "new", "--out", out, "--json")
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertIsInstance(j, dict)
        if "key_id" in j:
            self.assertEqual(j["key_id"], R.key_id(ccrtest.read(out)).hex())

    def test_key_id(self):
        r = ccr("key", "id", "--key", self.key)
        self.assertOk(r)
        self.assertRegex(r.out.strip(), r"^[0-9a-f]{32}$")
        self.assertEqual(r.out.strip(), R.key_id(self.dek).hex())
        # a known key: id = first 16 bytes of SHA-256("ccr1-key-id" || 00..1f)
        known = self.path("known.bin")
        ccrtest.write_key(known, bytes(range(32)))
        r = ccr("key", "id", "--key", known)
        self.assertOk(r)
        self.assertEqual(r.out.strip(), R.key_id(bytes(range(32))).hex())

    def test_key_id_bad_key_file(self):
        bad = self.path("bad.bin")
        with open(bad, "wb") as f:
            f.write(b"x" * 31)
        os.chmod(bad, 0o600)
        r = ccr("key", "id", "--key", bad)
        self.assertRc(r, 2)
        self.assertIn(bad, r.err)
        r = ccr("key", "id", "--key", self.path("missing.bin"))
        self.assertRc(r, 2)

    def test_kek_wrap_unwrap(self):
        priv, pub = self.path("kek.pem"), self.path("kek.pub.pem")
        r = ccr("kek", "new", "--out", priv, "--pub-out", pub)
        self.assertOk(r)
        self.assertEqual(stat.S_IMODE(os.stat(priv).st_mode), 0o600)
        ptxt = ccrtest.read(priv)
        self.assertIn(b"-----BEGIN PRIVATE KEY-----", ptxt)  # PKCS#8
        self.assertIn(b"-----BEGIN PUBLIC KEY-----", ccrtest.read(pub))
        sk = serialization.load_pem_private_key(ptxt, password=None)
        pk = serialization.load_pem_public_key(ccrtest.read(pub))
        self.assertIsInstance(sk, rsa.RSAPrivateKey)
        self.assertEqual(sk.key_size, 2048)
        self.assertEqual(sk.public_key().public_numbers(), pk.public_numbers())
        self.assertEqual(pk.public_numbers().e, 65537)
        # existing --out refused
        r = ccr("kek", "new", "--out", priv)
        self.assertRc(r, 2)
        self.assertEqual(ccrtest.read(priv), ptxt)

        # C wraps -> Python unwraps (RSA-OAEP SHA-256, MGF1-SHA-256, empty label)
        r = ccr("key", "wrap", "--kek", pub, "--key", self.key)
        self.assertOk(r)
        self.assertTrue(r.out.endswith("\n"))
        wrapped = base64.b64decode(r.out.strip(), validate=True)
        self.assertEqual(len(wrapped), 256)
        self.assertEqual(sk.decrypt(wrapped, OAEP), self.dek)
        # a private PEM as --kek, and --out FILE
        wfile = self.path("wrapped.b64")
        r = ccr("key", "wrap", "--kek", priv, "--key", self.key, "--out", wfile)
        self.assertOk(r)
        self.assertEqual(sk.decrypt(base64.b64decode(ccrtest.read(wfile).strip()), OAEP), self.dek)

        # Python wraps -> C unwraps, inline and @file
        pyw = base64.b64encode(pk.encrypt(self.dek, OAEP)).decode()
        out1 = self.path("dek1.bin")
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", pyw, "--out", out1)
        self.assertOk(r)
        self.assertEqual(ccrtest.read(out1), self.dek)
        self.assertEqual(stat.S_IMODE(os.stat(out1).st_mode), 0o600)
        wf = self.path("py.b64")
        with open(wf, "w") as f:
            f.write(pyw + "\n")
        out2 = self.path("dek2.bin")
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", "@" + wf, "--out", out2)
        self.assertOk(r)
        self.assertEqual(ccrtest.read(out2), self.dek)
        # C wrap -> C unwrap (@file)
        out3 = self.path("dek3.bin")
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", "@" + wfile, "--out", out3)
        self.assertOk(r)
        self.assertEqual(ccrtest.read(out3), self.dek)
        # existing --out refused unless --force
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", pyw, "--out", out1)
        self.assertRc(r, 2)
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", pyw, "--out", out1, "--force")
        self.assertOk(r)
        self.assertEqual(ccrtest.read(out1), self.dek)
        # wrong KEK / garbage: fails, writes nothing
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        badw = base64.b64encode(other.public_key().encrypt(self.dek, OAEP)).decode()
        out4 = self.path("dek4.bin")
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", badw, "--out", out4)
        self.assertIn(r.rc, (2, 3), r)
        self.assertFalse(os.path.exists(out4))
        r = ccr("key", "unwrap", "--kek", priv, "--wrapped", "not base64 !!", "--out", out4)
        self.assertIn(r.rc, (1, 2, 3), r)
        self.assertNotEqual(r.rc, 0)
        self.assertFalse(os.path.exists(out4))
        # bad PEM -> 2
        junk = self.path("junk.pem")
        with open(junk, "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        r = ccr("key", "wrap", "--kek", junk, "--key", self.key)
        self.assertRc(r, 2)
        self.assertEqual(r.out, "")

    def test_kek_bits(self):
        for bits in (3072,):
            priv = self.path("kek%d.pem" % bits)
            r = ccr("kek", "new", "--out", priv, "--bits", bits)
            self.assertOk(r)
            sk = serialization.load_pem_private_key(ccrtest.read(priv), password=None)
            self.assertEqual(sk.key_size, bits)
            r = ccr("key", "wrap", "--kek", priv, "--key", self.key)
            self.assertOk(r)
            self.assertEqual(sk.decrypt(base64.b64decode(r.out.strip()), OAEP), self.dek)


class HelpAndUsage(CcrTestCase):
    HELP = {
        (): ["encrypt", "decrypt", "inspect", "key", "kek"],
        ("encrypt",): ["--key", "--mode", "--region-size", "--threads", "--force", "--quiet", "--json"],
        ("decrypt",): ["--key", "--mode", "--region-size", "--threads", "--force", "--quiet", "--json"],
        ("inspect",): ["--key", "--mode", "--region-size", "--json"],
        ("key", "new"): ["--out", "--force"],
        ("key", "id"): ["--key"],
        ("key", "wrap"): ["--kek", "--key", "--out"],
        ("key", "unwrap"): ["--kek", "--wrapped", "--out", "--force"],
        ("kek", "new"): ["--out", "--pub-out", "--bits", "--force"],
    }

    def test_help(self):
        for cmd, flags in self.HELP.items():
            with self.subTest(cmd=cmd):
                r = ccr(*cmd, "--help")
                self.assertOk(r)
                text = r.out + r.err
                self.assertTrue(r.out.strip(), "help goes to stdout")
                for fl in flags:
                    self.assertIn(fl, text, "%s --help does not mention %s" % (" ".join(cmd), fl))

    def test_version(self):
        for args in (("--version",), ("version",)):
            r = ccr(*args)
            self.assertOk(r)
            self.assertRegex(r.out, r"\d+\.\d+")

    def test_usage_errors(self):
        src = self.path("src.bin")
        ccrtest.write_random(src, 100)
        dst = self.path("dst.bin")
        k = self.key
        cases = [
            (),
            ("frobnicate",),
            ("encrypt", "--bogus", "--key", k, src, dst),
            ("encrypt", "--key", k),
            ("encrypt", "--key", k, src),
            ("encrypt", src, dst),
            ("encrypt", "--key", k, src, dst, self.path("extra")),
            ("encrypt", "--key", k, "--mode", "rot13", src, dst),
            ("encrypt", "--key", k, "--region-size", "3000", src, dst),
            ("encrypt", "--key", k, "--region-size", "2K", src, dst),
            ("encrypt", "--key", k, "--region-size", "32M", src, dst),
            ("encrypt", "--key", k, "--region-size", "abc", src, dst),
            ("encrypt", "--key", k, "--region-size", "-4096", src, dst),
            ("encrypt", "--key", k, "--region-size", "4X", src, dst),
            ("encrypt", "--key", k, "--region-size", "", src, dst),
            ("encrypt", "--key", k, "--mode", "cleanroom-cse", "--region-size", "8", src, dst),
            ("encrypt", "--key", k, "--mode", "cleanroom-cse", "--region-size", "2G", src, dst),
            ("encrypt", "--key", k, "--threads", "abc", src, dst),
            ("decrypt", "--key", k, "--mode", "nope", src, dst),
            ("decrypt", "--key", k, "--region-size", "5K", src, dst),
            ("decrypt", "--key", k),
            ("inspect",),
            ("inspect", "--mode", "nope", src),
            ("key",),
            ("key", "new"),
            ("key", "frob"),
            ("key", "id"),
            ("key", "wrap", "--key", k),
            ("key", "unwrap", "--kek", k, "--out", dst),
            ("kek", "new"),
            ("kek", "new", "--out", self.path("k.pem"), "--bits", "1024"),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = ccr(*args)
                self.assertUsageHint(r)
                self.assertFalse(os.path.exists(dst), "usage error created DST")
                if args not in ((), ("key",)):  # a bare command may print its usage summary
                    self.assertLessEqual(r.err.count("\n"), 3, "usage error should be short: %r" % r.err)

    def test_size_spellings(self):
        src = self.path("src.bin")
        ccrtest.write_random(src, 5000)
        for text in ("65536", "64K", "64KiB"):
            with self.subTest(size=text):
                dst = self.path("o-" + text)
                self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", text, src, dst))
                self.assertEqual(ccrtest.read(dst)[5], 16)
        for text, log2 in (("4K", 12), ("1M", 20), ("1MiB", 20), ("16M", 24), ("16MiB", 24)):
            with self.subTest(size=text):
                dst = self.path("o-" + text)
                self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", text, src, dst))
                self.assertEqual(ccrtest.read(dst)[5], log2)
        # cse: 16 bytes is the minimum chunk size
        dst = self.path("o-cse16")
        self.assertOk(ccr("encrypt", "--key", self.key, "--mode", "cleanroom-cse", "--region-size", "16", src, dst))
        self.assertEqual(os.path.getsize(dst), R.cse_blob_size(5000, 16))
        self.assertEqual(R.cse_decrypt_bytes(self.dek, ccrtest.read(dst), 16), ccrtest.read(src))


class RoundTrips(CcrTestCase):
    def _rt(self, mode, rs, size):
        src = self.path("f-%s-%s-%d" % (mode, rs, size))
        ccrtest.write_random(src, size)
        enc, dec = src + ".enc", src + ".dec"
        self.assertOk(ccr("encrypt", "--key", self.key, "--mode", mode, "--region-size", rs, src, enc))
        self.assertOk(ccr("decrypt", "--key", self.key, "--mode", mode, "--region-size", rs, enc, dec))
        self.assertTrue(ccrtest.files_equal(src, dec))
        self.assertNoTemp(self.tmp)

    def test_file_round_trips(self):
        for mode, rs in (("ccr1", "4K"), ("ccr1", "1M"), ("cleanroom-cse", "4096"), ("cleanroom-cse", "1M")):
            for size in (0, 1, 4095, 4096, 4097, 3 * MiB + 123):
                with self.subTest(mode=mode, rs=rs, size=size):
                    self._rt(mode, rs, size)

    def test_default_mode_and_threads(self):
        src = self.path("p")
        ccrtest.write_random(src, 5 * MiB + 17)
        for threads in ("1", "2", "4"):
            enc, dec = self.path("e" + threads), self.path("d" + threads)
            self.assertOk(ccr("encrypt", "--key", self.key, "--threads", threads, src, enc))
            self.assertEqual(ccrtest.read(enc)[:4], b"CCR1")
            self.assertOk(ccr("decrypt", "--key", self.key, "--threads", threads, enc, dec))
            self.assertTrue(ccrtest.files_equal(src, dec))

    def _make_tree(self, root):
        os.makedirs(os.path.join(root, "d1", "d2", "d3"))
        os.makedirs(os.path.join(root, "empty1", "empty2"))
        os.makedirs(os.path.join(root, "only-empty-file"))
        ccrtest.write_random(os.path.join(root, "top.bin"), 10000)
        ccrtest.write_random(os.path.join(root, ".hidden"), 50)
        ccrtest.write_random(os.path.join(root, "d1", "a"), 4096)
        ccrtest.write_random(os.path.join(root, "d1", "d2", "b"), 12289)
        ccrtest.write_random(os.path.join(root, "d1", "d2", "d3", "c"), 1)
        open(os.path.join(root, "only-empty-file", "empty"), "wb").close()
        open(os.path.join(root, "zero"), "wb").close()
        uni = os.path.join(root, "ünïcödé", "日本語")
        os.makedirs(uni)
        ccrtest.write_random(os.path.join(uni, "файл ✓ with spaces.txt"), 333)
        deep = root
        for i in range(40):
            deep = os.path.join(deep, "level%02d" % i)
        os.makedirs(deep)
        ccrtest.write_random(os.path.join(deep, "deep.bin"), 4100)

    def test_tree_round_trip(self):
        src = self.path("src")
        self._make_tree(src)
        want = ccrtest.tree_listing(src)
        nfiles = sum(1 for v in want.values() if v[0] == "file")
        for mode, rs in (("ccr1", "4K"), ("cleanroom-cse", "4096")):
            with self.subTest(mode=mode):
                enc, dec = self.path("enc-" + mode), self.path("dec-" + mode)
                r = ccr("encrypt", "--key", self.key, "--mode", mode, "--region-size", rs, "--json", src, enc)
                self.assertOk(r)
                j = ccrtest.parse_json_line(r.out)
                self.assertEqual(j["files"], nfiles)
                # same relative paths, directories included
                got = ccrtest.tree_listing(enc)
                self.assertEqual(sorted(got), sorted(want))
                r = ccr("decrypt", "--key", self.key, "--mode", mode, "--region-size", rs, enc, dec)
                self.assertOk(r)
                self.assertEqual(ccrtest.tree_listing(dec), want)
                self.assertNoTemp(enc)
                self.assertNoTemp(dec)

    def test_long_file_name(self):
        """A 240-byte name (valid on every Linux fs) must work although the temporary name is longer."""
        src = self.path("src")
        os.makedirs(src)
        name = "n" * 240
        ccrtest.write_random(os.path.join(src, name), 1000)
        enc, dec = self.path("enc"), self.path("dec")
        self.assertOk(ccr("encrypt", "--key", self.key, src, enc))
        self.assertOk(ccr("decrypt", "--key", self.key, enc, dec))
        self.assertTrue(ccrtest.files_equal(os.path.join(src, name), os.path.join(dec, name)))
        self.assertNoTemp(self.tmp)

    def test_symlinks_and_fifos_skipped(self):
        src = self.path("src")
        os.makedirs(os.path.join(src, "dir"))
        ccrtest.write_random(os.path.join(src, "real.bin"), 2000)
        os.symlink("real.bin", os.path.join(src, "link-to-file"))
        os.symlink("dir", os.path.join(src, "link-to-dir"))
        os.symlink("/nonexistent/target", os.path.join(src, "dangling"))
        os.mkfifo(os.path.join(src, "dir", "fifo"))
        enc = self.path("enc")
        r = ccr("encrypt", "--key", self.key, src, enc, timeout=60)
        self.assertOk(r)
        for name in ("link-to-file", "link-to-dir", "dangling", "fifo"):
            self.assertIn(name, r.err, "no warning naming skipped %s" % name)
        self.assertEqual(sorted(os.listdir(enc)), ["dir", "real.bin"])
        self.assertEqual(os.listdir(os.path.join(enc, "dir")), [])
        dec = self.path("dec")
        self.assertOk(ccr("decrypt", "--key", self.key, enc, dec))
        self.assertTrue(ccrtest.files_equal(os.path.join(src, "real.bin"), os.path.join(dec, "real.bin")))

    def test_existing_dst(self):
        src = self.path("src.bin")
        ccrtest.write_random(src, 3000)
        dst = self.path("dst.bin")
        with open(dst, "wb") as f:
            f.write(b"old")
        r = ccr("encrypt", "--key", self.key, src, dst)
        self.assertRc(r, 2)
        self.assertIn(dst, r.err)
        self.assertEqual(ccrtest.read(dst), b"old")
        r = ccr("encrypt", "--key", self.key, "--force", src, dst)
        self.assertOk(r)
        self.assertEqual(os.path.getsize(dst), R.ccr1_blob_size(3000, MiB))
        # decrypt onto an existing file
        out = self.path("out.bin")
        with open(out, "wb") as f:
            f.write(b"keep")
        self.assertRc(ccr("decrypt", "--key", self.key, dst, out), 2)
        self.assertEqual(ccrtest.read(out), b"keep")
        self.assertOk(ccr("decrypt", "--key", self.key, "--force", dst, out))
        self.assertTrue(ccrtest.files_equal(src, out))
        self.assertNoTemp(self.tmp)

    def test_existing_dst_dir(self):
        src = self.path("src")
        os.makedirs(os.path.join(src, "sub"))
        ccrtest.write_random(os.path.join(src, "a.bin"), 100)
        ccrtest.write_random(os.path.join(src, "sub", "b.bin"), 200)
        dst = self.path("dst")
        os.makedirs(dst)
        r = ccr("encrypt", "--key", self.key, src, dst)
        self.assertRc(r, 2)
        self.assertEqual(os.listdir(dst), [])
        with open(os.path.join(dst, "a.bin"), "wb") as f:
            f.write(b"stale")
        with open(os.path.join(dst, "unrelated"), "wb") as f:
            f.write(b"other")
        r = ccr("encrypt", "--key", self.key, "--force", src, dst)
        self.assertOk(r)
        self.assertEqual(os.path.getsize(os.path.join(dst, "a.bin")), R.ccr1_blob_size(100, MiB))
        self.assertEqual(ccrtest.read(os.path.join(dst, "unrelated")), b"other")
        self.assertEqual(R.ccr1_decrypt_bytes(self.dek, ccrtest.read(os.path.join(dst, "sub", "b.bin"))),
                         ccrtest.read(os.path.join(src, "sub", "b.bin")))
        # a directory SRC onto an existing regular file
        f = self.path("plainfile")
        open(f, "wb").close()
        self.assertRc(ccr("encrypt", "--key", self.key, "--force", src, f), 2)

    def test_json_summary(self):
        src = self.path("src")
        os.makedirs(src)
        sizes = {"a": 10000, "b": 4096, "c": 0, "d": 1}
        for n, s in sizes.items():
            ccrtest.write_random(os.path.join(src, n), s)
        plain_total = sum(sizes.values())
        for mode, rs, fn in (("ccr1", "4K", lambda s: R.ccr1_blob_size(s, 4096)),
                             ("cleanroom-cse", "4096", lambda s: R.cse_blob_size(s, 4096))):
            with self.subTest(mode=mode):
                enc_total = sum(fn(s) for s in sizes.values())
                enc, dec = self.path("e-" + mode), self.path("d-" + mode)
                r = ccr("encrypt", "--key", self.key, "--mode", mode, "--region-size", rs, "--json", src, enc)
                self.assertOk(r)
                j = ccrtest.parse_json_line(r.out)
                self.assertEqual(j["command"], "encrypt")
                self.assertEqual(j["mode"], mode)
                self.assertEqual(j["files"], 4)
                self.assertEqual(j["bytes_in"], plain_total)
                self.assertEqual(j["bytes_out"], enc_total)
                self.assertIsInstance(j["seconds"], (int, float))
                self.assertGreaterEqual(j["seconds"], 0)
                self.assertEqual(j["errors"], 0)
                self.assertEqual(j["failed"], [])
                r = ccr("decrypt", "--key", self.key, "--mode", mode, "--region-size", rs, "--json", enc, dec)
                self.assertOk(r)
                j = ccrtest.parse_json_line(r.out)
                self.assertEqual(j["command"], "decrypt")
                self.assertEqual(j["mode"], mode)
                self.assertEqual(j["files"], 4)
                self.assertEqual(j["bytes_in"], enc_total)
                self.assertEqual(j["bytes_out"], plain_total)
                self.assertEqual(j["errors"], 0)
                self.assertEqual(j["failed"], [])
        # single file
        one = self.path("one")
        ccrtest.write_random(one, 5000)
        r = ccr("encrypt", "--key", self.key, "--json", one, one + ".enc")
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual((j["files"], j["bytes_in"], j["bytes_out"]), (1, 5000, R.ccr1_blob_size(5000, MiB)))

    def _run_on_tty(self, *args):
        import pty
        import subprocess
        m, s = pty.openpty()
        p = subprocess.Popen([ccrtest.CCR] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=s)
        os.close(s)
        chunks = []
        while True:
            try:
                b = os.read(m, 65536)
            except OSError:  # EIO once the child closed the pty
                break
            if not b:
                break
            chunks.append(b)
        os.close(m)
        p.stdout.close()
        return p.wait(timeout=60), b"".join(chunks).decode(errors="replace")

    def test_progress_only_on_tty(self):
        src = self.path("p")
        with open(src, "wb") as f:
            f.truncate(128 * MiB)
        # TTY, not quiet: progress is one line redrawn in place (\r), not a scroll of lines
        rc, tty = self._run_on_tty("encrypt", "--key", self.key, src, self.path("e1"))
        self.assertEqual(rc, 0, tty)
        self.assertLessEqual(tty.count("\n"), 1, "progress must be redrawn, not scrolled: %r" % tty[-500:])
        # TTY with --quiet: nothing
        rc, tty = self._run_on_tty("encrypt", "--key", self.key, "--quiet", src, self.path("e2"))
        self.assertEqual(rc, 0)
        self.assertEqual(tty, "")
        # not a TTY: no progress line
        r = ccr("encrypt", "--key", self.key, src, self.path("e3"))
        self.assertOk(r)
        self.assertNotIn("\r", r.err)

    def test_quiet_and_silent_success(self):
        src = self.path("p")
        ccrtest.write_random(src, 3000)
        r = ccr("encrypt", "--key", self.key, "--quiet", src, src + ".e")
        self.assertOk(r)
        self.assertEqual((r.out, r.err), ("", ""))
        r = ccr("decrypt", "--key", self.key, "--quiet", src + ".e", src + ".d")
        self.assertOk(r)
        self.assertEqual((r.out, r.err), ("", ""))


class Inspect(CcrTestCase):
    def setUp(self):
        super().setUp()
        self.other = self.path("k2.bin")
        self.dek2 = ccrtest.write_key(self.other)

    def test_ccr1(self):
        n = 3 * 4096 + 100
        src = self.path("p")
        ccrtest.write_random(src, n)
        enc = self.path("p.ccr")
        self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", "4K", src, enc))
        kid = ccr("key", "id", "--key", self.key).out.strip()
        self.assertEqual(kid, R.key_id(self.dek).hex())
        blob = 64 + n + 4 * 16
        # --json without a key
        r = ccr("inspect", "--json", enc)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual(j["file"], enc)
        self.assertEqual(j["mode"], "ccr1")
        self.assertEqual(j["blob_size"], blob)
        self.assertEqual(j["plaintext_size"], n)
        self.assertEqual(j["region_size"], 4096)
        self.assertEqual(j["regions"], 4)
        self.assertEqual(j["key_id"], kid)
        self.assertIsNone(j["key_matches"])
        self.assertIsNone(j["authenticated"])
        self.assertIsNone(j["failed_region"])
        self.assertIsNone(j["error"])
        # with the right key
        r = ccr("inspect", "--json", "--key", self.key, enc)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertIs(j["key_matches"], True)
        self.assertIs(j["authenticated"], True)
        self.assertIsNone(j["failed_region"])
        # with another key
        r = ccr("inspect", "--json", "--key", self.other, enc)
        self.assertRc(r, 2)
        j = ccrtest.parse_json_line(r.out)
        self.assertIs(j["key_matches"], False)
        self.assertIsNot(j["authenticated"], True)
        self.assertEqual(j["key_id"], kid)
        # --mode given explicitly
        r = ccr("inspect", "--json", "--mode", "ccr1", enc)
        self.assertOk(r)
        self.assertEqual(ccrtest.parse_json_line(r.out)["plaintext_size"], n)
        # human output
        r = ccr("inspect", "--key", self.key, enc)
        self.assertOk(r)
        self.assertIn("ccr1", r.out)
        self.assertIn(kid, r.out)
        self.assertRegex(r.out, num_re(n))
        self.assertRegex(r.out, num_re(blob))
        self.assertRegex(r.out, r"(4096|4,096|4\s?Ki?B?)")
        self.assertRegex(r.out.lower(), r"match")
        self.assertRegex(r.out.lower(), r"authenticat")
        r2 = ccr("inspect", "--key", self.other, enc)
        self.assertRc(r2, 2)
        self.assertNotEqual(r.out, r2.out)

    def test_ccr1_empty(self):
        src = self.path("e")
        open(src, "wb").close()
        enc = self.path("e.ccr")
        self.assertOk(ccr("encrypt", "--key", self.key, src, enc))
        r = ccr("inspect", "--json", "--key", self.key, enc)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual((j["blob_size"], j["plaintext_size"], j["regions"], j["region_size"]), (80, 0, 1, MiB))
        self.assertIs(j["authenticated"], True)

    def test_cse(self):
        n = 2 * MiB + 5
        src = self.path("p")
        ccrtest.write_random(src, n)
        enc = self.path("p.cse")
        self.assertOk(ccr("encrypt", "--key", self.key, "--mode", "cleanroom-cse", "--region-size", "1M", src, enc))
        blob = 3 * (MiB + 28) + 8
        self.assertEqual(os.path.getsize(enc), blob)
        for args in (("--region-size", "1M"), ("--region-size", "1M", "--mode", "cleanroom-cse")):
            with self.subTest(args=args):
                r = ccr("inspect", "--json", *args, enc)
                self.assertOk(r)
                j = ccrtest.parse_json_line(r.out)
                self.assertEqual(j["mode"], "cleanroom-cse")
                self.assertEqual(j["blob_size"], blob)
                self.assertEqual(j["plaintext_size"], n)
                self.assertEqual(j["region_size"], MiB)
                self.assertEqual(j["regions"], 3)
                self.assertIsNone(j["key_id"])
                self.assertIsNone(j["key_matches"])
                self.assertIsNone(j["authenticated"])
        r = ccr("inspect", "--json", "--region-size", "1M", "--key", self.key, enc)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertIs(j["authenticated"], True)
        self.assertIsNone(j["key_matches"])
        self.assertIsNone(j["failed_region"])
        # wrong key: cse cannot tell it from tampering -> authentication failure in chunk 0
        r = ccr("inspect", "--json", "--region-size", "1M", "--key", self.other, enc)
        self.assertRc(r, 3)
        j = ccrtest.parse_json_line(r.out)
        self.assertIs(j["authenticated"], False)
        self.assertEqual(j["failed_region"], 0)
        self.assertTrue(j["error"])
        # human
        r = ccr("inspect", "--region-size", "1M", "--key", self.key, enc)
        self.assertOk(r)
        self.assertIn("cleanroom-cse", r.out)
        self.assertRegex(r.out, num_re(n))
        self.assertRegex(r.out, num_re(blob))

    def test_cse_default_chunk_autodetect(self):
        src = self.path("p")
        ccrtest.write_random(src, 1000)
        enc = self.path("p.cse")
        self.assertOk(ccr("encrypt", "--key", self.key, "--mode", "cleanroom-cse", src, enc))
        r = ccr("inspect", "--json", "--key", self.key, enc)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual((j["mode"], j["plaintext_size"], j["region_size"], j["regions"]),
                         ("cleanroom-cse", 1000, 16 * MiB, 1))
        self.assertIs(j["authenticated"], True)
        # an 8-byte trailer-only blob is an empty file
        e = self.path("empty.cse")
        with open(e, "wb") as f:
            f.write(b"\0" * 8)
        r = ccr("inspect", "--json", "--mode", "cleanroom-cse", e)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual((j["blob_size"], j["plaintext_size"], j["regions"]), (8, 0, 0))

    def test_not_a_blob(self):
        junk = self.path("junk")
        with open(junk, "wb") as f:
            f.write(os.urandom(1000))
        r = ccr("inspect", "--json", junk)
        self.assertRc(r, 3)
        j = ccrtest.parse_json_line(r.out)
        self.assertTrue(j["error"])
        r = ccr("inspect", self.path("missing"))
        self.assertRc(r, 2)
        self.assertIn("missing", r.err)


if __name__ == "__main__":
    ccrtest.main()
