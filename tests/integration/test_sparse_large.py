#!/usr/bin/python3
"""Files beyond 4 GiB (label "large"): a sparse source of 4 GiB + R + 12345 bytes (R = the region/chunk
size, so that offset 2^32+R exists) with distinct markers at offsets 0, 2^32-1, 2^32, 2^32+R and the end
is encrypted, inspected and decrypted by `ccr` for ccr1
(R = 1 MiB) and cleanroom-cse (B = 16 MiB); the result is compared with cmp, and the Python implementation
decrypts the region/chunk(s) around offset 2^32 of the C output on its own (random access).
Needs about 8.1 GiB free in $CCR_LARGE_TMP (default /tmp); the big files are deleted at the end."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import os
import shutil
import subprocess
import tempfile

import ccrtest
from ccrtest import MiB, CcrTestCase, ccr, ccr_ref as R

R1 = MiB
B = 16 * MiB
TWO32 = 1 << 32


def size_for(unit):
    return TWO32 + unit + 12345


def markers(unit):
    SIZE = size_for(unit)
    return {
        0: b"\xa0START-MARKER\xa0",
        TWO32 - 1: b"\xa1",
        TWO32: b"\xa2\xa2AT-2^32\xa2",
        TWO32 + unit: b"\xa3AT-2^32+R\xa3",
        SIZE - 9: b"\xa4THE-END\xa4",
    }


def make_sparse(path, unit):
    SIZE = size_for(unit)
    with open(path, "wb") as f:
        f.truncate(SIZE)
        for off, m in markers(unit).items():
            f.seek(off)
            f.write(m)
    assert os.path.getsize(path) == SIZE


def expected_bytes(unit, start, length):
    """The plaintext bytes [start, start+length) of the sparse source."""
    buf = bytearray(length)
    for off, m in markers(unit).items():
        for j, b in enumerate(m):
            if start <= off + j < start + length:
                buf[off + j - start] = b
    return bytes(buf)


class Large(CcrTestCase):
    tmp_parent = os.environ.get("CCR_LARGE_TMP") or None

    def setUp(self):
        super().setUp()
        free = shutil.disk_usage(self.tmp).free
        if free < 9 * (1 << 30):
            self.skipTest("needs ~9 GiB free in %s, have %.1f GiB" % (self.tmp, free / (1 << 30)))

    def _run(self, mode, rs_text, unit, blob_size, nunits):
        SIZE = size_for(unit)
        src = self.path("sparse.bin")
        make_sparse(src, unit)
        enc = self.path("enc")
        dec = self.path("dec")
        args = ["--mode", mode, "--region-size", rs_text]
        r = ccr("encrypt", "--key", self.key, "--quiet", *args, src, enc, timeout=900)
        self.assertOk(r)
        self.assertEqual(os.path.getsize(enc), blob_size)
        # inspect (with the key: every region authenticates)
        r = ccr("inspect", "--json", "--key", self.key, *args, enc, timeout=900)
        self.assertOk(r)
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual(j["mode"], mode)
        self.assertEqual(j["plaintext_size"], SIZE)
        self.assertEqual(j["blob_size"], blob_size)
        self.assertEqual(j["region_size"], unit)
        self.assertEqual(j["regions"], nunits)
        self.assertIs(j["authenticated"], True)
        # Python decrypts the unit(s) holding 2^32-1, 2^32, 2^32+R and the last one, alone
        with open(enc, "rb") as f:
            for off in (TWO32 - 1, TWO32, TWO32 + unit, SIZE - 1):
                idx = off // unit
                if mode == "ccr1":
                    pt, start = R.ccr1_decrypt_region(self.dek, f, idx, blob_size)
                else:
                    pt, start = R.cse_decrypt_chunk(self.dek, f, idx, unit)
                self.assertEqual(start, idx * unit)
                self.assertEqual(len(pt), min(unit, SIZE - start))
                self.assertEqual(pt, expected_bytes(unit, start, len(pt)), "unit %d" % idx)
        # decrypt with the C tool and compare the whole file
        r = ccr("decrypt", "--key", self.key, "--quiet", *args, enc, dec, timeout=900)
        self.assertOk(r)
        os.unlink(enc)
        self.assertEqual(os.path.getsize(dec), SIZE)
        p = subprocess.run(["cmp", src, dec], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(dec, "rb") as f:
            for off, m in markers(unit).items():
                f.seek(off)
                self.assertEqual(f.read(len(m)), m, "marker at %d" % off)
        os.unlink(dec)
        os.unlink(src)

    def test_ccr1_1m(self):
        size = size_for(R1)
        n = -(-size // R1)
        self.assertEqual(n, 4098)
        self._run("ccr1", "1M", R1, 64 + size + 16 * n, n)

    def test_cse_16m(self):
        size = size_for(B)
        k = -(-size // B)
        self.assertEqual(k, 258)
        self._run("cleanroom-cse", "16M", B, k * (B + 28) + 8, k)


if __name__ == "__main__":
    ccrtest.main()
