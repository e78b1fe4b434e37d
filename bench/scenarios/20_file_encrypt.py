#!/usr/bin/python3
"""Scenario file (targets P2, P5 and P9 by proxy): encrypt and decrypt one large file on tmpfs.

Implementations, all on the same data in the same run, source and destination on tmpfs (/dev/shm):
  ccr-ccr1       `ccr encrypt|decrypt --mode ccr1 --region-size 1M`      (default threads)
  ccr-cse        `ccr encrypt|decrypt --mode cleanroom-cse --region-size 16M`
  gocryptfs      FUSE mount over a cipher dir on tmpfs (-scryptn 10); `dd bs=1M conv=fsync` into the mount
                 (encrypt) or out of a fresh mount into a tmpfs file (decrypt)
  rclone-crypt   `rclone copyto` to / from a crypt remote over a local tmpfs directory
Per run: wall time (MB/s, MB = 10^6 bytes), client CPU seconds per GB (user + system of every client
process: for gocryptfs the daemon plus dd) and peak RSS (for gocryptfs daemon + dd).

Memory: the plaintext source (BENCH_FILE_SIZE, default 2 GiB; 256 MiB quick) and at most one encrypted
or decrypted copy exist on /dev/shm at any time. Encrypt runs are interleaved across implementations,
each output removed before the next. For decrypt, each implementation encrypts the source once
(untimed), the source is removed, the timed decrypts run, the last output is checked against the
source's SHA-256 and becomes the source again.
"""

import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20
SIZE = B.parse_size(os.environ.get("BENCH_FILE_SIZE", "256M" if B.QUICK else "2G"))


class Ccr:
    def __init__(self, name, ccr, mode, region, key, work):
        self.name, self.ccr, self.mode, self.region, self.key = name, ccr, mode, region, key
        self.cipher = os.path.join(work, f"{name}.enc")
        self.notes = (f"`ccr encrypt/decrypt --mode {mode} --region-size {region}` (default threads), "
                      f"file to file on tmpfs")
        self.params = {"mode": mode, "region_size": region}

    def args(self, op, src, dst):
        return [self.ccr, op, "--key", self.key, "--mode", self.mode, "--region-size", self.region,
                "--quiet", src, dst]

    def encrypt(self, src):
        return B.run_measured(self.args("encrypt", src, self.cipher))

    def decrypt(self, dst):
        return B.run_measured(self.args("decrypt", self.cipher, dst))

    def cipher_bytes(self):
        return os.path.getsize(self.cipher)

    def discard(self):
        B.rm(self.cipher)

    def teardown(self):
        self.discard()


