#!/usr/bin/python3
"""Independent reference implementation of the ccr on-storage formats, written from
/work/shared/design/formats.md only (not from the C sources), for cross-implementation tests.

Formats:
  ccr1           64-byte header || regions (ciphertext || 16-byte tag); per-blob key from HKDF-SHA256.
  cleanroom-cse  per chunk: random nonce (12) || AES-256-GCM(DEK, chunk padded to B) (B) || tag (16);
                 then an 8-byte big-endian trailer with the number of zero padding bytes.

Usable as a module (see the functions below) and as a command:
  ccr_ref.py encrypt|decrypt --mode ccr1|cleanroom-cse --key KEYFILE [--region-size N] SRC DST
  ccr_ref.py keyid --key KEYFILE
Exit codes follow the ccr CLI: 0 ok, 1 usage, 2 I/O or wrong key (ccr1), 3 authentication/format failure.

Everything streams: at most one region/chunk (plus one read-ahead) is held in memory.
Needs Debian's /usr/bin/python3 (python3-cryptography).
"""

import argparse
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_LEN = 32
TAG_LEN = 16
NONCE_LEN = 12

# ---- ccr1 constants (formats.md, "ccr1 — native streaming AEAD format") ----------------------------------
CCR1_MAGIC = b"CCR1"
CCR1_VERSION = 1
CCR1_HEADER_LEN = 64
CCR1_LOG2_MIN = 12
CCR1_LOG2_MAX = 24
CCR1_LOG2_DEFAULT = 20
CCR1_KEYID_PREFIX = b"ccr1-key-id"
CCR1_HKDF_INFO_PREFIX = b"ccr1-region-key"

# Header field layout: name -> (offset, size)
CCR1_FIELDS = {
    "magic": (0, 4),
    "version": (4, 1),
    "region_log2": (5, 1),
    "reserved1": (6, 2),
    "key_id": (8, 16),
    "salt": (24, 32),
    "reserved2": (56, 8),
}

# ---- cleanroom-cse constants --------------------------------------------------------------------------------
CSE_DEFAULT_CHUNK = 16 * 1024 * 1024
CSE_OVERHEAD = NONCE_LEN + TAG_LEN  # 28 bytes per chunk
CSE_TRAILER_LEN = 8


class CcrError(Exception):
    """Base class. exit_code mirrors the ccr CLI."""

    exit_code = 2


class FormatError(CcrError):
    """Malformed header or size (an authentication/format failure)."""

    exit_code = 3


class AuthError(CcrError):
    """A region/chunk failed authentication (or cse padding was not zero)."""

    exit_code = 3

    def __init__(self, msg, index, offset):
        super().__init__(msg)
        self.index = index
        self.offset = offset


class WrongKeyError(CcrError):
    """ccr1: the blob's key id is not the id of the key in hand."""

    exit_code = 2

    def __init__(self, file_key_id, given_key_id):
        super().__init__(
            "wrong key: the file was encrypted under key id %s, the key given has id %s"
            % (file_key_id.hex(), given_key_id.hex())
        )
        self.file_key_id = file_key_id
        self.given_key_id = given_key_id


# ---- helpers ------------------------------------------------------------------------------------------------


def read_key_file(path):
    with open(path, "rb") as f:
        data = f.read(KEY_LEN + 1)
    if len(data) != KEY_LEN:
        raise CcrError("%s: key file must be exactly 32 bytes" % path)
    return data


