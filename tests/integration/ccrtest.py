"""Shared helpers for the ccr integration tests (Python 3.11 stdlib + python3-cryptography only).

Environment (set by ctest, see tests/CMakeLists.txt):
  CCR_BIN        path of the built `ccr` binary
  CCR_TESTS_DIR  the tests/ source directory (for tests/interop/ccr_ref.py)
  CCR_BUILD_DIR  the build directory
Outside ctest, CCR_BIN defaults to `ccr` next to a build dir given by CCR_BUILD_DIR, else /tmp/build-c/tools/ccr.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.environ.get("CCR_TESTS_DIR") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS_DIR, "interop"))

import ccr_ref  # noqa: E402  (the independent Python implementation)


def _find_bin():
    b = os.environ.get("CCR_BIN")
    if b:
        return os.path.abspath(b)
    bd = os.environ.get("CCR_BUILD_DIR")
    if bd:
        return os.path.join(bd, "tools", "ccr")
    return "/tmp/build-c/tools/ccr"


CCR = _find_bin()
PYTHON = os.environ.get("CCR_PYTHON") or sys.executable
REF = os.path.join(TESTS_DIR, "interop", "ccr_ref.py")

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# Exit codes of the CLI contract.
EXIT_OK = 0
EXIT_USAGE = 1
EXIT_IO = 2
EXIT_AUTH = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Result:
    def __init__(self, args, rc, out, err):
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err

    def __repr__(self):
        return "Result(rc=%d, args=%r,\n stdout=%r,\n stderr=%r)" % (self.rc, self.args, self.out[:2000], self.err[:2000])


def ccr(*args, input=None, timeout=300, env=None, prefix=()):
    """Runs `ccr args...`; returns Result with decoded stdout/stderr (stdin closed unless input given)."""
    argv = list(prefix) + [CCR] + [str(a) for a in args]
    p = subprocess.run(
        argv,
        input=input.encode() if isinstance(input, str) else input,
        stdin=None if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
        env=env,
    )
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def ref(*args, timeout=300):
    """Runs the Python reference CLI (ccr_ref.py)."""
    argv = [PYTHON, REF] + [str(a) for a in args]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def write_key(path, dek=None):
    """Writes a raw 32-byte DEK with mode 0600; returns the key bytes."""
    dek = dek if dek is not None else os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(dek)
    os.chmod(path, 0o600)
    return dek


def write_random(path, size, seed=None):
    """Writes `size` pseudo-random bytes (fast: a repeated 1 MiB random block xored with the block index)."""
    block = os.urandom(min(size, MiB)) if seed is None else hashlib.shake_256(str(seed).encode()).digest(min(size, MiB))
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            n = min(left, len(block))
            tag = i.to_bytes(8, "big")
            f.write(tag[:n] + block[len(tag) : n] if n > 8 else block[:n])
            left -= n
            i += 1
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def files_equal(a, b):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(4 * MiB)
            y = fb.read(4 * MiB)
            if x != y:
                return False
            if not x:
                return True


def tree_listing(root):
    """{relpath: ('dir', None) | ('file', sha256) | ('link', target)} for everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            rel = os.path.relpath(p, root)
            out[rel] = ("link", os.readlink(p)) if os.path.islink(p) else ("dir", None)
        for n in filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            else:
                out[rel] = ("file", sha256_file(p))
    return out


TMP_RE = re.compile(r"\.ccr-tmp")


def leftovers(directory):
    """Names under directory (recursively) that look like ccr temporary files."""
    bad = []
    if not os.path.isdir(directory):
        return bad
    for dirpath, dirnames, filenames in os.walk(directory):
        for n in filenames + dirnames:
            if TMP_RE.search(n):
                bad.append(os.path.join(dirpath, n))
    return bad


def parse_json_line(text):
    """The CLI prints exactly one JSON object line on stdout with --json."""
    lines = [l for l in text.splitlines() if l.strip()]
    if len(lines) != 1:
        raise AssertionError("expected exactly one JSON line on stdout, got %r" % text)
    return json.loads(lines[0])


class CcrTestCase(unittest.TestCase):
    """Gives each test a fresh temp dir (self.tmp) removed afterwards, even on failure, and a key (self.key)."""

    maxDiff = 4000
    tmp_parent = None  # None -> system default (/tmp)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ccr-it-", dir=self.tmp_parent)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.key = self.path("k.bin")
        self.dek = write_key(self.key)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def assertRc(self, res, rc, msg=None):
        if res.rc != rc:
            self.fail("%sexpected exit %d, got %d: %r" % ((msg + ": ") if msg else "", rc, res.rc, res))

    def assertOk(self, res, msg=None):
        self.assertRc(res, 0, msg)

    def assertNoTemp(self, directory):
        left = leftovers(directory)
        self.assertEqual(left, [], "temporary files left behind in %s" % directory)

    def assertUsageHint(self, res):
        self.assertRc(res, EXIT_USAGE)
        self.assertIn("--help", res.err, "usage error should hint at --help: %r" % res)


class _Result(unittest.TextTestResult):
    pass


def main(name=None, needs_ccr=True):
    """Runs the unittest cases of __main__ with a clear summary line; exits non-zero on any failure."""
    if needs_ccr and not (os.path.isfile(CCR) and os.access(CCR, os.X_OK)):
        print("FATAL: ccr binary not found at %s (set CCR_BIN)" % CCR)
        print("0 passed, 1 failed")
        sys.exit(1)
    t0 = time.time()
    loader = unittest.TestLoader()
    argv_names = [a for a in sys.argv[1:] if not a.startswith("-")]
    if argv_names:
        suite = loader.loadTestsFromNames(argv_names, sys.modules["__main__"])
    else:
        suite = loader.loadTestsFromModule(sys.modules["__main__"])
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=_Result)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    label = name or os.path.basename(sys.argv[0])
    print("%s: %d passed, %d failed, %d skipped (%.1f s)" % (label, passed, failed, skipped, time.time() - t0))
    sys.exit(0 if failed == 0 and res.testsRun > 0 else 1)
