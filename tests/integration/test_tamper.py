#!/usr/bin/python3
"""Reliability tamper matrix through the CLI (targets.md, "Reliability"): every header field, region, tag,
swap, splice, truncation, extension, wrong key and wrong region/chunk size is detected with the specified
exit code and a message naming the file, the region/chunk and its stored byte offset; nothing is written
(no output, no temporary file); `inspect --key` reports authenticated false."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import os
import re
import struct

import ccrtest
from ccrtest import CcrTestCase, ccr, ccr_ref as R

RS = 4096            # ccr1 region size used here
RSTORE = RS + 16     # stored region size
B = 4096             # cse chunk size used here
BSTORE = B + 28


def roff(i):
    return 64 + i * RSTORE


def coff(i):
    return i * BSTORE


def flip(data, off, mask=0x01):
    b = bytearray(data)
    b[off] ^= mask
    return bytes(b)


def setb(data, off, val):
    b = bytearray(data)
    b[off] = val
    return bytes(b)


def swap(data, a_off, b_off, length):
    b = bytearray(data)
    a = bytes(b[a_off:a_off + length])
    b[a_off:a_off + length] = b[b_off:b_off + length]
    b[b_off:b_off + length] = a
    return bytes(b)


class TamperBase(CcrTestCase):
    def setUp(self):
        super().setUp()
        self.cases = self.path("cases")
        self.out = self.path("out")
        os.makedirs(self.cases)
        os.makedirs(self.out)
        self.other = self.path("k2.bin")
        self.dek2 = ccrtest.write_key(self.other)

    def write_case(self, name, data):
        p = os.path.join(self.cases, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def check_failure(self, src, rc, unit=None, index=None, offset=None, extra=(), decrypt_args=()):
        """Decrypts src into self.out and checks the failure contract."""
        dst = os.path.join(self.out, os.path.basename(src) + ".dec")
        r = ccr("decrypt", "--key", self.key_for_decrypt, *self.mode_args, *decrypt_args, src, dst)
        self.assertRc(r, rc)
        self.assertFalse(os.path.exists(dst), "output written despite failure")
        self.assertEqual(os.listdir(self.out), [], "something left in the destination directory")
        lines = [l for l in r.err.splitlines() if l.startswith("ccr decrypt:")]
        self.assertTrue(lines, "no `ccr decrypt: ...` error line: %r" % r.err)
        line = "\n".join(lines)
        self.assertIn(src, line, "error does not name the file")
        if unit is not None:
            self.assertRegex(line, r"\b%s %d\b" % (unit, index), "error does not name %s %d" % (unit, index))
            self.assertRegex(line, r"byte offset %d\b" % offset, "error does not give byte offset %d" % offset)
        for pat in extra:
            self.assertRegex(line, pat)
        return r


class Ccr1Tamper(TamperBase):
    mode_args = ()

    def setUp(self):
        super().setUp()
        self.key_for_decrypt = self.key
        self.n = 5 * RS + 1000  # 6 regions, the last one partial
        self.plain = os.urandom(self.n - 1) + b"\x77"
        # the matrix starts from a blob written by the C side
        src = self.path("plain.bin")
        with open(src, "wb") as f:
            f.write(self.plain)
        enc = self.path("good.ccr")
        self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", "4K", src, enc))
        self.blob = ccrtest.read(enc)
        self.assertEqual(len(self.blob), 64 + self.n + 6 * 16)
        self.aligned_plain = os.urandom(4 * RS)
        self.aligned = R.ccr1_encrypt_bytes(self.dek, self.aligned_plain, 12)  # 4 full regions
        self.nregions = 6

    def inspect_says_bad(self, src, rc, index=None, wrong_key=False):
        r = ccr("inspect", "--json", "--mode", "ccr1", "--key", self.key, src)
        self.assertRc(r, rc, "inspect")
        j = ccrtest.parse_json_line(r.out)
        if wrong_key:
            self.assertIs(j["key_matches"], False)
            self.assertIsNot(j["authenticated"], True)
        elif index is None:
            # malformed header/size: strictly "false" is checked in test_inspect_malformed_says_false
            self.assertIsNot(j["authenticated"], True, "inspect: %r" % j)
            self.assertTrue(j["error"])
        else:
            self.assertIs(j["authenticated"], False, "inspect: %r" % j)
            self.assertTrue(j["error"])
        if index is not None:
            self.assertEqual(j["failed_region"], index)

    def run_case(self, name, data, rc=3, index=None, extra=(), any_region=None, decrypt_args=()):
        src = self.write_case(name, data)
        if any_region is not None:
            r = self.check_failure(src, rc, decrypt_args=decrypt_args)
            m = re.search(r"region (\d+) at byte offset (\d+)", r.err) or re.search(
                r"region (\d+).*byte offset (\d+)", r.err)
            self.assertIsNotNone(m, "no region/offset in %r" % r.err)
            i, off = int(m.group(1)), int(m.group(2))
            self.assertIn(i, any_region)
            self.assertEqual(off, roff(i))
        elif index is not None:
            self.check_failure(src, rc, "region", index, roff(index), extra, decrypt_args=decrypt_args)
        else:
            self.check_failure(src, rc, extra=extra, decrypt_args=decrypt_args)
        if not decrypt_args:
            self.inspect_says_bad(src, rc, index if any_region is None else None, wrong_key=(rc == 2))

    def test_sanity_good_blob(self):
        dst = os.path.join(self.out, "good")
        self.assertOk(ccr("decrypt", "--key", self.key, self.path("good.ccr"), dst))
        self.assertEqual(ccrtest.read(dst), self.plain)

    # ---- header fields ----
    def test_header_magic(self):
        for off in (0, 3):
            with self.subTest(off=off):
                self.run_case("magic%d" % off, flip(self.blob, off))

    def test_header_version(self):
        for val in (0, 2, 0xFF):
            with self.subTest(val=val):
                self.run_case("version%d" % val, setb(self.blob, 4, val))

    def test_header_region_log2(self):
        for val in (11, 25, 0, 0xFF):
            with self.subTest(val=val):
                self.run_case("log2_%d" % val, setb(self.blob, 5, val))
        # another valid log2 (13): K and AAD change, so region 0 fails (or the size fits no layout)
        data = setb(self.blob, 5, 13)
        src = self.write_case("log2_13", data)
        r = self.check_failure(src, 3)
        m = re.search(r"region (\d+).*byte offset (\d+)", r.err)
        if m:
            self.assertEqual((int(m.group(1)), int(m.group(2))), (0, 64))

    def test_header_reserved(self):
        for off in (6, 7):
            with self.subTest(off=off):
                self.run_case("res%d" % off, flip(self.blob, off))

    def test_header_key_id(self):
        """A changed key id is reported as a wrong key (exit 2), naming both ids."""
        for off in (8, 15, 23):
            with self.subTest(off=off):
                data = flip(self.blob, off)
                self.run_case("kid%d" % off, data, rc=2,
                              extra=(r"wrong key", data[8:24].hex(), R.key_id(self.dek).hex()))

    def test_header_salt(self):
        for off in (24, 40, 55):
            with self.subTest(off=off):
                self.run_case("salt%d" % off, flip(self.blob, off), index=0)

    def test_header_reserved_tail(self):
        for off in (56, 60, 63):
            with self.subTest(off=off):
                self.run_case("tail%d" % off, flip(self.blob, off, 0x80))

    # ---- regions and tags ----
    def test_region_flips(self):
        for name, off, idx in (
            ("first", roff(0) + 100, 0),
            ("first0", roff(0), 0),
            ("middle", roff(2) + 2000, 2),
            ("last", roff(5) + 500, 5),
            ("lastbyte_plain", roff(5) + 999, 5),
            ("tag3", roff(3) + RS + 7, 3),
            ("tag_first_byte", roff(1) + RS, 1),
            ("tag_last", len(self.blob) - 1, 5),
        ):
            with self.subTest(name=name):
                self.run_case("flip_" + name, flip(self.blob, off, 0x10), index=idx)

    def test_swap_regions(self):
        self.run_case("swap12", swap(self.blob, roff(1), roff(2), RSTORE), any_region=(1, 2))
        self.run_case("swap04", swap(self.blob, roff(0), roff(4), RSTORE), any_region=(0, 4))

    def test_splice_from_other_blob(self):
        """Same key, same plaintext, same size: a region or the header of another blob is rejected."""
        src = self.path("plain.bin")
        other = self.path("other.ccr")
        self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", "4K", src, other))
        ob = ccrtest.read(other)
        self.assertEqual(len(ob), len(self.blob))
        spliced = self.blob[:roff(2)] + ob[roff(2):roff(3)] + self.blob[roff(3):]
        self.run_case("splice_region2", spliced, index=2)
        spliced = self.blob[:roff(5)] + ob[roff(5):]
        self.run_case("splice_last", spliced, index=5)
        self.run_case("splice_header", ob[:64] + self.blob[64:], index=0)

    def test_truncate(self):
        b = self.blob
        self.run_case("trunc_drop_last", b[:roff(5)], index=4)      # at a boundary: region 4 now "final"
        self.run_case("trunc_at_r2", b[:roff(2)], index=1)
        self.run_case("trunc_in_last", b[:-100], index=5)           # between boundaries
        self.run_case("trunc_in_r2", b[:roff(2) + 500], index=2)
        self.run_case("trunc_1", b[:-1], index=5)
        self.run_case("trunc_fits_nothing", b[:roff(1) + 8])        # 8 bytes: no region fits
        self.run_case("trunc_header_only", b[:64])
        self.run_case("trunc_10", b[:10])
        self.run_case("trunc_0", b"")
        a = self.aligned
        self.run_case("aligned_drop_last", a[:roff(3)], index=2)
        self.run_case("aligned_minus_tag", a[:-16], index=3)

    def test_extend(self):
        b = self.blob
        self.run_case("ext_1", b + b"\0", index=5)
        self.run_case("ext_16", b + os.urandom(16), index=5)
        a = self.aligned
        self.run_case("aligned_ext_region", a + os.urandom(RSTORE), index=3)   # old final region no longer final
        self.run_case("aligned_ext_17", a + os.urandom(17), index=3)
        self.run_case("aligned_ext_copy_last", a + a[roff(3):], index=3)
        self.run_case("aligned_ext_1", a + b"\0")                              # fits no layout
        self.run_case("aligned_ext_16", a + os.urandom(16))                    # fits no layout

    def test_inspect_malformed_says_false(self):
        """With --key, a file that cannot be authenticated because its header or size is malformed is
        reported as authenticated: false (not null), like a region failure."""
        cases = {
            "magic": flip(self.blob, 0),
            "version": setb(self.blob, 4, 2),
            "log2": setb(self.blob, 5, 25),
            "reserved": flip(self.blob, 6),
            "tail": flip(self.blob, 63),
            "size": self.blob[:roff(1) + 8],
            "empty": b"",
        }
        bad = []
        for name, data in cases.items():
            src = self.write_case("m_" + name, data)
            r = ccr("inspect", "--json", "--mode", "ccr1", "--key", self.key, src)
            self.assertRc(r, 3, name)
            j = ccrtest.parse_json_line(r.out)
            self.assertTrue(j["error"], name)
            if j["authenticated"] is not False:
                bad.append("%s: authenticated=%r" % (name, j["authenticated"]))
        self.assertEqual(bad, [], "inspect --key on malformed ccr1 files")

    def test_wrong_key(self):
        src = self.write_case("wrongkey", self.blob)
        self.key_for_decrypt = self.other
        r = self.check_failure(src, 2, extra=(r"wrong key",))
        self.assertIn(R.key_id(self.dek).hex(), r.err)
        self.assertIn(R.key_id(self.dek2).hex(), r.err)
        r = ccr("inspect", "--json", "--key", self.other, src)
        self.assertRc(r, 2)
        j = ccrtest.parse_json_line(r.out)
        self.assertIs(j["key_matches"], False)
        self.assertIsNot(j["authenticated"], True)

    def test_wrong_region_size(self):
        src = self.write_case("wrongrs", self.blob)
        for rs in ("8K", "1M"):
            with self.subTest(rs=rs):
                r = self.check_failure(src, 3, decrypt_args=("--region-size", rs))
                want = {"8K": r"(8192|8 ?Ki?B?)", "1M": r"(1048576|1 ?Mi?B?)"}[rs]
                self.assertRegex(r.err, want)
                self.assertRegex(r.err, r"(4096|4 ?Ki?B?)")
        # matching --region-size is fine
        dst = os.path.join(self.out, "ok")
        self.assertOk(ccr("decrypt", "--key", self.key, "--region-size", "4K", src, dst))
        os.unlink(dst)


class CseTamper(TamperBase):
    mode_args = ("--mode", "cleanroom-cse", "--region-size", str(B))

    def setUp(self):
        super().setUp()
        self.key_for_decrypt = self.key
        self.n = 3 * B + 100  # 4 chunks, pad 3996
        self.plain = os.urandom(self.n - 1) + b"\x5a"
        src = self.path("plain.bin")
        with open(src, "wb") as f:
            f.write(self.plain)
        enc = self.path("good.cse")
        self.assertOk(ccr("encrypt", "--key", self.key, *self.mode_args, src, enc))
        self.blob = ccrtest.read(enc)
        self.assertEqual(len(self.blob), 4 * BSTORE + 8)

    def inspect_says_bad(self, src, index=None):
        r = ccr("inspect", "--json", *self.mode_args, "--key", self.key, src)
        self.assertRc(r, 3, "inspect")
        j = ccrtest.parse_json_line(r.out)
        if index is None:
            # malformed size/trailer: strictly "false" is checked in test_inspect_malformed_says_false
            self.assertIsNot(j["authenticated"], True, "inspect: %r" % j)
        else:
            self.assertIs(j["authenticated"], False, "inspect: %r" % j)
        self.assertTrue(j["error"])
        if index is not None:
            self.assertEqual(j["failed_region"], index)

    def run_case(self, name, data, index=None, extra=()):
        src = self.write_case(name, data)
        if index is not None:
            self.check_failure(src, 3, "chunk", index, coff(index), extra)
        else:
            self.check_failure(src, 3, extra=extra)
        self.inspect_says_bad(src, index)

    def test_sanity_good_blob(self):
        dst = os.path.join(self.out, "good")
        self.assertOk(ccr("decrypt", "--key", self.key, *self.mode_args, self.path("good.cse"), dst))
        self.assertEqual(ccrtest.read(dst), self.plain)

    def test_flips(self):
        for name, off, idx in (
            ("nonce0", coff(0) + 5, 0),
            ("nonce0_first", coff(0), 0),
            ("nonce2", coff(2) + 11, 2),
            ("ct1", coff(1) + 12 + 100, 1),
            ("ct3_padding_area", coff(3) + 12 + 2000, 3),
            ("tag1", coff(1) + 12 + B + 3, 1),
            ("tag3_last", coff(4) - 1, 3),
        ):
            with self.subTest(name=name):
                self.run_case("flip_" + name, flip(self.blob, off, 0x20), index=idx)

    def test_inspect_malformed_says_false(self):
        """With --key, a malformed cse blob (size or trailer) is reported as authenticated: false, not null."""
        body = self.blob[:-8]
        cases = {
            "pad_gt_B": body + struct.pack(">Q", B + 1),
            "trailer_cut": self.blob[:-1],
            "extended": self.blob + b"\0",
        }
        bad = []
        for name, data in cases.items():
            src = self.write_case("m_" + name, data)
            r = ccr("inspect", "--json", *self.mode_args, "--key", self.key, src)
            self.assertRc(r, 3, name)
            j = ccrtest.parse_json_line(r.out)
            self.assertTrue(j["error"], name)
            if j["authenticated"] is not False:
                bad.append("%s: authenticated=%r" % (name, j["authenticated"]))
        self.assertEqual(bad, [], "inspect --key on malformed cleanroom-cse files")

    def test_wrong_key(self):
        src = self.write_case("wrongkey", self.blob)
        self.key_for_decrypt = self.other
        self.check_failure(src, 3, "chunk", 0, 0)

    def test_wrong_chunk_size(self):
        src = self.write_case("wrongb", self.blob)
        for args in (("--mode", "cleanroom-cse", "--region-size", "8192"),
                     ("--mode", "cleanroom-cse", "--region-size", "2048"),
                     ("--mode", "cleanroom-cse")):
            with self.subTest(args=args):
                dst = os.path.join(self.out, "wrongb.dec")
                r = ccr("decrypt", "--key", self.key, *args, src, dst)
                self.assertRc(r, 3)
                self.assertIn(src, r.err)
                self.assertEqual(os.listdir(self.out), [])

    def test_bad_trailer(self):
        body = self.blob[:-8]
        self.run_case("pad_gt_B", body + struct.pack(">Q", B + 1))
        self.run_case("pad_huge", body + struct.pack(">Q", 1 << 63))
        self.run_case("pad_all_ones", body + b"\xff" * 8)
        # one more padding byte than written: the last data byte (0x5a) would have to be zero
        self.run_case("pad_plus1", body + struct.pack(">Q", 3996 + 1), index=3)
        self.run_case("trailer_cut", self.blob[:-1])
        self.run_case("trailer_missing", body)
        self.run_case("extended", self.blob + b"\0")

    def test_nonzero_padding(self):
        bad = R.cse_encrypt_bytes(self.dek, self.plain, B, pad_byte=1)
        self.assertEqual(len(bad), len(self.blob))
        self.run_case("nonzero_pad", bad, index=3)
        # a single non-zero byte at the very end of the padding
        bad = R.cse_encrypt_bytes(self.dek, self.plain + b"\0" * (3996 - 1) + b"\x01", B)[:-8] + struct.pack(">Q", 3996)
        self.run_case("nonzero_pad_lastbyte", bad, index=3)

    def test_truncate_at_chunk_boundary(self):
        """Dropping the last chunk but keeping the trailer makes chunk 2's data count as padding."""
        self.run_case("drop_last_chunk", self.blob[:coff(3)] + self.blob[-8:], index=2)


