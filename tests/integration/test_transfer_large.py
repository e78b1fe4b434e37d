#!/usr/bin/python3
"""A sparse file beyond 4 GiB (label "large") through `ccr datastore upload`, `verify` and `download` in every mode,
on a local store under $CCR_LARGE_TMP (default /tmp); the download is compared byte for byte with cmp.
Needs about 8.1 GiB free there (the source is sparse); everything is deleted at the end."""

import sys

sys.dont_write_bytecode = True

import os
import subprocess

import ccrtest
from ccrtest import MiB, CcrTestCase, ccr, parse_json_line

TWO32 = 1 << 32
SIZE = TWO32 + MiB + 12345
MARKERS = {0: b"\xa0START\xa0", TWO32 - 1: b"\xa1", TWO32: b"\xa2AT-2^32\xa2", TWO32 + MiB: b"\xa3R\xa3",
           SIZE - 7: b"THE-END"}


def stored_size(mode):
    """The blob size formats.md gives for SIZE plaintext bytes in each mode (default region/chunk sizes)."""
    if mode == "ccr1":
        return 64 + SIZE + 16 * -(-SIZE // MiB)
    if mode == "cleanroom-cse":
        b = 16 * MiB
        return -(-SIZE // b) * (b + 28) + 8
    return SIZE


class TestTransferLarge(CcrTestCase):
    tmp_parent = os.environ.get("CCR_LARGE_TMP") or None

    def round_trip(self, mode):
        env = dict(os.environ, CCR_CONFIG=self.path(mode, "cfg", "config.json"),
                   XDG_STATE_HOME=self.path(mode, "state"))
        env.pop("CCR_STORE_FAULTS", None)
        src = self.path(mode, "src")
        os.makedirs(src)
        big = os.path.join(src, "huge.bin")
        with open(big, "wb") as f:
            f.truncate(SIZE)
            for off, m in MARKERS.items():
                f.seek(off)
                f.write(m)
        store = self.path(mode, "store")
        key = [] if mode == "none" else ["--new-key"]
        r = ccr("datastore", "add", "big", "--url", store, "--mode", mode, *key, env=env)
        self.assertOk(r)
        r = ccr("datastore", "upload", "big", src, "--json", env=env, timeout=1800)
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["bytes_in"], SIZE)
        self.assertEqual(os.path.getsize(os.path.join(store, "huge.bin")), stored_size(mode))
        r = ccr("datastore", "verify", "big", "--json", env=env, timeout=1800)
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["files"], 1)
        out = self.path(mode, "out")
        r = ccr("datastore", "download", "big", out, "--quiet", env=env, timeout=1800)
        self.assertOk(r)
        os.unlink(os.path.join(store, "huge.bin"))
        p = subprocess.run(["cmp", big, os.path.join(out, "huge.bin")], capture_output=True, timeout=1800)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        os.unlink(os.path.join(out, "huge.bin"))

    def test_ccr1_beyond_4g(self):
        self.round_trip("ccr1")

    def test_cleanroom_cse_beyond_4g(self):
        self.round_trip("cleanroom-cse")

    def test_none_beyond_4g(self):
        self.round_trip("none")


if __name__ == "__main__":
    ccrtest.main()
