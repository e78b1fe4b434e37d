#!/usr/bin/python3
"""Self-test of the independent Python implementation (tests/interop/ccr_ref.py) against formats.md,
published vectors (RFC 5869 HKDF, NIST GCM) and hand-built constructions. Needs no `ccr` binary."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import hashlib
import hmac
import io
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import ccrtest
from ccrtest import KiB, MiB, CcrTestCase, ccr_ref as R


def hkdf_manual(ikm, salt, info, length):
    """RFC 5869 with hmac only (independent of cryptography's HKDF)."""
    prk = hmac.new(salt if salt else b"\0" * 32, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


class Primitives(CcrTestCase):
    def test_hkdf_rfc5869_case1(self):
        okm = hkdf_manual(b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
        self.assertEqual(
            okm.hex(),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        )

    def test_gcm_nist_vectors(self):
        g = AESGCM(b"\0" * 32)
        self.assertEqual(g.encrypt(b"\0" * 12, b"", None).hex(), "530f8afbc74536b9a963b4f1c4cb738b")
        self.assertEqual(
            g.encrypt(b"\0" * 12, b"\0" * 16, None).hex(),
            "cea7403d4d606b6e074ec5d3baf39d18" "d0d1c8a799996bf0265b98b5d48ab919",
        )

    def test_key_id(self):
        dek = bytes(range(32))
        self.assertEqual(R.key_id(dek), hashlib.sha256(b"ccr1-key-id" + dek).digest()[:16])
        self.assertEqual(len(R.key_id(dek)), 16)

    def test_blob_key_matches_manual_hkdf(self):
        dek = os.urandom(32)
        h = R.ccr1_build_header(dek, 16)
        self.assertEqual(R.ccr1_blob_key(dek, h), hkdf_manual(dek, h[24:56], b"ccr1-region-key" + h[:24], 32))

    def test_nonce_layout(self):
        self.assertEqual(R.ccr1_nonce(0, False), bytes(12))
        self.assertEqual(R.ccr1_nonce(1, True).hex(), "0000000000000001" "000000" "01")
        self.assertEqual(R.ccr1_nonce(0x0102030405060708, False).hex(), "0102030405060708" "00000000")


class Ccr1(CcrTestCase):
    def test_header_layout(self):
        dek = os.urandom(32)
        salt = os.urandom(32)
        h = R.ccr1_build_header(dek, 20, salt)
        self.assertEqual(len(h), 64)
        self.assertEqual(h[0:4], b"CCR1")
        self.assertEqual(h[4], 1)
        self.assertEqual(h[5], 20)
        self.assertEqual(h[6:8], b"\0\0")
        self.assertEqual(h[8:24], R.key_id(dek))
        self.assertEqual(h[24:56], salt)
        self.assertEqual(h[56:64], b"\0" * 8)
        info = R.ccr1_parse_header(h)
        self.assertEqual(info["region_size"], 1 << 20)

    def test_header_rejections(self):
        dek = os.urandom(32)
        h = bytearray(R.ccr1_build_header(dek, 12))
        for off, val in ((0, 0x63), (3, 0x32), (4, 2), (4, 0), (5, 11), (5, 25), (6, 1), (7, 1), (56, 1), (63, 0x80)):
            b = bytearray(h)
            b[off] = val
            with self.assertRaises(R.FormatError, msg="offset %d" % off):
                R.ccr1_parse_header(bytes(b))
        for log2 in (12, 24):
            b = bytearray(h)
            b[5] = log2
            R.ccr1_parse_header(bytes(b))

    def test_sizes_and_round_trip(self):
        dek = os.urandom(32)
        for log2 in (12, 16):
            Rs = 1 << log2
            for n in (0, 1, Rs - 1, Rs, Rs + 1, 3 * Rs, 3 * Rs - 1, 3 * Rs + 7):
                data = os.urandom(n)
                blob = R.ccr1_encrypt_bytes(dek, data, log2)
                regions = max(1, -(-n // Rs))
                self.assertEqual(len(blob), 64 + n + 16 * regions)
                self.assertEqual(R.ccr1_blob_size(n, Rs), len(blob))
                self.assertEqual(R.ccr1_geometry(len(blob), Rs), (regions, n))
                self.assertEqual(R.ccr1_decrypt_bytes(dek, blob), data)
                self.assertEqual(R.ccr1_decrypt_bytes(dek, blob, Rs), data)
                with self.assertRaises(R.FormatError):
                    R.ccr1_decrypt_bytes(dek, blob, Rs * 2)

    def test_manual_region_decrypt(self):
        """Each region is AES-GCM(K, i||000||final, AAD=header) — checked without the module's decrypt."""
        dek = os.urandom(32)
        data = os.urandom(2 * 4096 + 100)
        blob = R.ccr1_encrypt_bytes(dek, data, 12)
        h = blob[:64]
        K = hkdf_manual(dek, h[24:56], b"ccr1-region-key" + h[:24], 32)
        g = AESGCM(K)
        regs = [blob[64:64 + 4112], blob[64 + 4112:64 + 2 * 4112], blob[64 + 2 * 4112:]]
        self.assertEqual(len(regs[2]), 116)
        out = b""
        for i, r in enumerate(regs):
            nonce = struct.pack(">Q", i) + b"\0\0\0" + (b"\1" if i == 2 else b"\0")
            out += g.decrypt(nonce, r, h)
            wrong = struct.pack(">Q", i) + b"\0\0\0" + (b"\0" if i == 2 else b"\1")
            with self.assertRaises(InvalidTag):
                g.decrypt(wrong, r, h)
            with self.assertRaises(InvalidTag):
                g.decrypt(nonce, r, None)
        self.assertEqual(out, data)

    def test_empty_is_one_final_region(self):
        dek = os.urandom(32)
        blob = R.ccr1_encrypt_bytes(dek, b"", 20)
        self.assertEqual(len(blob), 80)
        K = R.ccr1_blob_key(dek, blob[:64])
        self.assertEqual(AESGCM(K).decrypt(R.ccr1_nonce(0, True), blob[64:], blob[:64]), b"")

    def test_geometry_rejects(self):
        Rs = 4096
        for S in (0, 63, 64, 79, 64 + 4112 + 1, 64 + 4112 + 15, 64 + 4112 + 16, 64 + 2 * 4112 + 16):
            with self.assertRaises(R.FormatError, msg="S=%d" % S):
                R.ccr1_geometry(S, Rs)
        self.assertEqual(R.ccr1_geometry(80, Rs), (1, 0))
        self.assertEqual(R.ccr1_geometry(64 + 4112 + 17, Rs), (2, 4097))

    def test_tamper_wrong_key_swap_truncate(self):
        dek = os.urandom(32)
        data = os.urandom(3 * 4096 + 10)
        blob = R.ccr1_encrypt_bytes(dek, data, 12)
        with self.assertRaises(R.WrongKeyError):
            R.ccr1_decrypt_bytes(os.urandom(32), blob)
        for off in (8, 30, 64, 64 + 4096 + 3, 64 + 4112 + 100, len(blob) - 1):
            b = bytearray(blob)
            b[off] ^= 1
            with self.assertRaises((R.AuthError, R.WrongKeyError), msg="off %d" % off):
                R.ccr1_decrypt_bytes(dek, bytes(b))
        b = bytearray(blob)
        b[64 + 4112 * 2 + 5] ^= 0x40
        with self.assertRaises(R.AuthError) as cm:
            R.ccr1_decrypt_bytes(dek, bytes(b))
        self.assertEqual((cm.exception.index, cm.exception.offset), (2, 64 + 2 * 4112))
        sw = blob[:64] + blob[64 + 4112:64 + 2 * 4112] + blob[64:64 + 4112] + blob[64 + 2 * 4112:]
        with self.assertRaises(R.AuthError) as cm:
            R.ccr1_decrypt_bytes(dek, sw)
        self.assertEqual(cm.exception.index, 0)
        for cut in (64 + 4112, 64 + 2 * 4112, 64 + 3 * 4112, len(blob) - 1, 64 + 3 * 4112 + 16):
            with self.assertRaises((R.AuthError, R.FormatError), msg="cut %d" % cut):
                R.ccr1_decrypt_bytes(dek, blob[:cut])
        other = R.ccr1_encrypt_bytes(dek, data, 12)
        spliced = blob[:64 + 4112] + other[64 + 4112:64 + 2 * 4112] + blob[64 + 2 * 4112:]
        with self.assertRaises(R.AuthError) as cm:
            R.ccr1_decrypt_bytes(dek, spliced)
        self.assertEqual(cm.exception.index, 1)

    def test_random_access(self):
        dek = os.urandom(32)
        data = os.urandom(5 * 4096 + 1)
        p = self.path("b")
        with open(p, "wb") as f:
            f.write(R.ccr1_encrypt_bytes(dek, data, 12))
        with open(p, "rb") as f:
            for i in range(6):
                pt, off = R.ccr1_decrypt_region(dek, f, i)
                self.assertEqual(off, i * 4096)
                self.assertEqual(pt, data[off:off + 4096])


class Cse(CcrTestCase):
    def test_worked_sizes(self):
        self.assertEqual(R.cse_blob_size(1, 16 * MiB), 16777252)
        self.assertEqual(R.cse_chunk_count(100 * MiB, 16 * MiB), 7)
        self.assertEqual(R.cse_blob_size(100 * MiB, 16 * MiB), 117440716)
        n = 9 * MiB + 512 * KiB
        self.assertEqual(R.cse_chunk_count(n, MiB), 10)
        self.assertEqual(10 * MiB - n, 524288)
        self.assertEqual(R.cse_blob_size(n, MiB), 10486048)
        self.assertEqual(R.cse_blob_size(0, MiB), 8)

    def test_round_trip_layout(self):
        dek = os.urandom(32)
        B = 4096
        for n in (0, 1, B - 1, B, B + 1, 3 * B, 3 * B + 17):
            data = os.urandom(n)
            blob = R.cse_encrypt_bytes(dek, data, B)
            k = -(-n // B)
            self.assertEqual(len(blob), k * (B + 28) + 8)
            pad = k * B - n
            self.assertEqual(struct.unpack(">Q", blob[-8:])[0], pad)
            self.assertEqual(R.cse_decrypt_bytes(dek, blob, B), data)
            # manual decrypt: nonce || ct(B) || tag, no AAD, zero padding
            g = AESGCM(dek)
            out = b""
            for i in range(k):
                c = blob[i * (B + 28):(i + 1) * (B + 28)]
                out += g.decrypt(c[:12], c[12:], None)
            self.assertEqual(out, data + b"\0" * pad)

    def test_empty_forms(self):
        dek = os.urandom(32)
        self.assertEqual(R.cse_decrypt_bytes(dek, b"", 4096), b"")
        self.assertEqual(R.cse_decrypt_bytes(dek, b"\0" * 8, 4096), b"")
        with self.assertRaises(R.FormatError):
            R.cse_decrypt_bytes(dek, struct.pack(">Q", 1), 4096)

    def test_rejections(self):
        dek = os.urandom(32)
        B = 4096
        blob = R.cse_encrypt_bytes(dek, os.urandom(2 * B + 4) + b"\x5a", B)
        with self.assertRaises(R.AuthError) as cm:
            R.cse_decrypt_bytes(os.urandom(32), blob, B)
        self.assertEqual((cm.exception.index, cm.exception.offset), (0, 0))
        for off, idx in ((0, 0), (11, 0), (12, 0), (B + 27, 0), (B + 28, 1), (2 * (B + 28) + 40, 2)):
            b = bytearray(blob)
            b[off] ^= 4
            with self.assertRaises(R.AuthError, msg="off %d" % off) as cm:
                R.cse_decrypt_bytes(dek, bytes(b), B)
            self.assertEqual(cm.exception.index, idx)
            self.assertEqual(cm.exception.offset, idx * (B + 28))
        with self.assertRaises(R.FormatError):
            R.cse_decrypt_bytes(dek, blob, 2 * B)
        with self.assertRaises(R.FormatError):
            R.cse_decrypt_bytes(dek, blob[:-8] + struct.pack(">Q", B + 1), B)
        with self.assertRaises(R.FormatError):
            R.cse_decrypt_bytes(dek, blob[:-1], B)
        # a larger pad claims the last data byte (non-zero) is padding: rejected
        with self.assertRaises(R.AuthError):
            R.cse_decrypt_bytes(dek, blob[:-8] + struct.pack(">Q", B - 5 + 1), B)
        # a smaller pad turns one zero padding byte into data: undetectable (unauthenticated trailer)
        self.assertEqual(len(R.cse_decrypt_bytes(dek, blob[:-8] + struct.pack(">Q", B - 5 - 1), B)), 2 * B + 6)
        bad = R.cse_encrypt_bytes(dek, os.urandom(B + 5), B, pad_byte=7)
        with self.assertRaises(R.AuthError) as cm:
            R.cse_decrypt_bytes(dek, bad, B)
        self.assertEqual(cm.exception.index, 1)

    def test_random_access(self):
        dek = os.urandom(32)
        B = 4096
        data = os.urandom(3 * B + 9)
        p = self.path("b")
        with open(p, "wb") as f:
            f.write(R.cse_encrypt_bytes(dek, data, B))
        with open(p, "rb") as f:
            for i in range(4):
                pt, off = R.cse_decrypt_chunk(dek, f, i, B)
                self.assertEqual(pt, data[off:off + B])


class RefCli(CcrTestCase):
    def test_file_and_tree(self):
        src = self.path("src")
        os.makedirs(os.path.join(src, "a", "b"))
        os.makedirs(os.path.join(src, "empty"))
        ccrtest.write_random(os.path.join(src, "a", "b", "x.bin"), 70000)
        open(os.path.join(src, "e"), "wb").close()
        for mode, rs in (("ccr1", "4K"), ("cleanroom-cse", "1M")):
            enc, dec = self.path("enc-" + mode), self.path("dec-" + mode)
            self.assertOk(ccrtest.ref("encrypt", "--mode", mode, "--key", self.key, "--region-size", rs, src, enc))
            self.assertOk(ccrtest.ref("decrypt", "--mode", mode, "--key", self.key, "--region-size", rs, enc, dec))
            self.assertEqual(ccrtest.tree_listing(src), ccrtest.tree_listing(dec))
        r = ccrtest.ref("keyid", "--key", self.key)
        self.assertOk(r)
        self.assertEqual(r.out.strip(), R.key_id(self.dek).hex())
        other = self.path("k2")
        ccrtest.write_key(other)
        r = ccrtest.ref("decrypt", "--key", other, self.path("enc-ccr1", "e"), self.path("x"))
        self.assertRc(r, 2)
        self.assertIn("wrong key", r.err)
        self.assertFalse(os.path.exists(self.path("x")))


if __name__ == "__main__":
    ccrtest.main(needs_ccr=False)