class TreeTamper(CcrTestCase):
    def _tree(self, mode_args):
        src = self.path("src")
        os.makedirs(os.path.join(src, "sub"))
        files = {"a.bin": 10000, "sub/bad.bin": 9000, "sub/c.bin": 0, "z.bin": 4096}
        for rel, n in files.items():
            ccrtest.write_random(os.path.join(src, rel), n)
        enc = self.path("enc")
        self.assertOk(ccr("encrypt", "--key", self.key, *mode_args, src, enc))
        return src, enc, files

    def _check(self, mode_args, tamper_off, unit):
        src, enc, files = self._tree(mode_args)
        bad = os.path.join(enc, "sub", "bad.bin")
        with open(bad, "r+b") as f:
            f.seek(tamper_off)
            b = f.read(1)
            f.seek(tamper_off)
            f.write(bytes([b[0] ^ 0xFF]))
        dec = self.path("dec")
        r = ccr("decrypt", "--key", self.key, *mode_args, "--json", enc, dec)
        self.assertRc(r, 3)
        for rel in files:
            p = os.path.join(dec, rel)
            if rel == "sub/bad.bin":
                self.assertFalse(os.path.exists(p), "tampered file was written")
            else:
                self.assertTrue(ccrtest.files_equal(p, os.path.join(src, rel)), rel)
        self.assertNoTemp(dec)
        lines = [l for l in r.err.splitlines() if "bad.bin" in l]
        self.assertEqual(len(lines), 1, r.err)
        self.assertRegex(lines[0], r"^ccr decrypt: .*bad\.bin.*\b%s 0\b.*byte offset %d\b" % (unit, 64 if unit == "region" else 0))
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual(j["errors"], 1)
        self.assertEqual(len(j["failed"]), 1)
        self.assertIn("bad.bin", j["failed"][0]["path"])
        self.assertTrue(j["failed"][0]["error"])
        self.assertIn(j["files"], (3, 4))

    def test_tree_ccr1(self):
        self._check(("--region-size", "4K"), 64 + 10, "region")

    def test_tree_cse(self):
        self._check(("--mode", "cleanroom-cse", "--region-size", "4096"), 20, "chunk")

    def test_tree_many_failures(self):
        """Every failed file is reported (stderr line and --json entry), the good one is still written."""
        src = self.path("src")
        os.makedirs(src)
        names = ["f%02d" % i for i in range(9)]
        for n in names:
            ccrtest.write_random(os.path.join(src, n), 5000)
        enc = self.path("enc")
        self.assertOk(ccr("encrypt", "--key", self.key, "--region-size", "4K", src, enc))
        bad = names[1:]
        for n in bad:
            with open(os.path.join(enc, n), "r+b") as f:
                f.seek(64 + 7)
                f.write(b"\x00\xff")
        dec = self.path("dec")
        r = ccr("decrypt", "--key", self.key, "--json", enc, dec)
        self.assertRc(r, 3)
        self.assertEqual(os.listdir(dec), [names[0]])
        self.assertTrue(ccrtest.files_equal(os.path.join(dec, names[0]), os.path.join(src, names[0])))
        j = ccrtest.parse_json_line(r.out)
        self.assertEqual(j["errors"], len(bad))
        self.assertEqual(sorted(os.path.basename(f["path"]) for f in j["failed"]), bad)
        for n in bad:
            self.assertRegex(r.err, r"ccr decrypt: .*%s: .*region 0 at byte offset 64\b" % n)

    def test_tree_severity(self):
        """Wrong key on one file (2) and tampering on another (3): exit 3; wrong key alone: exit 2."""
        src, enc, files = self._tree(("--region-size", "4K"))
        k2 = self.path("k2.bin")
        ccrtest.write_key(k2)
        one = self.path("one")
        self.assertOk(ccr("encrypt", "--key", k2, os.path.join(src, "a.bin"), one))
        os.replace(one, os.path.join(enc, "a.bin"))  # a.bin is now under another key
        dec = self.path("dec2")
        r = ccr("decrypt", "--key", self.key, enc, dec)
        self.assertRc(r, 2)
        self.assertRegex(r.err, r"a\.bin.*wrong key")
        self.assertFalse(os.path.exists(os.path.join(dec, "a.bin")))
        self.assertTrue(ccrtest.files_equal(os.path.join(dec, "z.bin"), os.path.join(src, "z.bin")))
        with open(os.path.join(enc, "sub", "bad.bin"), "r+b") as f:
            f.seek(100)
            f.write(b"\0\1\2")
        dec = self.path("dec3")
        r = ccr("decrypt", "--key", self.key, "--json", enc, dec)
        self.assertRc(r, 3)
        self.assertEqual(ccrtest.parse_json_line(r.out)["errors"], 2)
        self.assertNoTemp(dec)


if __name__ == "__main__":
    ccrtest.main()