class Gocryptfs:
    name = "gocryptfs"

    def __init__(self, work):
        self.cipherdir = os.path.join(work, "gocryptfs-cipher")
        self.mnt = os.path.join(work, "gocryptfs-mnt")
        self.passfile = os.path.join(work, "gocryptfs.pass")
        with open(self.passfile, "w", encoding="utf-8") as f:
            f.write("ccr-bench-password\n")
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = None
        self.notes = ("gocryptfs (AES-256-GCM, 4 KiB blocks) over a cipher dir on tmpfs, -scryptn 10; "
                      "`dd bs=1M conv=fsync` through a fresh mount; CPU = gocryptfs daemon + dd; "
                      "RSS = sum of their peaks")
        self.params = {"version": B.version(["gocryptfs", "--version"])}

    def _mount(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(["gocryptfs", "-fg", "-q", "-passfile", self.passfile, self.cipherdir,
                                      self.mnt], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not B.mounted(self.mnt):
            if self.proc.poll() is not None:
                raise RuntimeError(f"gocryptfs mount failed (exit {self.proc.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError("gocryptfs mount did not come up in 20 s")
            time.sleep(0.01)
        return t0

    def _unmount(self, t0):
        B.unmount(self.mnt)
        m = B.wait_measured(self.proc, t0)
        self.proc = None
        return m

    def _dd(self, src, dst):
        return B.run_measured(["dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync", "status=none"])

    def encrypt(self, src):
        B.rm(self.cipherdir)
        os.makedirs(self.cipherdir)
        B.run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", self.passfile, self.cipherdir],
              capture=True)
        t0 = self._mount()
        try:
            dd = self._dd(src, os.path.join(self.mnt, "data.bin"))
        finally:
            daemon = self._unmount(t0)
        return B.combine(dd, daemon)

    def decrypt(self, dst):
        t0 = self._mount()
        try:
            dd = self._dd(os.path.join(self.mnt, "data.bin"), dst)
        finally:
            daemon = self._unmount(t0)
        return B.combine(dd, daemon)

    def cipher_bytes(self):
        return sum(os.path.getsize(os.path.join(self.cipherdir, f)) for f in os.listdir(self.cipherdir))

    def discard(self):
        B.rm(self.cipherdir)

    def teardown(self):
        B.unmount(self.mnt)
        if self.proc:
            B.stop(self.proc)
        self.discard()


class Rclone:
    name = "rclone-crypt"

    def __init__(self, work):
        self.remote_dir = os.path.join(work, "rclone-remote")
        conf = os.path.join(work, "rclone.conf")
        open(conf, "w").close()
        obscured = B.run(["rclone", "obscure", "ccr-bench-password"], capture=True).stdout.strip()
        self.env = dict(os.environ, RCLONE_CONFIG=conf, RCLONE_CONFIG_CCRBENCH_TYPE="crypt",
                        RCLONE_CONFIG_CCRBENCH_REMOTE=self.remote_dir,
                        RCLONE_CONFIG_CCRBENCH_PASSWORD=obscured)
        self.notes = ("`rclone copyto` to / from a crypt remote (XSalsa20-Poly1305, 64 KiB chunks, standard "
                      "name encryption) over a local directory on tmpfs; rclone defaults")
        self.params = {"version": B.version(["rclone", "version"])}

    def encrypt(self, src):
        os.makedirs(self.remote_dir, exist_ok=True)
        return B.run_measured(["rclone", "copyto", src, "ccrbench:data.bin"], env=self.env)

    def decrypt(self, dst):
        return B.run_measured(["rclone", "copyto", "ccrbench:data.bin", dst], env=self.env)

    def cipher_bytes(self):
        return sum(os.path.getsize(os.path.join(self.remote_dir, f)) for f in os.listdir(self.remote_dir))

    def discard(self):
        B.rm(self.remote_dir)

    def teardown(self):
        self.discard()


def ccr_usable(ccr, key, work):
    """The CLI exists and round-trips a small file in both modes; else the reason it does not."""
    if not ccr:
        return f"no ccr binary in {B.BUILD}/tools"
    probe = os.path.join(work, "probe.bin")
    with open(probe, "wb") as f:
        f.write(os.urandom(3 * MiB + 123))
    try:
        for mode in ("ccr1", "cleanroom-cse"):
            enc, dec = probe + ".enc", probe + ".dec"
            for cmd in ([ccr, "encrypt", "--key", key, "--mode", mode, "--quiet", probe, enc],
                        [ccr, "decrypt", "--key", key, "--mode", mode, "--quiet", enc, dec]):
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    return f"`{' '.join(cmd[1:4])} ...` exit {r.returncode}: {r.stderr.strip()[:200]}"
            if B.sha256_file(dec).hexdigest() != B.sha256_file(probe).hexdigest():
                return f"{mode} round trip is not byte-exact"
            B.rm(enc)
            B.rm(dec)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    finally:
        for p in (probe, probe + ".enc", probe + ".dec"):
            B.rm(p)
    return None


def main():
    work = B.scratch_dir("file")
    need = 2 * SIZE + 512 * MiB
    if B.mem_available_bytes() < need or os.statvfs(work).f_bavail * os.statvfs(work).f_frsize < need:
        raise SystemExit(f"file: need {need / GiB:.1f} GiB free memory and tmpfs space for a "
                         f"{SIZE / GiB:.2f} GiB file; set BENCH_FILE_SIZE smaller")
    runs = B.RUNS
    src = os.path.join(work, "source.bin")
    dst = os.path.join(work, "decrypted.bin")

    with B.Cleanup() as cleanup:
        cleanup.add(B.rm, work)
        key = os.path.join(work, "dek.bin")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        os.write(fd, os.urandom(32))
        os.close(fd)

        impls = []
        ccr = B.tool_path("ccr")
        why = ccr_usable(ccr, key, work)
        if why:
            B.log(f"file: ccr skipped: {why}")
            for name in ("ccr-ccr1", "ccr-cse"):
                for scenario in ("encrypt", "decrypt"):
                    B.append_raw({"suite": "file", "scenario": scenario, "impl": name, "metric": "throughput",
                                  "skipped": why})
        else:
            impls += [Ccr("ccr-ccr1", ccr, "ccr1", "1M", key, work),
                      Ccr("ccr-cse", ccr, "cleanroom-cse", "16M", key, work)]
        impls += [Gocryptfs(work), Rclone(work)]
        for impl in impls:
            cleanup.add(impl.teardown)

        B.log(f"file: generating {SIZE / MiB:.0f} MiB of source data on {work}")
        B.gen_keystream(src, SIZE)
        digest = B.sha256_file(src).hexdigest()
        # Touch the tmpfs memory the outputs will use once before timing: on a VM the first touch of guest
        # memory can be several times slower (the host backs it lazily), which would penalise whoever
        # runs first.
        B.prefault(work, SIZE)
        res = {}  # (scenario, impl) -> [Measured]
        cipher_sizes = {}

        for r in range(runs):
            for impl in impls:
                m = impl.encrypt(src)
                cipher_sizes[impl.name] = impl.cipher_bytes()
                impl.discard()
                B.log(f"file: encrypt {impl.name} run {r + 1}/{runs}: {SIZE / 1e6 / m.wall:.0f} MB/s, {m}")
                res.setdefault(("encrypt", impl.name), []).append(m)

        for impl in impls:
            impl.encrypt(src)  # untimed: the ciphertext the decrypt runs read
            B.rm(src)
            for r in range(runs):
                B.rm(dst)
                m = impl.decrypt(dst)
                B.log(f"file: decrypt {impl.name} run {r + 1}/{runs}: {SIZE / 1e6 / m.wall:.0f} MB/s, {m}")
                res.setdefault(("decrypt", impl.name), []).append(m)
            impl.discard()
            if B.sha256_file(dst).hexdigest() != digest:
                raise SystemExit(f"file: {impl.name} decrypted output differs from the source")
            os.rename(dst, src)

        notes_common = f"{SIZE} bytes ({SIZE / GiB:.2f} GiB) of incompressible data; source and output on tmpfs"
        for impl in impls:
            params = dict(impl.params, bytes=SIZE, medium="tmpfs (/dev/shm)",
                          ciphertext_bytes=cipher_sizes.get(impl.name))
            notes = f"{impl.notes}; {notes_common}"
            for scenario in ("encrypt", "decrypt"):
                ms = res[(scenario, impl.name)]
                B.record("file", scenario, impl.name, "throughput", params, [SIZE / 1e6 / m.wall for m in ms],
                         "MB/s", notes)
                B.record("file", scenario, impl.name, "cpu", params, [m.cpu / (SIZE / 1e9) for m in ms],
                         "CPU-s/GB", notes, user_s=[round(m.user, 3) for m in ms],
                         sys_s=[round(m.sys, 3) for m in ms])
                B.record("file", scenario, impl.name, "peak_rss", params, [m.maxrss_kib / 1024 for m in ms],
                         "MiB", notes)
    B.log("file: done, scratch removed")


if __name__ == "__main__":
    main()
