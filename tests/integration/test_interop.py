#!/usr/bin/python3
"""Cross-implementation tests: the C `ccr` against the independent Python implementation
(tests/interop/ccr_ref.py), both directions, byte-exact, for ccr1 and cleanroom-cse."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import os
import random
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import ccrtest
from ccrtest import KiB, MiB, CcrTestCase, ccr, ccr_ref as R

SEED = int(os.environ.get("CCR_TEST_SEED", "20240601"))


def sizes_for(unit, rng, extra=3):
    base = [0, 1, unit - 1, unit, unit + 1, 3 * unit]
    base += [rng.randrange(2, 4 * unit) for _ in range(extra)]
    return base


class Ccr1Interop(CcrTestCase):
    def _c_encrypt(self, src, dst, rs=None):
        args = ["encrypt", "--key", self.key, "--quiet"]
        if rs is not None:
            args += ["--region-size", rs]
        r = ccr(*args, src, dst)
        self.assertOk(r)
        return r

    def _check_c_blob(self, blob_path, plain, region_size):
        """A blob written by C: header fields per spec, size per formula, every region decrypts in Python."""
        with open(blob_path, "rb") as f:
            header = f.read(64)
        info = R.ccr1_parse_header(header)
        self.assertEqual(header[0:4], b"CCR1")
        self.assertEqual(info["version"], 1)
        self.assertEqual(info["region_size"], region_size)
        self.assertEqual(header[6:8], b"\0\0")
        self.assertEqual(header[56:64], b"\0" * 8)
        self.assertEqual(info["key_id"], R.key_id(self.dek))
        self.assertNotEqual(info["salt"], b"\0" * 32)
        n = len(plain)
        self.assertEqual(os.path.getsize(blob_path), 64 + n + 16 * max(1, -(-n // region_size)))
        self.assertEqual(R.ccr1_decrypt_bytes(self.dek, ccrtest.read(blob_path)), plain)
        return info

    def test_c_to_python_and_back(self):
        rng = random.Random(SEED)
        for rs_text, rs in (("4K", 4 * KiB), ("64K", 64 * KiB), ("1M", MiB)):
            for n in sizes_for(rs, rng):
                with self.subTest(region=rs_text, size=n):
                    plain = os.urandom(n)
                    src = self.path("p-%d-%d" % (rs, n))
                    with open(src, "wb") as f:
                        f.write(plain)
                    # C encrypts -> Python decrypts
                    enc = src + ".c.ccr"
                    self._c_encrypt(src, enc, rs_text)
                    self._check_c_blob(enc, plain, rs)
                    # Python encrypts -> C decrypts
                    penc = src + ".py.ccr"
                    with open(penc, "wb") as f:
                        f.write(R.ccr1_encrypt_bytes(self.dek, plain, R.ccr1_region_log2(rs)))
                    dec = src + ".c.dec"
                    r = ccr("decrypt", "--key", self.key, "--quiet", penc, dec)
                    self.assertOk(r)
                    self.assertEqual(ccrtest.read(dec), plain)
                    for p in (enc, penc, dec, src):
                        os.unlink(p)

    def test_default_region_size_is_1m(self):
        src = self.path("p")
        ccrtest.write_random(src, MiB + 5)
        enc = self.path("p.ccr")
        self._c_encrypt(src, enc)
        info = self._check_c_blob(enc, ccrtest.read(src), MiB)
        self.assertEqual(info["region_log2"], 20)

    def test_every_region_size_accepted(self):
        plain = os.urandom(70000)
        src = self.path("p")
        with open(src, "wb") as f:
            f.write(plain)
        for log2 in range(12, 25):
            with self.subTest(log2=log2):
                enc = self.path("e%d" % log2)
                self._c_encrypt(src, enc, str(1 << log2))
                self._check_c_blob(enc, plain, 1 << log2)

    def test_fresh_salt_every_write(self):
        src = self.path("p")
        ccrtest.write_random(src, 10000)
        salts = set()
        for i in range(3):
            enc = self.path("e%d" % i)
            self._c_encrypt(src, enc, "4K")
            salts.add(ccrtest.read(enc)[24:56])
        self.assertEqual(len(salts), 3)

    def test_key_id_matches(self):
        r = ccr("key", "id", "--key", self.key)
        self.assertOk(r)
        self.assertEqual(r.out.strip(), R.key_id(self.dek).hex())

    def test_wrong_key_ids_cross(self):
        """C names the two key ids exactly as Python computes them."""
        other = self.path("k2.bin")
        dek2 = ccrtest.write_key(other)
        penc = self.path("p.ccr")
        with open(penc, "wb") as f:
            f.write(R.ccr1_encrypt_bytes(self.dek, b"hello", 12))
        r = ccr("decrypt", "--key", other, penc, self.path("out"))
        self.assertRc(r, 2)
        self.assertIn("wrong key", r.err)
        self.assertIn(R.key_id(self.dek).hex(), r.err)
        self.assertIn(R.key_id(dek2).hex(), r.err)
        self.assertFalse(os.path.exists(self.path("out")))

    def test_inspect_python_blob(self):
        plain = os.urandom(3 * 4096 + 5)
        penc = self.path("p.ccr")
        with open(penc, "wb") as f:
            f.write(R.ccr1_encrypt_bytes(self.dek, plain, 12))
        r = ccr("inspect", "--json", "--key", self.key, penc)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual(j["mode"], "ccr1")
        self.assertEqual(j["blob_size"], 64 + len(plain) + 4 * 16)
        self.assertEqual(j["plaintext_size"], len(plain))
        self.assertEqual(j["region_size"], 4096)
        self.assertEqual(j["regions"], 4)
        self.assertEqual(j["key_id"], R.key_id(self.dek).hex())
        self.assertIs(j["key_matches"], True)
        self.assertIs(j["authenticated"], True)


class CseInterop(CcrTestCase):
    def _c(self, op, src, dst, B):
        r = ccr(op, "--mode", "cleanroom-cse", "--region-size", str(B), "--key", self.key, "--quiet", src, dst)
        self.assertOk(r)

    def _check_c_blob(self, blob_path, n, B):
        k = -(-n // B)
        size = os.path.getsize(blob_path)
        self.assertEqual(size, k * (B + 28) + 8)
        with open(blob_path, "rb") as f:
            f.seek(size - 8)
            pad = struct.unpack(">Q", f.read(8))[0]
            self.assertEqual(pad, k * B - n)
            # layout: nonce || ct || tag under the DEK directly, no AAD; padding decrypts to zeros
            g = AESGCM(self.dek)
            nonces = set()
            if k:
                f.seek((k - 1) * (B + 28))
                last = f.read(B + 28)
                pt = g.decrypt(last[:12], last[12:], None)
                self.assertEqual(pt[B - pad:], b"\0" * pad)
                for i in range(k):
                    f.seek(i * (B + 28))
                    nonces.add(f.read(12))
                self.assertEqual(len(nonces), k, "nonces must be fresh per chunk")
        with open(blob_path, "rb") as f, open(blob_path + ".pydec", "wb") as out:
            self.assertEqual(R.cse_decrypt_stream(self.dek, f, out, B), n)
        self.assertTrue(ccrtest.files_equal(blob_path + ".pydec", blob_path + ".src"))
        os.unlink(blob_path + ".pydec")

    def _both_ways(self, B, n):
        src = self.path("p-%d-%d" % (B, n))
        ccrtest.write_random(src, n)
        enc = src + ".c.cse"
        os.link(src, enc + ".src")  # for comparison in _check_c_blob
        self._c("encrypt", src, enc, B)
        self._check_c_blob(enc, n, B)
        penc = src + ".py.cse"
        with open(src, "rb") as fin, open(penc, "wb") as fout:
            self.assertEqual(R.cse_encrypt_stream(self.dek, fin, fout, B), (n, R.cse_blob_size(n, B)))
        dec = src + ".c.dec"
        self._c("decrypt", penc, dec, B)
        self.assertTrue(ccrtest.files_equal(dec, src), "C decrypt of Python blob differs (B=%d n=%d)" % (B, n))
        for p in (enc, enc + ".src", penc, dec, src):
            os.unlink(p)

    def test_chunk_4k(self):
        rng = random.Random(SEED + 1)
        for n in sizes_for(4096, rng) + [16, 17]:
            with self.subTest(B=4096, size=n):
                self._both_ways(4096, n)

    def test_chunk_1m(self):
        rng = random.Random(SEED + 2)
        for n in sizes_for(MiB, rng, extra=2):
            with self.subTest(B=MiB, size=n):
                self._both_ways(MiB, n)

    def test_chunk_16m_default(self):
        for n in (0, 1, 16 * MiB - 1, 16 * MiB, 16 * MiB + 1, 3 * 16 * MiB):
            with self.subTest(B=16 * MiB, size=n):
                self._both_ways(16 * MiB, n)

    def test_default_chunk_is_16m(self):
        src = self.path("p")
        ccrtest.write_random(src, 1000)
        enc = self.path("p.cse")
        r = ccr("encrypt", "--mode", "cleanroom-cse", "--key", self.key, "--quiet", src, enc)
        self.assertOk(r)
        self.assertEqual(os.path.getsize(enc), 16 * MiB + 28 + 8)
        self.assertEqual(R.cse_decrypt_bytes(self.dek, ccrtest.read(enc), 16 * MiB), ccrtest.read(src))

    def test_worked_examples(self):
        # 1 byte, B = 16 MiB -> 16,777,252 bytes
        src = self.path("one")
        with open(src, "wb") as f:
            f.write(b"\x42")
        enc = self.path("one.cse")
        self._c("encrypt", src, enc, 16 * MiB)
        self.assertEqual(os.path.getsize(enc), 16777252)
        self.assertEqual(R.cse_decrypt_bytes(self.dek, ccrtest.read(enc), 16 * MiB), b"\x42")
        # 9.5 MiB, B = 1 MiB -> 10 chunks, pad 524,288, 10,486,048 bytes (both directions)
        n = 9 * MiB + 512 * KiB
        src = self.path("nine")
        ccrtest.write_random(src, n)
        enc = self.path("nine.cse")
        self._c("encrypt", src, enc, MiB)
        blob = ccrtest.read(enc)
        self.assertEqual(len(blob), 10486048)
        self.assertEqual(len(blob) // (MiB + 28), 10)
        self.assertEqual(struct.unpack(">Q", blob[-8:])[0], 524288)
        self.assertEqual(R.cse_decrypt_bytes(self.dek, blob, MiB), ccrtest.read(src))
        penc = self.path("nine.py.cse")
        with open(penc, "wb") as f:
            f.write(R.cse_encrypt_bytes(self.dek, ccrtest.read(src), MiB))
        self.assertEqual(os.path.getsize(penc), 10486048)
        dec = self.path("nine.dec")
        self._c("decrypt", penc, dec, MiB)
        self.assertTrue(ccrtest.files_equal(dec, src))
        # 100 MiB, B = 16 MiB -> 7 chunks, 117,440,716 bytes (formula only; no 100 MiB file)
        self.assertEqual(R.cse_chunk_count(100 * MiB, 16 * MiB), 7)
        self.assertEqual(R.cse_blob_size(100 * MiB, 16 * MiB), 117440716)

    def test_empty_blob_forms(self):
        """Both a 0-byte and an 8-byte (trailer 0) blob are an empty file."""
        for content in (b"", b"\0" * 8):
            with self.subTest(blob_len=len(content)):
                enc = self.path("e%d.cse" % len(content))
                with open(enc, "wb") as f:
                    f.write(content)
                dec = enc + ".dec"
                self._c("decrypt", enc, dec, 4096)
                self.assertEqual(os.path.getsize(dec), 0)

    def test_fixed_nonces_from_python(self):
        """The nonce is read from the blob, whatever it is."""
        plain = os.urandom(3 * 4096 + 3)
        enc = self.path("n.cse")
        with open(enc, "wb") as f:
            f.write(R.cse_encrypt_bytes(self.dek, plain, 4096, nonce_fn=lambda i: bytes([i]) * 12))
        dec = self.path("n.dec")
        self._c("decrypt", enc, dec, 4096)
        self.assertEqual(ccrtest.read(dec), plain)


class TreeInterop(CcrTestCase):
    def _make_tree(self, root):
        os.makedirs(os.path.join(root, "a", "b", "c"))
        os.makedirs(os.path.join(root, "empty", "deeper"))
        ccrtest.write_random(os.path.join(root, "top.bin"), 100000)
        ccrtest.write_random(os.path.join(root, "a", "x.dat"), 4096)
        ccrtest.write_random(os.path.join(root, "a", "b", "c", "y"), 3 * 4096 + 1)
        open(os.path.join(root, "a", "b", "zero"), "wb").close()
        ccrtest.write_random(os.path.join(root, "a", "b", "ünïcödé ✓.txt"), 777)

    def test_tree_both_directions(self):
        src = self.path("src")
        self._make_tree(src)
        for mode, rs in (("ccr1", "4K"), ("cleanroom-cse", "4096")):
            with self.subTest(mode=mode):
                # C encrypts the tree, Python decrypts it
                cenc = self.path("c-enc-" + mode)
                r = ccr("encrypt", "--mode", mode, "--region-size", rs, "--key", self.key, "--quiet", src, cenc)
                self.assertOk(r)
                pdec = self.path("py-dec-" + mode)
                r = ccrtest.ref("decrypt", "--mode", mode, "--region-size", rs, "--key", self.key, cenc, pdec)
                self.assertOk(r)
                self.assertEqual(ccrtest.tree_listing(pdec), ccrtest.tree_listing(src))
                # Python encrypts the tree, C decrypts it
                penc = self.path("py-enc-" + mode)
                r = ccrtest.ref("encrypt", "--mode", mode, "--region-size", rs, "--key", self.key, src, penc)
                self.assertOk(r)
                cdec = self.path("c-dec-" + mode)
                r = ccr("decrypt", "--mode", mode, "--region-size", rs, "--key", self.key, "--quiet", penc, cdec)
                self.assertOk(r)
                self.assertEqual(ccrtest.tree_listing(cdec), ccrtest.tree_listing(src))
                # same relative paths and sizes per formula
                for rel, (kind, _) in ccrtest.tree_listing(src).items():
                    if kind != "file":
                        continue
                    n = os.path.getsize(os.path.join(src, rel))
                    want = R.ccr1_blob_size(n, 4096) if mode == "ccr1" else R.cse_blob_size(n, 4096)
                    self.assertEqual(os.path.getsize(os.path.join(cenc, rel)), want, rel)


if __name__ == "__main__":
    ccrtest.main()
