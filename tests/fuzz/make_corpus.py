#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Run with Debian's interpreter (it has python3-cryptography): /usr/bin/python3 tests/fuzz/make_corpus.py
The ccr1 blobs are built here, independently of the C code, under the fixed key of the fuzz targets
(bytes 00..1f), with salts derived from the file name so the output is reproducible. Files found by
fuzzing (named found-*) are kept; everything else is rewritten.
"""
import hashlib
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = os.path.dirname(os.path.abspath(__file__))
FIXED_KEY = bytes(range(32))
OTHER_KEY = bytes(0xA0 + i for i in range(32))


def key_id(dek):
    return hashlib.sha256(b"ccr1-key-id" + dek).digest()[:16]


def header(dek, log2, salt):
    return b"CCR1" + bytes([1, log2, 0, 0]) + key_id(dek) + salt + bytes(8)


def ccr1_blob(dek, log2, pt, name):
    salt = hashlib.sha256(name.encode()).digest()
    hdr = header(dek, log2, salt)
    k = HKDF(hashes.SHA256(), 32, salt, b"ccr1-region-key" + hdr[:24]).derive(dek)
    r = 1 << log2
    n = max(1, -(-len(pt) // r))
    out = hdr
    for i in range(n):
        nonce = i.to_bytes(8, "big") + bytes(3) + bytes([1 if i == n - 1 else 0])
        out += AESGCM(k).encrypt(nonce, pt[i * r:(i + 1) * r], hdr)
    return out


def pattern(n, seed):
    return bytes((i * 31 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    assert len(data) < 64 * 1024, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clean(target):
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            if not f.startswith("found-"):
                os.remove(os.path.join(d, f))


def u64(v):
    return struct.pack(">Q", v)


def u32(v):
    return struct.pack(">I", v)


def header_corpus():
    t = "fuzz_ccr1_header"
    clean(t)
    salt = hashlib.sha256(b"header").digest()
    good = header(FIXED_KEY, 12, salt)
    # map_range numbers after the header: mode, log2, N, offset, len
    write(t, "valid-fixed-key-log12", good + bytes([0x0F, 0]) + u64(3 * 4096 + 7) + u64(4095) + u64(2))
    write(t, "valid-fixed-key-log20", header(FIXED_KEY, 20, salt) + bytes([0, 20]) + u64(5 << 20) + u64(0) + u64(1 << 21))
    write(t, "valid-fixed-key-log24", header(FIXED_KEY, 24, salt) + bytes([0, 24]) + u64(0) + u64(0) + u64(0))
    write(t, "valid-other-key", header(OTHER_KEY, 16, salt) + bytes([0, 16]) + u64(1 << 16) + u64(1 << 16) + u64(5))
    write(t, "bad-magic", b"CCR2" + good[4:])
    write(t, "bad-version-7", good[:4] + b"\x07" + good[5:])
    write(t, "bad-log2-30", good[:5] + b"\x1e" + good[6:])
    write(t, "bad-log2-11", good[:5] + b"\x0b" + good[6:])
    write(t, "bad-reserved-6", good[:6] + b"\x01" + good[7:])
    write(t, "bad-reserved-63", good[:63] + b"\x80")
    write(t, "map-only-short", bytes([0x00, 12]) + u64(12345) + u64(12345) + u64(1))
    write(t, "map-huge-n", good + bytes([0x00, 12]) + u64(2**64 - 1) + u64(0) + u64(2**64 - 1))
    write(t, "map-offset-past-end", good + bytes([0x00, 12]) + u64(100) + u64(101) + u64(0))
    write(t, "map-bad-log2", good + bytes([0x00, 40]) + u64(100) + u64(0) + u64(1))


def blob_size_corpus():
    t = "fuzz_blob_size"
    clean(t)
    mib = 1 << 20

    def seed(c_mode, log2, s, x_mode, b, cs, pad):
        return bytes([c_mode, log2]) + u64(s) + bytes([x_mode]) + u32(b) + u64(cs) + u64(pad)

    write(t, "empty-both", seed(0, 12, 80, 0, 16, 8, 0))
    write(t, "ccr1-4097-cse-worked-1mib", seed(0, 12, 64 + 4097 + 32, 0, mib, 10486048, 524288))
    write(t, "ccr1-1mib-cse-worked-16mib-1byte", seed(0, 20, 64 + (1 << 20) + 16, 0, 16 * mib, 16777252, 16 * mib - 1))
    write(t, "cse-worked-100mib", seed(0, 20, 2**64 - 1, 0, 16 * mib, 117440716, 7 * 16 * mib - 100 * mib))
    write(t, "ccr1-no-layout", seed(0, 12, 64 + 4112 + 10, 0, 16, 9, 0))
    write(t, "ccr1-header-only", seed(0, 12, 64, 0, 16, 44 + 8, 17))
    write(t, "bad-log2-bad-chunk", seed(0, 30, 1000, 0, 15, 1000, 0))
    write(t, "cse-pad-equals-b", seed(0, 13, 100000, 0, 16, 2 * 44 + 8, 16))
    write(t, "cse-8-bytes-nonzero", seed(0, 14, 81, 0, 64, 8, 1))
    write(t, "shaped", seed(0xFF, 7, 0x123456789ABCDEF, 0xFF, 0xFFFF, 0x1234567890, 5))
    write(t, "short", bytes([1, 2, 3]))


def open_corpus():
    t = "fuzz_ccr1_open"
    clean(t)
    for n in (0, 1, 100, 4095, 4096, 4097, 9000, 3 * 4096):
        name = "valid-log12-%d" % n
        write(t, name, ccr1_blob(FIXED_KEY, 12, pattern(n, n), name))
    write(t, "valid-log13-5000", ccr1_blob(FIXED_KEY, 13, pattern(5000, 1), "valid-log13-5000"))
    write(t, "other-key", ccr1_blob(OTHER_KEY, 12, pattern(50, 2), "other-key"))
    b = bytearray(ccr1_blob(FIXED_KEY, 12, pattern(5000, 3), "tampered"))
    b[64 + 4112 + 3] ^= 1  # second region
    write(t, "tampered-region-1", bytes(b))
    b = ccr1_blob(FIXED_KEY, 12, pattern(9000, 4), "truncated")
    write(t, "truncated-at-boundary", b[:64 + 2 * 4112])
    write(t, "truncated-by-one", b[:-1])
    write(t, "header-only", b[:64])


if __name__ == "__main__":
    header_corpus()
    blob_size_corpus()
    open_corpus()