def read_exact(f, n):
    """Reads up to n bytes, looping over short reads; returns fewer only at end of file."""
    parts = []
    got = 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def parse_size(text):
    """'4096', '64K', '1M', '16MiB', '1G' -> bytes (K/M/G are binary)."""
    t = text.strip()
    mult = 1
    for suffix, m in (("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if t.endswith(suffix):
            mult = m
            t = t[: -len(suffix)]
            break
    return int(t) * mult


def _check_key(dek):
    if not isinstance(dek, (bytes, bytearray)) or len(dek) != KEY_LEN:
        raise ValueError("DEK must be 32 bytes")


# =============================================================================================================
# ccr1
# =============================================================================================================


def key_id(dek):
    """First 16 bytes of SHA-256("ccr1-key-id" || DEK)."""
    _check_key(dek)
    return hashlib.sha256(CCR1_KEYID_PREFIX + bytes(dek)).digest()[:16]


def ccr1_region_log2(region_size):
    if region_size <= 0 or region_size & (region_size - 1):
        raise ValueError("ccr1 region size must be a power of two")
    log2 = region_size.bit_length() - 1
    if not CCR1_LOG2_MIN <= log2 <= CCR1_LOG2_MAX:
        raise ValueError("ccr1 region size must be 4 KiB .. 16 MiB")
    return log2


def ccr1_build_header(dek, region_log2=CCR1_LOG2_DEFAULT, salt=None):
    if salt is None:
        salt = os.urandom(32)
    if len(salt) != 32:
        raise ValueError("salt must be 32 bytes")
    if not CCR1_LOG2_MIN <= region_log2 <= CCR1_LOG2_MAX:
        raise ValueError("region_log2 out of range")
    h = CCR1_MAGIC + bytes([CCR1_VERSION, region_log2]) + b"\0\0" + key_id(dek) + salt + b"\0" * 8
    assert len(h) == CCR1_HEADER_LEN
    return h


def ccr1_parse_header(header):
    """Validates a 64-byte header and returns a dict of its fields. Raises FormatError naming the field."""
    if len(header) < CCR1_HEADER_LEN:
        raise FormatError("too short for a ccr1 header (%d bytes)" % len(header))
    header = bytes(header[:CCR1_HEADER_LEN])
    if header[0:4] != CCR1_MAGIC:
        raise FormatError("bad magic")
    version = header[4]
    if version != CCR1_VERSION:
        raise FormatError("unsupported version %d" % version)
    log2 = header[5]
    if not CCR1_LOG2_MIN <= log2 <= CCR1_LOG2_MAX:
        raise FormatError("region_log2 %d out of range" % log2)
    if header[6:8] != b"\0\0":
        raise FormatError("non-zero reserved bytes at offset 6")
    if header[56:64] != b"\0" * 8:
        raise FormatError("non-zero reserved bytes at offset 56")
    return {
        "magic": header[0:4],
        "version": version,
        "region_log2": log2,
        "region_size": 1 << log2,
        "key_id": header[8:24],
        "salt": header[24:56],
        "header": header,
    }


def ccr1_blob_key(dek, header):
    """K = HKDF-SHA256(IKM=DEK, salt=header.salt, info="ccr1-region-key" || header[0:24]), 32 bytes."""
    _check_key(dek)
    hk = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=bytes(header[24:56]),
        info=CCR1_HKDF_INFO_PREFIX + bytes(header[0:24]),
    )
    return hk.derive(bytes(dek))


def ccr1_nonce(index, final):
    return struct.pack(">Q", index) + b"\0\0\0" + (b"\x01" if final else b"\x00")


def ccr1_region_count(plain_size, region_size):
    return max(1, -(-plain_size // region_size))


def ccr1_blob_size(plain_size, region_size):
    """S = 64 + N + 16n."""
    return CCR1_HEADER_LEN + plain_size + TAG_LEN * ccr1_region_count(plain_size, region_size)


def ccr1_region_offset(index, region_size):
    """Stored offset of region i: 64 + i*(R + 16)."""
    return CCR1_HEADER_LEN + index * (region_size + TAG_LEN)


def ccr1_geometry(blob_size, region_size):
    """(n, N) for a blob of S bytes, or FormatError if S fits no n."""
    body = blob_size - CCR1_HEADER_LEN
    if body < TAG_LEN:
        raise FormatError("blob of %d bytes is too short for ccr1" % blob_size)
    n = -(-body // (region_size + TAG_LEN))
    plain = body - TAG_LEN * n
    if plain < 0 or ccr1_region_count(plain, region_size) != n:
        raise FormatError("blob size %d fits no ccr1 layout with region size %d" % (blob_size, region_size))
    return n, plain


def ccr1_encrypt_stream(dek, fin, fout, region_log2=CCR1_LOG2_DEFAULT, salt=None):
    """Encrypts fin to fout. Returns (plaintext_bytes, blob_bytes). Reads one region ahead to know which is final."""
    header = ccr1_build_header(dek, region_log2, salt)
    K = ccr1_blob_key(dek, header)
    g = AESGCM(K)
    R = 1 << region_log2
    fout.write(header)
    total_in = 0
    out = CCR1_HEADER_LEN
    i = 0
    cur = read_exact(fin, R)
    while True:
        nxt = read_exact(fin, R) if len(cur) == R else b""
        final = len(nxt) == 0
        ct = g.encrypt(ccr1_nonce(i, final), cur, header)  # ciphertext || tag
        fout.write(ct)
        total_in += len(cur)
        out += len(ct)
        if final:
            break
        cur = nxt
        i += 1
    return total_in, out


def ccr1_open_region(K, header, index, final, stored, offset=None):
    """Decrypts one stored region (ciphertext || tag). Raises AuthError; never returns partial plaintext."""
    if len(stored) < TAG_LEN:
        raise AuthError("region %d truncated" % index, index, offset)
    try:
        return AESGCM(K).decrypt(ccr1_nonce(index, final), bytes(stored), bytes(header))
    except InvalidTag:
        raise AuthError(
            "authentication failed in region %d at byte offset %s" % (index, offset), index, offset
        ) from None


def ccr1_check_key(dek, info):
    kid = key_id(dek)
    if info["key_id"] != kid:
        raise WrongKeyError(info["key_id"], kid)


def ccr1_decrypt_stream(dek, fin, fout, blob_size, expect_region_size=None):
    """Decrypts a ccr1 blob of blob_size bytes from fin (positioned at 0) to fout. Returns plaintext bytes."""
    header = read_exact(fin, CCR1_HEADER_LEN)
    info = ccr1_parse_header(header)
    R = info["region_size"]
    if expect_region_size is not None and expect_region_size != R:
        raise FormatError("region size %d given but the header says %d" % (expect_region_size, R))
    ccr1_check_key(dek, info)
    n, plain = ccr1_geometry(blob_size, R)
    K = ccr1_blob_key(dek, header)
    g = AESGCM(K)
    written = 0
    for i in range(n):
        final = i == n - 1
        want = (plain - R * (n - 1) if final else R) + TAG_LEN
        stored = read_exact(fin, want)
        off = ccr1_region_offset(i, R)
        if len(stored) != want:
            raise FormatError("blob ends inside region %d" % i)
        try:
            pt = g.decrypt(ccr1_nonce(i, final), stored, header)
        except InvalidTag:
            raise AuthError(
                "authentication failed in region %d at byte offset %d" % (i, off), i, off
            ) from None
        fout.write(pt)
        written += len(pt)
    if fin.read(1):
        raise FormatError("data after the last region")
    return written


def ccr1_decrypt_region(dek, f, index, blob_size=None):
    """Random access: decrypts region `index` of the ccr1 blob in seekable file f alone.
    Returns (plaintext, plaintext_offset)."""
    if blob_size is None:
        blob_size = os.fstat(f.fileno()).st_size
    f.seek(0)
    header = read_exact(f, CCR1_HEADER_LEN)
    info = ccr1_parse_header(header)
    ccr1_check_key(dek, info)
    R = info["region_size"]
    n, plain = ccr1_geometry(blob_size, R)
    if not 0 <= index < n:
        raise IndexError("region %d out of range (n=%d)" % (index, n))
    final = index == n - 1
    off = ccr1_region_offset(index, R)
    want = (plain - R * (n - 1) if final else R) + TAG_LEN
    f.seek(off)
    stored = read_exact(f, want)
    K = ccr1_blob_key(dek, header)
    return ccr1_open_region(K, header, index, final, stored, off), index * R


def ccr1_encrypt_bytes(dek, data, region_log2=CCR1_LOG2_DEFAULT, salt=None):
    import io

    out = io.BytesIO()
    ccr1_encrypt_stream(dek, io.BytesIO(data), out, region_log2, salt)
    return out.getvalue()


def ccr1_decrypt_bytes(dek, blob, expect_region_size=None):
    import io

    out = io.BytesIO()
    ccr1_decrypt_stream(dek, io.BytesIO(blob), out, len(blob), expect_region_size)
    return out.getvalue()


# =============================================================================================================
# cleanroom-cse
# =============================================================================================================


def cse_chunk_count(plain_size, chunk_size):
    return -(-plain_size // chunk_size)


def cse_blob_size(plain_size, chunk_size=CSE_DEFAULT_CHUNK):
    """S = k*(B + 28) + 8 with k = ceil(N/B); an empty file is the 8-byte trailer alone."""
    return cse_chunk_count(plain_size, chunk_size) * (chunk_size + CSE_OVERHEAD) + CSE_TRAILER_LEN


def cse_chunk_offset(index, chunk_size):
    return index * (chunk_size + CSE_OVERHEAD)


def cse_geometry_from_trailer(blob_size, chunk_size, trailer):
    """(k, pad, N) given the blob size and its last 8 bytes. FormatError if malformed."""
    if blob_size == 0:
        return 0, 0, 0
    if blob_size % (chunk_size + CSE_OVERHEAD) != CSE_TRAILER_LEN:
        raise FormatError(
            "blob size %d is not k*(%d+28)+8 for chunk size %d" % (blob_size, chunk_size, chunk_size)
        )
    k = blob_size // (chunk_size + CSE_OVERHEAD)
    (pad,) = struct.unpack(">Q", trailer)
    if pad > chunk_size:
        raise FormatError("padding %d larger than the chunk size %d" % (pad, chunk_size))
    plain = k * chunk_size - pad
    if plain < 0:
        raise FormatError("padding %d larger than the data" % pad)
    return k, pad, plain


def cse_geometry(f, chunk_size, blob_size=None):
    if blob_size is None:
        blob_size = os.fstat(f.fileno()).st_size
    if blob_size == 0:
        return 0, 0, 0
    if blob_size < CSE_TRAILER_LEN:
        raise FormatError("blob of %d bytes is malformed" % blob_size)
    pos = f.tell()
    f.seek(blob_size - CSE_TRAILER_LEN)
    trailer = read_exact(f, CSE_TRAILER_LEN)
    f.seek(pos)
    return cse_geometry_from_trailer(blob_size, chunk_size, trailer)


def cse_encrypt_stream(dek, fin, fout, chunk_size=CSE_DEFAULT_CHUNK, nonce_fn=None, pad_byte=0):
    """Encrypts fin to fout. nonce_fn(i) -> 12 bytes (default: random). pad_byte != 0 crafts an invalid blob
    with non-zero padding (tests only). Returns (plaintext_bytes, blob_bytes)."""
    _check_key(dek)
    g = AESGCM(bytes(dek))
    total = 0
    out = 0
    k = 0
    pad = 0
    while True:
        chunk = read_exact(fin, chunk_size)
        if not chunk:
            break
        total += len(chunk)
        if len(chunk) < chunk_size:
            pad = chunk_size - len(chunk)
            chunk = chunk + bytes([pad_byte]) * pad
        nonce = nonce_fn(k) if nonce_fn else os.urandom(NONCE_LEN)
        assert len(nonce) == NONCE_LEN
        ct = g.encrypt(nonce, chunk, None)
        fout.write(nonce)
        fout.write(ct)
        out += NONCE_LEN + len(ct)
        k += 1
        if pad:
            break
    fout.write(struct.pack(">Q", pad))
    out += CSE_TRAILER_LEN
    return total, out


def cse_open_chunk(g, index, stored, chunk_size, keep):
    """Decrypts one stored chunk (nonce || ct || tag); returns its first `keep` bytes after checking that the
    padding decrypts to zero."""
    off = cse_chunk_offset(index, chunk_size)
    try:
        pt = g.decrypt(stored[:NONCE_LEN], stored[NONCE_LEN:], None)
    except InvalidTag:
        raise AuthError(
            "authentication failed in chunk %d at byte offset %d" % (index, off), index, off
        ) from None
    if keep < chunk_size and any(pt[keep:]):
        raise AuthError("non-zero padding in chunk %d at byte offset %d" % (index, off), index, off)
    return pt[:keep]


def cse_decrypt_stream(dek, fin, fout, chunk_size=CSE_DEFAULT_CHUNK, blob_size=None):
    """Decrypts a cse blob from seekable fin (positioned at 0) to fout. Returns plaintext bytes."""
    _check_key(dek)
    k, pad, plain = cse_geometry(fin, chunk_size, blob_size)
    g = AESGCM(bytes(dek))
    written = 0
    for i in range(k):
        stored = read_exact(fin, chunk_size + CSE_OVERHEAD)
        if len(stored) != chunk_size + CSE_OVERHEAD:
            raise FormatError("blob ends inside chunk %d" % i)
        keep = chunk_size - pad if i == k - 1 else chunk_size
        pt = cse_open_chunk(g, i, stored, chunk_size, keep)
        fout.write(pt)
        written += len(pt)
    return written


def cse_decrypt_chunk(dek, f, index, chunk_size=CSE_DEFAULT_CHUNK):
    """Random access: decrypts chunk `index` alone. Returns (plaintext, plaintext_offset)."""
    _check_key(dek)
    k, pad, plain = cse_geometry(f, chunk_size)
    if not 0 <= index < k:
        raise IndexError("chunk %d out of range (k=%d)" % (index, k))
    f.seek(cse_chunk_offset(index, chunk_size))
    stored = read_exact(f, chunk_size + CSE_OVERHEAD)
    keep = chunk_size - pad if index == k - 1 else chunk_size
    return cse_open_chunk(AESGCM(bytes(dek)), index, stored, chunk_size, keep), index * chunk_size


def cse_encrypt_bytes(dek, data, chunk_size=CSE_DEFAULT_CHUNK, nonce_fn=None, pad_byte=0):
    import io

    out = io.BytesIO()
    cse_encrypt_stream(dek, io.BytesIO(data), out, chunk_size, nonce_fn, pad_byte)
    return out.getvalue()


def cse_decrypt_bytes(dek, blob, chunk_size=CSE_DEFAULT_CHUNK):
    import io

    out = io.BytesIO()
    cse_decrypt_stream(dek, io.BytesIO(blob), out, chunk_size, len(blob))
    return out.getvalue()


# =============================================================================================================
# Files
# =============================================================================================================


def encrypt_file(dek, src, dst, mode="ccr1", region_size=None):
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        if mode == "ccr1":
            log2 = ccr1_region_log2(region_size) if region_size else CCR1_LOG2_DEFAULT
            return ccr1_encrypt_stream(dek, fin, fout, log2)
        if mode == "cleanroom-cse":
            return cse_encrypt_stream(dek, fin, fout, region_size or CSE_DEFAULT_CHUNK)
    raise ValueError("unknown mode %r" % mode)


def decrypt_file(dek, src, dst, mode="ccr1", region_size=None):
    """Decrypts src to dst; on any failure dst is removed (nothing partial left)."""
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            size = os.fstat(fin.fileno()).st_size
            if mode == "ccr1":
                return ccr1_decrypt_stream(dek, fin, fout, size, region_size)
            if mode == "cleanroom-cse":
                return cse_decrypt_stream(dek, fin, fout, region_size or CSE_DEFAULT_CHUNK, size)
            raise ValueError("unknown mode %r" % mode)
    except BaseException:
        try:
            os.unlink(dst)
        except OSError:
            pass
        raise


def _walk_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            yield "dir", os.path.normpath(os.path.join(rel, d))
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            yield "file", os.path.normpath(os.path.join(rel, name))


def process_tree(op, dek, src, dst, mode="ccr1", region_size=None):
    """Encrypts/decrypts every regular file under src into the same relative path under dst (dirs recreated).
    Returns the number of files."""
    os.makedirs(dst, exist_ok=True)
    count = 0
    fn = encrypt_file if op == "encrypt" else decrypt_file
    for kind, rel in _walk_files(src):
        if os.path.islink(os.path.join(src, rel)):
            continue
        if kind == "dir":
            os.makedirs(os.path.join(dst, rel), exist_ok=True)
        else:
            fn(dek, os.path.join(src, rel), os.path.join(dst, rel), mode, region_size)
            count += 1
    return count


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ccr_ref.py", description=__doc__.split("\n")[0])
    ap.add_argument("op", choices=["encrypt", "decrypt", "keyid"])
    ap.add_argument("--mode", default="ccr1", choices=["ccr1", "cleanroom-cse"])
    ap.add_argument("--key", required=True)
    ap.add_argument("--region-size", type=parse_size)
    ap.add_argument("src", nargs="?")
    ap.add_argument("dst", nargs="?")
    a = ap.parse_intermixed_args(argv)
    try:
        dek = read_key_file(a.key)
        if a.op == "keyid":
            print(key_id(dek).hex())
            return 0
        if a.src is None or a.dst is None:
            ap.error("SRC and DST are required")
        if os.path.isdir(a.src):
            process_tree(a.op, dek, a.src, a.dst, a.mode, a.region_size)
        elif a.op == "encrypt":
            encrypt_file(dek, a.src, a.dst, a.mode, a.region_size)
        else:
            decrypt_file(dek, a.src, a.dst, a.mode, a.region_size)
    except CcrError as e:
        print("ccr_ref.py %s: %s: %s" % (a.op, a.src, e), file=sys.stderr)
        return e.exit_code
    except (OSError, ValueError) as e:
        print("ccr_ref.py %s: %s: %s" % (a.op, a.src, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
