#!/usr/bin/python3
"""Scenario azure (targets P3, P4, P5): publish and download over the Azure Blob protocol.

Two datasets, generated on tmpfs (/dev/shm) in the same run, every implementation on the same data:
  large   one file of BENCH_AZURE_SIZE bytes (default 512 MiB; quick 128 MiB)
  small   BENCH_AZURE_FILES files (default 1,000; quick 500) of 4 KiB in 20 directories
Two endpoints on loopback:
  azurite  Microsoft's storage emulator (tests/integration/azurite.py), in memory: the real protocol. It is one
           Node.js process (one JavaScript thread), so it is the bottleneck of every figure against it; its
           own CPU time (from /proc/PID/stat) is recorded beside each figure as server CPU-s per GB.
  nginx    a loopback endpoint that costs little (its CPU is recorded too), to measure ccr's client pipeline
           itself: Debian's nginx with a generated config that answers just enough of the protocol (PUT
           anything: 201 with an ETag, the body discarded; List Blobs: a static XML made for the data; GET/HEAD
           of a blob: the stored blob, with x-ms-range honoured through an internal proxy hop that turns it
           into Range).
Implementations against Azurite:
  raw-curl      the ceiling: unencrypted `curl --parallel --parallel-max 32` with a container SAS: Put Block of
                4 MiB pieces + one Put Block List (large), Put Blob per file (small); ranged GETs of 8 MiB
                (large: Azurite computes an MD5 of every answer of at most 4 MiB, so larger ranges are its best
                case), one GET per blob (small)
  ccr-none, ccr-ccr1, ccr-cse
                `ccr datastore upload|download --no-journal` (default --connections 32, default threads and
                memory budget), SharedKey auth (AZURE_STORAGE_KEY); cleanroom-cse on the large file only (it pads
                every blob to its 16 MiB chunk)
  rclone-crypt  `rclone copy` to / from a crypt remote over an azureblob remote (sas_url of an account SAS):
                --transfers 32 --checkers 32 --azureblob-upload-concurrency 32 (4 MiB chunks, the default) and
                --multi-thread-streams 32
  sdk, sdk-cse  the Azure Python SDK (azure-storage-blob): upload_blob / download_blob with max_concurrency=32
                (large) or 32 threads of one blob each (small), HTTP pool raised to 32; sdk-cse with client-side
                encryption v2 (AES-GCM, 4 MiB regions) under an AES key-wrap KEK
Against nginx: raw-curl (PUT, GET with Range straight from the file, GET with x-ms-range through the proxy hop)
and ccr-none / ccr-ccr1 with --connections 8, 32 and 64; the ccr1 blobs nginx serves are the very blobs ccr
published to Azurite (downloaded raw with the SDK), the mode-none blobs are the source files (hard links).

Per run: MB/s (dataset bytes / wall, MB = 10^6 B), files/s (small), client CPU-s per GB (user + system of the
client and everything it reaped, from wait4), peak RSS, and the server's CPU-s per GB. Median of BENCH_RUNS runs.
Order per dataset and endpoint as in `transfer`: BENCH_RUNS - 1 rounds of publishes interleaved across
implementations (each container emptied right after: Azurite slows down with every blob it holds), then per
implementation its last publish (kept), its downloads (the last one compared with the source), and its data
deleted; against nginx, the publishes of every implementation interleaved run by run, then the downloads.
Azurite frees deleted data only in a garbage collection every 10 minutes, so the scenario restarts it (same
port, untimed, containers recreated, a short warm-up) whenever the data it was given since its start would
pass BENCH_AZURE_BUDGET (default 4 GiB).

A peer that is missing (curl without --parallel, rclone, the SDK, nginx, Azurite itself) is recorded as skipped
with the reason; ccr is used only when, per mode, a small tree round-trips through Azurite byte for byte.

Run with the argument `sdk-helper ...` this file is the SDK client (a child process, so that its CPU and RSS are
measured like any other client's).
"""

import base64
import concurrent.futures
import email.utils
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as B  # noqa: E402

MiB, GiB = B.MiB, B.GiB
SUITE = "azure"
SIZE = B.parse_size(os.environ.get("BENCH_AZURE_SIZE", "128M" if B.QUICK else "512M"))
SMALL_FILES = int(os.environ.get("BENCH_AZURE_FILES", "500" if B.QUICK else "1000"))
BUDGET = B.parse_size(os.environ.get("BENCH_AZURE_BUDGET", "4G"))
SMALL_SIZE = 4096
SMALL_DIRS = 20
PIECE = 4 * MiB           # raw curl: Put Block size (ccr's transfer unit)
# Raw curl: ranged GET size. Azurite computes an MD5 of every GET answer of at most 4 MiB (whether or not it was
# asked for), which costs it more than the transfer; larger ranges skip that, so the ceiling uses them.
GET_PIECE = 8 * MiB
CONNS = 32                # every client's requests in flight against Azurite
NGINX_CONNS = ("auto", 8, 32)  # "auto": no --connections, the adaptive default
ACCOUNT = "devstoreaccount1"
HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(B.ROOT, "tests", "integration")
PY = "/usr/bin/python3"


def timeout_for(nbytes, nfiles):
    """Generous per-command limit (a hung implementation must not hang `make bench`): 20 MB/s, 200 files/s."""
    return 60 + nbytes / 20e6 + nfiles / 200


class Dataset:
    def __init__(self, name, root, files, nbytes):
        self.name, self.root, self.files, self.bytes = name, root, files, nbytes
        self.digest = None
        self.rels = []  # relative paths, sorted
        self.timeout = timeout_for(nbytes, files)

    @property
    def params(self):
        return {"dataset": self.name, "bytes": self.bytes, "files": self.files}


def gen_large(work):
    root = os.path.join(work, "src-large")
    os.makedirs(root)
    B.gen_keystream(os.path.join(root, "data.bin"), SIZE)
    ds = Dataset("large", root, 1, SIZE)
    ds.rels = ["data.bin"]
    return ds


def gen_small(work):
    """SMALL_FILES files of 4 KiB cut from one keystream, in SMALL_DIRS directories (as `transfer` does)."""
    root = os.path.join(work, "src-small")
    os.makedirs(root)
    stream = os.path.join(work, "small.stream")
    B.gen_keystream(stream, SMALL_FILES * SMALL_SIZE, iv="01")
    per_dir = (SMALL_FILES + SMALL_DIRS - 1) // SMALL_DIRS
    ds = Dataset("small", root, SMALL_FILES, SMALL_FILES * SMALL_SIZE)
    with open(stream, "rb") as f:
        for i in range(SMALL_FILES):
            rel = f"d{i // per_dir:02d}/f{i:05d}.bin"
            if i % per_dir == 0:
                os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "wb") as out:
                out.write(f.read(SMALL_SIZE))
            ds.rels.append(rel)
    B.rm(stream)
    return ds


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """CPU seconds of a live process; 0 if it is gone."""
    return B.proc_cpu(pid, 0.0)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# ------------------------------------------------------------------------------------------------------
# Servers
# ------------------------------------------------------------------------------------------------------

class AzAdmin:
    """The scenario's own Azure SDK work (containers, SAS tokens, warm-up, the raw export for nginx) in a child
    process (this file run as `az-admin ENDPOINT`, one JSON request and answer per line). It keeps the
    scenario's memory small, which matters: Linux carries the RSS of the process that forks a command into
    that command's ru_maxrss across exec, so a scenario holding the SDK and its buffers would raise every
    measured peak RSS to its own size."""

    def __init__(self, endpoint):
        self.proc = subprocess.Popen([PY, os.path.abspath(__file__), "az-admin", endpoint], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def call(self, op, **kw):
        try:
            self.proc.stdin.write(json.dumps(dict(kw, op=op)) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError as e:
            raise RuntimeError(f"the Azure SDK helper is gone ({e})") from None
        if not line:
            raise RuntimeError(f"the Azure SDK helper exited ({self.proc.poll()}) during {op}")
        r = json.loads(line)
        if "error" in r:
            raise RuntimeError(f"Azure SDK helper, {op}: {r['error']}")
        return r

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                B.stop(self.proc)


class AzuriteServer:
    """One in-memory Azurite for the scenario, with the containers every implementation uses. It is restarted
    (untimed, same port) when the data it was handed since it started would pass BUDGET: in-memory Azurite
    frees deleted and overwritten data only in a garbage collection every 10 minutes."""

    def __init__(self, containers):
        sys.path.insert(0, INTEGRATION)
        import azurite  # noqa: E402  (tests/integration/azurite.py: standard library only at import)

        self.containers = list(containers)
        limit_mb = int((BUDGET + 2 * SIZE + 512 * MiB) / MiB)
        self.az = azurite.Azurite(extra_args=["--extentMemoryLimit", str(limit_mb)])
        self.admin = None
        self.used = 0
        self.restarts = 0
        self.version = "unknown"
        try:
            with open(os.path.join(B.ROOT, "tests", "azurite", "node_modules", "azurite", "package.json"),
                      encoding="utf-8") as f:
                self.version = "Azurite " + json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass

    def start(self):
        self.az.start()
        self.admin = AzAdmin(self.endpoint)
        self.sdk = self.admin.call("versions")
        self._after_start()
        return self

    def _after_start(self):
        self.used = 0
        self.admin.call("create", containers=self.containers)
        # A fresh Node.js process runs cold: warm its request paths up before anything is timed.
        self.admin.call("warmup", container=self.containers[0])
        self.used += 32 * MiB

    @property
    def pid(self):
        return self.az.proc.pid if self.az.proc else None

    @property
    def port(self):
        return self.az.port

    @property
    def endpoint(self):
        return self.az.blob_endpoint

    def cpu(self):
        return proc_cpu(self.pid) if self.pid else 0.0

    def ensure_room(self, nbytes):
        if self.used + nbytes > BUDGET:
            B.log(f"azure: restarting Azurite ({self.used / GiB:.1f} GiB handed to it since its start)")
            self.az.restart()
            self.restarts += 1
            self._after_start()
        self.used += nbytes

    def empty(self, container):
        """Deletes the container's blobs (by deleting and recreating it: immediate on Azurite)."""
        self.admin.call("empty", container=container)

    def sas(self, container):
        return self.admin.call("container_sas", container=container)["sas"]

    def account_sas(self):
        return self.admin.call("account_sas")["sas"]

    def export(self, container, directory):
        return self.admin.call("export", container=container, dir=directory)["blobs"]

    def close(self):
        if self.admin:
            self.admin.close()
            self.admin = None
        self.az.close()


NGINX_CONF = """\
# Generated by bench/scenarios/40_azure.py: just enough of the Azure Blob protocol for ccr, on loopback.
daemon off;
master_process on;
worker_processes 2;
{user}
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp/body;
  proxy_temp_path {work}/tmp/proxy;
  fastcgi_temp_path {work}/tmp/fastcgi;
  uwsgi_temp_path {work}/tmp/uwsgi;
  scgi_temp_path {work}/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 0;
  # The static server below, over a Unix socket with kept-alive connections.
  upstream blobs {{ server unix:{work}/blobs.sock; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    root {data};
    # /ACCOUNT/CONTAINER: Create Container (PUT) and List Blobs (a static XML per container).
    location ~ ^/{account}/([^/]+)$ {{
      if ($request_method = PUT) {{
        add_header ETag '"0x8DB0000BENCH01"' always;
        add_header Last-Modified 'Fri, 02 Jan 2026 00:00:00 GMT' always;
        return 201;
      }}
      default_type application/xml;
      try_files /lists/$1.xml =404;
    }}
    # Blobs: every PUT (Put Blob, Put Block, Put Block List) is answered 201, its body read and discarded.
    # GET and HEAD serve the stored file; nginx honours only the standard Range header, so a request with
    # x-ms-range goes through the internal hop below, which sends it on as Range.
    location / {{
      if ($request_method = PUT) {{
        add_header ETag '"0x8DB0000BENCH01"' always;
        add_header Last-Modified 'Fri, 02 Jan 2026 00:00:00 GMT' always;
        return 201;
      }}
      if ($http_x_ms_range) {{
        proxy_pass http://blobs;
      }}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Range $http_x_ms_range;
      proxy_buffers 64 64k;
    }}
  }}
  server {{
    listen unix:{work}/blobs.sock;
    root {data};
    location / {{ }}
  }}
}}
"""


class NginxServer:
    def __init__(self, work):
        self.work = work
        self.data = os.path.join(work, "data")
        self.port = free_port()
        self.proc = None
        self.version = B.version(["nginx", "-v"])

    def start(self):
        os.makedirs(os.path.join(self.work, "tmp"), exist_ok=True)
        os.makedirs(os.path.join(self.data, "lists"), exist_ok=True)
        os.makedirs(os.path.join(self.data, ACCOUNT), exist_ok=True)
        user = ""
        if os.geteuid() == 0:
            # Workers would drop to "nobody", who cannot enter the private scratch directory.
            user = f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};"
        conf = os.path.join(self.work, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(NGINX_CONF.format(user=user, work=self.work, data=self.data, port=self.port, account=ACCOUNT))
        log = open(os.path.join(self.work, "nginx.out"), "wb")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.work + "/", "-e",
                                      os.path.join(self.work, "error.log")], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on port {self.port} within 20 s: {self.log_text()}")
            time.sleep(0.05)
        return self

    def log_text(self):
        parts = []
        for n in ("nginx.out", "error.log"):
            try:
                with open(os.path.join(self.work, n), encoding="utf-8", errors="replace") as f:
                    parts.append(f.read()[-2000:])
            except OSError:
                pass
        return " | ".join(p.strip() for p in parts if p.strip()) or "(no output)"

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def cpu(self):
        if not self.proc or self.proc.poll() is not None:
            return 0.0
        return proc_cpu(self.proc.pid) + sum(proc_cpu(c) for c in children(self.proc.pid))

    def container_dir(self, container):
        return os.path.join(self.data, ACCOUNT, container)

    def write_listing(self, container):
        """The List Blobs answer for the files under the container's directory, with the ETag nginx itself
        sends for each file ("mtime-size" in hex), so that ccr's If-Match on the ranged GETs holds."""
        root = self.container_dir(container)
        items = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for n in sorted(filenames):
                p = os.path.join(dirpath, n)
                st = os.stat(p)
                name = os.path.relpath(p, root)
                mtime = int(st.st_mtime)
                items.append(f"<Blob><Name>{name}</Name><Properties><Last-Modified>"
                             f"{email.utils.formatdate(mtime, usegmt=True)}</Last-Modified><Etag>\"{mtime:x}-"
                             f"{st.st_size:x}\"</Etag><Content-Length>{st.st_size}</Content-Length><Content-Type>"
                             "application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType>"
                             "</Properties></Blob>")
        items.sort()
        xml = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{self.endpoint}/" '
               f'ContainerName="{container}"><MaxResults>5000</MaxResults><Blobs>' + "".join(items) +
               "</Blobs><NextMarker /></EnumerationResults>")
        with open(os.path.join(self.data, "lists", container + ".xml"), "w", encoding="utf-8") as f:
            f.write(xml)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                B.stop(self.proc)
        self.proc = None


# ------------------------------------------------------------------------------------------------------
# Implementations: upload(ds) -> Measured, download(ds, dst) -> Measured, discard(ds), check(ds, dst)
# (None when the download holds the source, else why not), stored(ds) (bytes handed to the server).
# ------------------------------------------------------------------------------------------------------

class Impl:
    name = "?"
    datasets = ("large", "small")
    publishes = True
    params = {}
    notes = ""

    def check(self, ds, dst):
        got = B.tree_digest(dst)
        if got[2] != ds.digest:
            return (f"the downloaded {ds.name} dataset differs from the source ({got[0]} files, {got[1]} bytes; "
                    f"source {ds.files} files, {ds.bytes} bytes)")
        return None

    def stored(self, ds):
        return ds.bytes + ds.files * 1024

    def teardown(self):
        pass


class RawCurl(Impl):
    """Unencrypted parallel curl: the most any client can get from the server."""

    def __init__(self, work, endpoint, sas=None, name="raw-curl", range_header="Range", server=None,
                 container="raw-curl"):
        self.name = name
        self.work = os.path.join(work, name)
        os.makedirs(self.work, exist_ok=True)
        self.endpoint, self.sas, self.container = endpoint, sas, container
        self.range_header = range_header
        self.server = server
        self.pieces = {}
        self.params = {"connections": CONNS, "version": B.version(["curl", "--version"])}
        self.notes = (f"`curl --parallel --parallel-immediate --parallel-max {CONNS}`, a config file of one entry "
                      f"per request, no encryption: large = Put Block of {PIECE // MiB} MiB pieces (files cut "
                      "from the source beforehand, untimed) + one Put Block List; ranged GETs of "
                      f"{GET_PIECE // MiB} MiB ({range_header} header; Azurite computes an MD5 of every answer of at "
                      "most 4 MiB, so larger ranges are its best case) into piece files; small = one Put Blob / one "
                      "GET per file")

    def url(self, blob, query=""):
        q = "&".join(x for x in (query, self.sas) if x)
        return f"{self.endpoint}/{self.container}/{urllib.parse.quote(blob)}" + (f"?{q}" if q else "")

    def prepare(self, ds):
        """Cuts the large file into PIECE-sized files once (curl uploads whole files)."""
        if ds.name != "large" or ds.name in self.pieces:
            return
        d = os.path.join(self.work, "pieces")
        os.makedirs(d, exist_ok=True)
        n = (ds.bytes + PIECE - 1) // PIECE
        B.run(["split", "-b", str(PIECE), "-d", "-a", "6", os.path.join(ds.root, ds.rels[0]),
               os.path.join(d, "p")])
        self.pieces[ds.name] = [os.path.join(d, f"p{i:06d}") for i in range(n)]

    def _config(self, path, entries):
        with open(path, "w", encoding="utf-8") as f:
            for i, e in enumerate(entries):
                if i:
                    f.write("next\n")
                f.write('silent\nshow-error\nheader = "Expect:"\nwrite-out = "%{http_code}\\n"\n')
                for k, v in e:
                    f.write(f'{k} = "{v}"\n' if v is not None else f"{k}\n")

    def _run(self, ds, script, codes, want, count):
        """Runs a curl script that prints one status code per request; all count of them must be in want."""
        with open(os.path.join(self.work, "curl.err"), "w", encoding="utf-8") as err:
            m = B.run_measured(["sh", "-c", script], check=False, timeout=ds.timeout, stderr=err)
        with open(codes, encoding="ascii", errors="replace") as f:
            got = f.read().split()
        bad = [c for c in got if c not in want]
        if m.rc != 0 or bad or len(got) != count:
            with open(os.path.join(self.work, "curl.err"), encoding="utf-8", errors="replace") as f:
                err = f.read().strip()[-300:]
            raise RuntimeError(f"raw curl: exit {m.rc}, {len(got)} answers, unexpected {sorted(set(bad))[:5]}: {err}")
        return m

    def upload(self, ds):
        self.prepare(ds)
        cfg = os.path.join(self.work, f"put-{ds.name}.cfg")
        codes = os.path.join(self.work, "codes")
        blob = ds.rels[0]
        if ds.name == "large":
            ids = [base64.b64encode(b"blk-%08d" % i).decode() for i in range(len(self.pieces[ds.name]))]
            self._config(cfg, [[("url", self.url(blob, "comp=block&blockid=" + urllib.parse.quote(bid, safe=""))),
                                ("upload-file", p), ("output", "/dev/null")]
                               for bid, p in zip(ids, self.pieces[ds.name])])
            body = os.path.join(self.work, "blocklist.xml")
            with open(body, "w", encoding="ascii") as f:
                f.write('<?xml version="1.0" encoding="utf-8"?><BlockList>' +
                        "".join(f"<Latest>{i}</Latest>" for i in ids) + "</BlockList>")
            script = (f"curl --parallel --parallel-immediate --parallel-max {CONNS} -K '{cfg}' > '{codes}' && "
                      f"curl -sS -o /dev/null -w '%{{http_code}}\\n' -X PUT -H 'Content-Type: application/xml' "
                      f"--data-binary @'{body}' '{self.url(blob, 'comp=blocklist')}' >> '{codes}'")
            count = len(ids) + 1
        else:
            self._config(cfg, [[("url", self.url(rel)), ("upload-file", os.path.join(ds.root, rel)),
                                ("header", "x-ms-blob-type: BlockBlob"), ("output", "/dev/null")]
                               for rel in ds.rels])
            script = f"curl --parallel --parallel-immediate --parallel-max {CONNS} -K '{cfg}' > '{codes}'"
            count = ds.files
        return self._run(ds, script, codes, {"201"}, count)

    def download(self, ds, dst):
        cfg = os.path.join(self.work, f"get-{ds.name}.cfg")
        codes = os.path.join(self.work, "codes")
        os.makedirs(dst, exist_ok=True)
        if ds.name == "large":
            count = (ds.bytes + GET_PIECE - 1) // GET_PIECE
            entries = []
            for i in range(count):
                lo, hi = i * GET_PIECE, min(ds.bytes, (i + 1) * GET_PIECE) - 1
                entries.append([("url", self.url(ds.rels[0])), ("output", os.path.join(dst, f"p{i:06d}")),
                                ("header", f"{self.range_header}: bytes={lo}-{hi}")])
            self._config(cfg, entries)
            want = {"206"}
        else:
            self._config(cfg, [[("url", self.url(rel)), ("output", os.path.join(dst, rel)), ("create-dirs", None)]
                               for rel in ds.rels])
            want = {"200"}
            count = ds.files
        script = f"curl --parallel --parallel-immediate --parallel-max {CONNS} -K '{cfg}' > '{codes}'"
        return self._run(ds, script, codes, want, count)

    def check(self, ds, dst):
        if ds.name != "large":
            return super().check(ds, dst)
        import hashlib
        h = hashlib.sha256()
        n = (ds.bytes + GET_PIECE - 1) // GET_PIECE
        for i in range(n):
            B.sha256_file(os.path.join(dst, f"p{i:06d}"), h)
        if h.hexdigest() != ds.content_digest:
            return "the ranged GETs do not put the source back together"
        return None

    def discard(self, ds=None):
        if self.server is not None:
            self.server.empty(self.container)


class Ccr(Impl):
    """`ccr datastore upload|download` of one datastore (one container), with a private config."""

    def __init__(self, name, ccr, mode, work, url, key=None, connections=None, server=None, container=None):
        self.name, self.ccr, self.mode = name, ccr, mode
        self.dsname = name if connections is None else f"{name}-{connections}"
        self.url, self.key, self.connections = url, key, connections
        self.server, self.container = server, container
        self.confdir = os.path.join(work, "ccr-config")
        self.config = os.path.join(self.confdir, "config.json")
        self.out = os.path.join(work, f"{self.dsname}.json")
        self.datasets = ("large", "small") if mode != "cleanroom-cse" else ("large",)
        env = dict(os.environ, CCR_CONFIG=self.config, XDG_STATE_HOME=os.path.join(work, "state"),
                   AZURE_STORAGE_KEY=B_KEY)
        for v in ("CCR_MEMORY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_TOKEN",
                  "AZURE_STORAGE_TOKEN_FILE", "AZURE_STORAGE_IDENTITY_ENDPOINT", "CCR_AZ_LANES"):
            env.pop(v, None)
        self.env = env
        # None (Azurite runs) and "auto" both run without --connections: adaptive, from 8 up to 32. The
        # Azurite rows keep 32 (the ceiling) as their key, as the peers' rows do; nginx shows "auto".
        conns = connections if connections is not None else CONNS
        self.params = {"mode": mode, "connections": conns, "memory": "512M (default)",
                       "threads": "default (max(online CPUs, connections))"}
        self.notes = (f"`ccr datastore upload|download --no-journal` of a {mode} datastore "
                      f"({'--connections ' + str(conns) if isinstance(connections, int) else 'default connections: adaptive, 8 to 32'}), SharedKey auth, default "
                      "threads and memory budget")
        if mode == "none":
            self.notes += ("; its ranged GETs are exactly 4 MiB, which makes Azurite compute an MD5 of each answer "
                           "(it does for every answer of at most 4 MiB; ccr1's are 4 MiB + 64 bytes)")

    def cmd(self, verb, *args):
        return [self.ccr, "datastore", verb, "--config", self.config, *args]

    def add(self):
        os.makedirs(self.confdir, mode=0o700, exist_ok=True)
        keyarg = [] if self.mode == "none" else (["--key", self.key] if self.key else ["--new-key"])
        r = subprocess.run(self.cmd("add", self.dsname, "--url", self.url, "--mode", self.mode, "--force", *keyarg),
                           capture_output=True, text=True, env=self.env, timeout=60)
        if r.returncode != 0:
            return f"`ccr datastore add --mode {self.mode}` exit {r.returncode}: {r.stderr.strip()[:200]}"
        if not self.key and self.mode != "none":
            self.key = os.path.join(self.confdir, self.dsname + ".key")
        return None

    def _run(self, ds, verb, *args):
        errfile = self.out + ".stderr"
        extra = ["--connections", str(self.connections)] if isinstance(self.connections, int) else []
        with open(self.out, "w", encoding="utf-8") as out, open(errfile, "w", encoding="utf-8") as err:
            m = B.run_measured(self.cmd(verb, self.dsname, *args, *extra, "--no-journal", "--quiet", "--json"),
                               check=False, env=self.env, stdout=out, stderr=err, timeout=ds.timeout)
        with open(errfile, encoding="utf-8", errors="replace") as f:
            stderr = f.read().strip()
        if stderr:
            lines = stderr.splitlines()
            B.log(f"azure: ccr datastore {verb} ({self.dsname}) said ({len(lines)} lines): "
                  + " / ".join(lines[:3])[:500])
        if m.rc != 0:
            why = "timed out" if m.rc == -9 else f"exit {m.rc}"
            raise RuntimeError(f"`ccr datastore {verb}` ({self.dsname}) {why}: {stderr[:200]}")
        with open(self.out, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        try:
            summary = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError) as e:
            raise RuntimeError(f"ccr datastore {verb}: no JSON summary on stdout ({e})") from None
        if summary.get("errors") or summary.get("files") != ds.files:
            raise RuntimeError(f"ccr datastore {verb} ({self.dsname}): {lines[-1][:300]}")
        m.summary = summary
        return m

    def upload(self, ds):
        return self._run(ds, "upload", ds.root)

    def download(self, ds, dst):
        return self._run(ds, "download", dst)

    def discard(self, ds=None):
        if self.server is not None:
            self.server.empty(self.container)

    def stored(self, ds):
        if self.mode == "cleanroom-cse":
            chunks = max(1, -(-ds.bytes // (16 * MiB)))
            return chunks * (16 * MiB + 28) + ds.files * 1024
        return ds.bytes + ds.bytes // 65536 + ds.files * 1024


class Rclone(Impl):
    name = "rclone-crypt"

    def __init__(self, work, az):
        self.az = az
        self.container = "rclone-crypt"
        conf = os.path.join(work, "rclone.conf")
        open(conf, "w").close()
        obscured = B.run(["rclone", "obscure", "ccr-bench-password"], capture=True).stdout.strip()
        # rclone 1.60's azureblob `endpoint` is a host suffix (https://ACCOUNT.ENDPOINT), so a path-style
        # emulator URL goes in as an account SAS URL.
        self.env = dict(os.environ, RCLONE_CONFIG=conf,
                        RCLONE_CONFIG_AZBENCH_TYPE="azureblob",
                        RCLONE_CONFIG_AZBENCH_SAS_URL=f"{az.endpoint}?{az.account_sas()}",
                        RCLONE_CONFIG_AZBENCHC_TYPE="crypt",
                        RCLONE_CONFIG_AZBENCHC_REMOTE=f"azbench:{self.container}",
                        RCLONE_CONFIG_AZBENCHC_PASSWORD=obscured)
        self.flags = ["--transfers", str(CONNS), "--checkers", str(CONNS), "--azureblob-upload-concurrency",
                      str(CONNS), "--multi-thread-streams", str(CONNS)]
        self.params = {"version": B.version(["rclone", "version"]), "connections": CONNS}
        self.notes = ("`rclone copy` to / from a crypt remote (XSalsa20-Poly1305, 64 KiB chunks, standard name "
                      "encryption) over an azureblob remote (sas_url: an account SAS), "
                      + " ".join(self.flags) + "; 4 MiB upload chunks (the default, as ccr's units); MD5 of "
                      "the stored bytes computed on upload (rclone's default)")

    def upload(self, ds):
        return B.run_measured(["rclone", "copy", *self.flags, ds.root, f"azbenchc:{ds.name}"], env=self.env,
                              timeout=ds.timeout, stderr=subprocess.DEVNULL)

    def download(self, ds, dst):
        return B.run_measured(["rclone", "copy", *self.flags, f"azbenchc:{ds.name}", dst], env=self.env,
                              timeout=ds.timeout, stderr=subprocess.DEVNULL)

    def discard(self, ds=None):
        self.az.empty(self.container)

    def stored(self, ds):
        return ds.bytes + ds.bytes // 2048 + ds.files * 1024


class Sdk(Impl):
    def __init__(self, work, az, encrypt):
        self.az, self.encrypt = az, encrypt
        self.name = "sdk-cse" if encrypt else "sdk"
        self.container = self.name
        self.kek = os.path.join(work, "sdk-kek.bin")
        if encrypt and not os.path.exists(self.kek):
            with open(self.kek, "wb") as f:
                f.write(os.urandom(32))
        ver = az.sdk.get("azure-storage-blob", "?")
        self.params = {"version": f"azure-storage-blob {ver}", "connections": CONNS,
                       "encryption": "client-side v2 (AES-256-GCM, 4 MiB regions)" if encrypt else "none"}
        self.notes = (f"the Azure Python SDK (azure-storage-blob {ver}, /usr/bin/python3) in a child "
                      f"process, SharedKey auth, HTTP pool of {CONNS}: large = upload_blob / download_blob with "
                      f"max_concurrency={CONNS} (4 MiB blocks, the default), small = {CONNS} threads of one blob each"
                      + ("; client-side encryption v2 under an AES key-wrap KEK (python3-cryptography)"
                         if encrypt else "")
                      + "; its 4 MiB download chunks make Azurite compute an MD5 of each answer (it does for every "
                      "answer of at most 4 MiB)")

    def _cmd(self, op, path):
        cmd = [PY, os.path.abspath(__file__), "sdk-helper", op, self.az.endpoint, self.container, path,
               str(CONNS)]
        return cmd + ([self.kek] if self.encrypt else [])

    def upload(self, ds):
        return B.run_measured(self._cmd("upload", ds.root), timeout=ds.timeout)

    def download(self, ds, dst):
        return B.run_measured(self._cmd("download", dst), timeout=ds.timeout)

    def discard(self, ds=None):
        self.az.empty(self.container)


B_KEY = None  # the emulator's account key, set in main() from tests/integration/azurite.py


# ------------------------------------------------------------------------------------------------------
# The SDK client (this file run as `40_azure.py sdk-helper OP ENDPOINT CONTAINER PATH CONCURRENCY [KEK]`)
# ------------------------------------------------------------------------------------------------------

def sdk_helper(argv):
    import logging
    import requests
    from requests.adapters import HTTPAdapter
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobServiceClient

    logging.disable(logging.WARNING)
    op, endpoint, container, path, conc = argv[0], argv[1], argv[2], argv[3], int(argv[4])
    kw = {}
    if len(argv) > 5:
        from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

        class Kek:
            """The key-encryption-key interface the SDK calls: AES key wrap (RFC 3394) with a 256-bit key."""

            def __init__(self, key):
                self.key = key

            def wrap_key(self, key):
                return aes_key_wrap(self.key, key)

            def unwrap_key(self, key, algorithm):
                if algorithm != "A256KW":
                    raise ValueError(f"unknown key wrap algorithm {algorithm}")
                return aes_key_unwrap(self.key, key)

            def get_kid(self):
                return "ccr-bench-kek"

            def get_key_wrap_algorithm(self):
                return "A256KW"

        with open(argv[5], "rb") as f:
            kw = {"require_encryption": True, "key_encryption_key": Kek(f.read()), "encryption_version": "2.0"}
    sys.path.insert(0, INTEGRATION)
    import azurite
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=conc, pool_maxsize=conc))
    svc = BlobServiceClient(endpoint, credential={"account_name": azurite.ACCOUNT, "account_key": azurite.KEY},
                            transport=RequestsTransport(session=session, session_owner=False), **kw)
    cc = svc.get_container_client(container)
    if op == "upload":
        files = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for n in sorted(filenames):
                p = os.path.join(dirpath, n)
                files.append((os.path.relpath(p, path), p))
        if len(files) == 1:
            name, p = files[0]
            with open(p, "rb") as f:
                cc.upload_blob(name, f, length=os.path.getsize(p), max_concurrency=conc, overwrite=True)
        else:
            def put(item):
                with open(item[1], "rb") as f:
                    cc.upload_blob(item[0], f.read(), overwrite=True)
            with concurrent.futures.ThreadPoolExecutor(conc) as ex:
                list(ex.map(put, files))
    else:
        names = list(cc.list_blob_names())
        os.makedirs(path, exist_ok=True)
        if len(names) == 1:
            with open(os.path.join(path, names[0]), "wb") as f:
                cc.download_blob(names[0], max_concurrency=conc).readinto(f)
        else:
            def get(name):
                out = os.path.join(path, name)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                data = cc.download_blob(name).readall()
                with open(out, "wb") as f:
                    f.write(data)
            with concurrent.futures.ThreadPoolExecutor(conc) as ex:
                list(ex.map(get, names))


def az_admin(argv):
    """The AzAdmin child: answers one JSON request per line on stdin until EOF."""
    import datetime
    import logging

    from azure.storage.blob import (AccountSasPermissions, BlobServiceClient, ContainerSasPermissions, ResourceTypes,
                                    generate_account_sas, generate_container_sas)
    import azure.storage.blob as asb

    logging.disable(logging.WARNING)
    sys.path.insert(0, INTEGRATION)
    import azurite
    endpoint = argv[0]
    svc = BlobServiceClient(endpoint, credential={"account_name": azurite.ACCOUNT, "account_key": azurite.KEY})

    def window():
        now = datetime.datetime.now(datetime.timezone.utc)
        return {"start": now - datetime.timedelta(minutes=5), "expiry": now + datetime.timedelta(hours=12)}

    def export(container, directory):
        cc = svc.get_container_client(container)
        names = list(cc.list_blob_names())

        def get(name):
            p = os.path.join(directory, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                cc.download_blob(name, max_concurrency=8).readinto(f)
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(get, names))
        return len(names)

    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "versions":
                try:
                    import cryptography
                    from cryptography.hazmat.primitives import keywrap
                    crypto = cryptography.__version__ if hasattr(keywrap, "aes_key_wrap") else None
                except ImportError:
                    crypto = None
                out = {"azure-storage-blob": asb.__version__, "cryptography": crypto}
            elif op == "create":
                for c in req["containers"]:
                    svc.create_container(c)
                out = {}
            elif op == "empty":
                cc = svc.get_container_client(req["container"])
                cc.delete_container()
                cc.create_container()
                out = {}
            elif op == "warmup":
                cc = svc.get_container_client(req["container"])
                data = os.urandom(8 * MiB)
                for i in range(3):
                    cc.upload_blob(f"warm-up-{i}", data, overwrite=True, max_concurrency=4)
                    cc.download_blob(f"warm-up-{i}", max_concurrency=4).readall()
                    cc.delete_blob(f"warm-up-{i}")
                out = {}
            elif op == "container_sas":
                out = {"sas": generate_container_sas(azurite.ACCOUNT, req["container"], account_key=azurite.KEY,
                                                     permission=ContainerSasPermissions.from_string("racwdl"),
                                                     **window())}
            elif op == "account_sas":
                out = {"sas": generate_account_sas(azurite.ACCOUNT, azurite.KEY,
                                                   resource_types=ResourceTypes.from_string("sco"),
                                                   permission=AccountSasPermissions.from_string("racwdlup"),
                                                   **window())}
            elif op == "export":
                out = {"blobs": export(req["container"], req["dir"])}
            else:
                out = {"error": f"unknown op {op}"}
        except Exception as e:  # answer with it: the scenario decides
            out = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


# ------------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------------

def record_all(ds, impl, scenario, endpoint, pairs, extra_params=None, extra_notes=""):
    """pairs: [(Measured, server CPU seconds)]."""
    ms = [m for m, _ in pairs]
    params = dict(impl.params, **ds.params, endpoint=endpoint, **(extra_params or {}))
    notes = impl.notes + f"; endpoint {endpoint}; dataset {ds.name}: {ds.files:,} file(s), {ds.bytes:,} bytes" \
        + extra_notes
    gb = ds.bytes / 1e9
    B.record(SUITE, scenario, impl.name, "throughput", params, [ds.bytes / 1e6 / m.wall for m in ms], "MB/s", notes)
    if ds.files > 1:
        B.record(SUITE, scenario, impl.name, "files_per_s", params, [ds.files / m.wall for m in ms], "files/s",
                 notes)
    B.record(SUITE, scenario, impl.name, "cpu", params, [m.cpu / gb for m in ms], "CPU-s/GB", notes,
             user_s=[round(m.user, 3) for m in ms], sys_s=[round(m.sys, 3) for m in ms])
    B.record(SUITE, scenario, impl.name, "peak_rss", params, [m.maxrss_kib / 1024 for m in ms], "MiB", notes)
    B.record(SUITE, scenario, impl.name, "server_cpu", params, [s / gb for _, s in pairs], "CPU-s/GB",
             notes + f"; the server's ({endpoint}) own CPU time during the run, from /proc")


def describe(ds, m, server_s):
    rate = f", {ds.files / m.wall:,.0f} files/s" if ds.files > 1 else ""
    return f"{ds.bytes / 1e6 / m.wall:,.0f} MB/s{rate}, {m}, server {server_s:.2f} CPU-s"


def skip(scenario, impl, ds_name, endpoint, why, extra=None):
    B.append_raw({"suite": SUITE, "scenario": scenario, "impl": impl, "metric": "throughput",
                  "params": dict({"dataset": ds_name, "endpoint": endpoint}, **(extra or {})), "skipped": why})


def timed(server, fn, *args):
    c0 = server.cpu()
    m = fn(*args)
    return m, max(0.0, server.cpu() - c0)


def measure_azurite(ds, impls, az, work, runs, failures, on_kept=None):
    """All runs of one dataset against Azurite (see the module doc for the order)."""
    dst = os.path.join(work, "download")
    impls = [i for i in impls if ds.name in i.datasets]
    res, failed = {}, set()

    def fail(impl, why):
        B.log(f"azure: azurite {ds.name}: {impl.name} FAILED: {why}")
        failed.add(impl.name)
        failures.append(f"{impl.name} (azurite, {ds.name}): {why}")
        B.rm(dst)
        for scenario in ("publish", "download"):
            skip(scenario, impl.name, ds.name, "azurite", f"failed during the run on the {ds.name} dataset: {why}")

    def publish(impl, r):
        impl.discard(ds)
        az.ensure_room(impl.stored(ds))
        m, s = timed(az, impl.upload, ds)
        B.log(f"azure: azurite {ds.name} publish {impl.name} run {r + 1}/{runs}: {describe(ds, m, s)}")
        res.setdefault(("publish", impl.name), []).append((m, s))

    for r in range(runs - 1):
        for impl in impls:
            if impl.name in failed:
                continue
            try:
                publish(impl, r)
                # Emptied at once: Azurite slows down with every blob it holds (a third slower for small
                # files with another implementation's 2,000 blobs beside them).
                impl.discard(ds)
            except (RuntimeError, OSError) as e:
                fail(impl, str(e)[:300])
    for impl in impls:
        if impl.name in failed:
            continue
        try:
            publish(impl, runs - 1)
            for r in range(runs):
                B.rm(dst)
                m, s = timed(az, impl.download, ds, dst)
                B.log(f"azure: azurite {ds.name} download {impl.name} run {r + 1}/{runs}: {describe(ds, m, s)}")
                res.setdefault(("download", impl.name), []).append((m, s))
            why = impl.check(ds, dst)
            B.rm(dst)
            if why:
                raise RuntimeError(why)
            if on_kept:
                on_kept(impl, ds)
            impl.discard(ds)
        except (RuntimeError, OSError) as e:
            fail(impl, str(e)[:300])
            continue
        for scenario in ("publish", "download"):
            record_all(ds, impl, scenario, "azurite", res[(scenario, impl.name)],
                       {"server": az.version}, "; the server (Azurite, one Node.js process) is the bottleneck")
    return res


def measure_nginx(ds, impls, ngx, work, runs, failures):
    """Publishes, then downloads, each interleaved across implementations run by run."""
    dst = os.path.join(work, "download")
    res, failed = {}, set()
    impls = [i for i in impls if ds.name in i.datasets]

    def key(impl):
        return impl.dsname if hasattr(impl, "dsname") else impl.name

    for op in ("publish", "download"):
        for r in range(runs):
            for impl in impls:
                if key(impl) in failed or (op == "publish" and not impl.publishes):
                    continue
                try:
                    B.rm(dst)
                    if op == "publish":
                        m, s = timed(ngx, impl.upload, ds)
                    else:
                        m, s = timed(ngx, impl.download, ds, dst)
                        if r == runs - 1:
                            why = impl.check(ds, dst)
                            if why:
                                raise RuntimeError(why)
                    B.rm(dst)
                    B.log(f"azure: nginx {ds.name} {op} {key(impl)} run {r + 1}/{runs}: {describe(ds, m, s)}")
                    res.setdefault((op, key(impl)), []).append((m, s))
                except (RuntimeError, OSError) as e:
                    why = str(e)[:300]
                    B.log(f"azure: nginx {ds.name}: {key(impl)} FAILED: {why}")
                    failed.add(key(impl))
                    failures.append(f"{key(impl)} (nginx, {ds.name}): {why}")
                    B.rm(dst)
                    for scenario in ("publish", "download"):
                        skip(scenario, impl.name, ds.name, "nginx", f"failed during the run: {why}",
                             {"connections": impl.params.get("connections")})
    for impl in impls:
        if key(impl) in failed:
            continue
        for scenario in ("publish", "download"):
            if (scenario, key(impl)) in res:
                record_all(ds, impl, scenario, "nginx", res[(scenario, key(impl))],
                           {"server": ngx.version, "range": getattr(impl, "range_header", "x-ms-range")},
                           "; the server (nginx, 2 workers, sharing the 2 cores) costs little: this measures the "
                           "client")


# ------------------------------------------------------------------------------------------------------
# Is ccr's datastore CLI there and working against Azurite?
# ------------------------------------------------------------------------------------------------------

def ccr_probe(impl, work):
    why = impl.add()
    if why:
        return why
    root = os.path.join(work, "probe-src")
    dst = os.path.join(work, "probe-dst")
    try:
        ds = Dataset("probe", root, *B.probe_tree(root))
        ds.timeout = 120
        impl.upload(ds)
        impl.download(ds, dst)
        if B.tree_digest(dst) != B.tree_digest(root):
            return f"{impl.mode} upload + download round trip through Azurite is not byte-exact"
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return str(e)[:300]
    finally:
        B.rm(root)
        B.rm(dst)
        impl.discard()
    return None


def curl_parallel_ok():
    if not shutil.which("curl"):
        return "curl is not installed"
    r = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True)
    if "--parallel-max" not in r.stdout:
        return "this curl has no --parallel (needs 7.66 or later)"
    return None


# ------------------------------------------------------------------------------------------------------

def main():
    global B_KEY
    work = B.scratch_dir("azure")
    runs = B.RUNS
    small_bytes = SMALL_FILES * SMALL_SIZE
    # source, raw-curl pieces, one download, nginx's ccr1 copy; Azurite's data (BUDGET) and its overhead
    need = 4 * SIZE + 4 * small_bytes + BUDGET + 1 * GiB
    st = os.statvfs(work)
    if B.mem_available_bytes() < need or st.f_bavail * st.f_frsize < 4 * SIZE + 4 * small_bytes:
        raise SystemExit(f"azure: need {need / GiB:.1f} GiB free memory (and {(4 * SIZE) / GiB:.1f} GiB of tmpfs) "
                         f"for a {SIZE / GiB:.2f} GiB file and Azurite; set BENCH_AZURE_SIZE or BENCH_AZURE_BUDGET "
                         "smaller")
    failures = []
    with B.Cleanup() as cleanup:
        cleanup.add(B.rm, work)
        ccr = B.tool_path("ccr")
        curl_why = curl_parallel_ok()

        # ---- Azurite and the peers against it ----
        az, az_why = None, None
        sdk_why = subprocess.run([PY, "-c", "import azure.storage.blob, requests"], capture_output=True,
                                 text=True).returncode
        if sdk_why:
            az_why = "the Azure Python SDK is missing from /usr/bin/python3 (tools/bootstrap.sh installs python3-azure)"
        try:
            sys.path.insert(0, INTEGRATION)
            import azurite  # standard library only at import
            B_KEY = azurite.KEY
        except ImportError as e:
            az_why = az_why or f"cannot load tests/integration/azurite.py ({e})"
        if not az_why:
            try:
                azurite.ensure_installed()
                az = AzuriteServer(["raw-curl", "ccr-none", "ccr-ccr1", "ccr-cse", "rclone-crypt", "sdk", "sdk-cse"])
                cleanup.add(az.close)
                az.start()
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                az_why = f"Azurite cannot run: {str(e)[:300]}"
                az = None
        if B_KEY is None:  # the emulator's published well-known key (Azurite's README)
            B_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

        impls = []
        if az_why:
            B.log(f"azure: every Azurite figure skipped: {az_why}")
            for name in ("raw-curl", "ccr-none", "ccr-ccr1", "ccr-cse", "rclone-crypt", "sdk", "sdk-cse"):
                for dsn in ("large", "small"):
                    skip("publish", name, dsn, "azurite", az_why)
        else:
            B.log(f"azure: {az.version} on port {az.port} (pid {az.pid}), in memory, data budget "
                  f"{BUDGET / GiB:.1f} GiB between restarts")
            if curl_why:
                for dsn in ("large", "small"):
                    skip("publish", "raw-curl", dsn, "azurite", curl_why)
            else:
                impls.append(RawCurl(work, az.endpoint, az.sas("raw-curl"), server=az))
            for name, mode in (("ccr-none", "none"), ("ccr-ccr1", "ccr1"), ("ccr-cse", "cleanroom-cse")):
                impl = Ccr(name, ccr, mode, work, f"{az.endpoint}/{name}", server=az, container=name) if ccr \
                    else None
                why = ccr_probe(impl, work) if impl else f"no ccr binary in {B.BUILD}/tools"
                if why:
                    B.log(f"azure: {name} skipped: {why}")
                    for dsn in impl.datasets if impl else ("large", "small"):
                        skip("publish", name, dsn, "azurite", why)
                else:
                    impls.append(impl)
            if shutil.which("rclone"):
                impls.append(Rclone(work, az))
            else:
                for dsn in ("large", "small"):
                    skip("publish", "rclone-crypt", dsn, "azurite",
                         "rclone is not installed (tools/bootstrap.sh bench)")
            impls.append(Sdk(work, az, False))
            if az.sdk.get("cryptography"):
                impls.append(Sdk(work, az, True))
            else:
                for dsn in ("large", "small"):
                    skip("publish", "sdk-cse", dsn, "azurite", "python3-cryptography is missing (no key-wrap KEK)")
            skip("publish", "ccr-cse", "small", "azurite",
                 "cleanroom-cse pads every blob to its chunk (16 MiB): the small files would store "
                 f"{SMALL_FILES * 16 * MiB / 1e9:.0f} GB", {"note": "by design"})

        # ---- nginx ----
        ngx, ngx_why = None, None
        if not shutil.which("nginx"):
            ngx_why = "nginx is not installed (tools/bootstrap.sh bench installs nginx-light)"
        elif not ccr:
            ngx_why = f"no ccr binary in {B.BUILD}/tools"
        else:
            try:
                ngx = NginxServer(os.path.join(work, "nginx"))
                cleanup.add(ngx.stop)
                ngx.start()
                B.log(f"azure: {ngx.version} on port {ngx.port} (pid {ngx.proc.pid})")
            except (RuntimeError, OSError) as e:
                ngx_why = f"nginx cannot run: {str(e)[:300]}"
                ngx = None
        if ngx_why:
            B.log(f"azure: every nginx figure skipped: {ngx_why}")
            for name in ("ccr-none", "ccr-ccr1"):
                for dsn in ("large", "small"):
                    skip("publish", name, dsn, "nginx", ngx_why)

        # ccr1 blobs for nginx: exactly what ccr published to Azurite, fetched raw with the SDK.
        exported = {}
        ccr1_key = next((i.key for i in impls if getattr(i, "mode", None) == "ccr1"), None)

        def export(impl, ds):
            if impl.name != "ccr-ccr1" or not ngx:
                return
            n = az.export(impl.container, ngx.container_dir(f"ccr1-{ds.name}"))
            ngx.write_listing(f"ccr1-{ds.name}")
            exported[ds.name] = n

        datasets = []
        B.log(f"azure: generating {SMALL_FILES:,} files of {SMALL_SIZE} bytes")
        small = gen_small(work)
        small.digest = B.tree_digest(small.root)[2]
        B.log(f"azure: generating a file of {SIZE:,} bytes ({SIZE / GiB:.2f} GiB)")
        large = gen_large(work)
        large.digest = B.tree_digest(large.root)[2]
        large.content_digest = B.sha256_file(os.path.join(large.root, "data.bin")).hexdigest()
        datasets = [small, large]
        B.prefault(work, 2 * SIZE)

        t0 = time.monotonic()
        if az:
            for ds in datasets:
                measure_azurite(ds, impls, az, work, runs, failures, on_kept=export)
            B.log(f"azure: Azurite part done in {time.monotonic() - t0:.0f} s ({az.restarts} restarts)")
            for impl in impls:
                if isinstance(impl, RawCurl):
                    B.rm(impl.work)
            az.close()

        if ngx:
            t1 = time.monotonic()
            for ds in datasets:
                nimpls = []
                if curl_why:
                    skip("publish", "raw-curl", ds.name, "nginx", curl_why)
                else:
                    for rh in ("Range", "x-ms-range"):
                        rc = RawCurl(work, ngx.endpoint, None, name="raw-curl" if rh == "Range" else "raw-curl-xms",
                                     range_header=rh, container=f"none-{ds.name}")
                        if rh != "Range":
                            rc.publishes = False  # one PUT reference is enough
                            rc.notes += "; GETs carry x-ms-range, so nginx serves them through its proxy hop"
                        else:
                            rc.notes += "; GETs carry Range, which nginx serves straight from the file (sendfile)"
                        nimpls.append(rc)
                # mode none: the stored blobs are the source files themselves
                cdir = ngx.container_dir(f"none-{ds.name}")
                for rel in ds.rels:
                    os.makedirs(os.path.dirname(os.path.join(cdir, rel)), exist_ok=True)
                    os.link(os.path.join(ds.root, rel), os.path.join(cdir, rel))
                ngx.write_listing(f"none-{ds.name}")
                modes = [("none", "ccr-none", None)]
                if ds.name in exported and ccr1_key:
                    modes.append(("ccr1", "ccr-ccr1", ccr1_key))
                else:
                    why = "no ccr1 blobs to serve: ccr-ccr1 did not publish this dataset to Azurite in this run"
                    for c in NGINX_CONNS:
                        skip("publish", "ccr-ccr1", ds.name, "nginx", why, {"connections": c})
                for conns in NGINX_CONNS:
                    for mode, name, key in modes:
                        impl = Ccr(name, ccr, mode, work, f"{ngx.endpoint}/{mode}-{ds.name}", key=key,
                                   connections=conns)
                        impl.dsname = f"ngx-{mode}-{ds.name}-{conns}"
                        why = impl.add()
                        if why:
                            skip("publish", name, ds.name, "nginx", why, {"connections": conns})
                            failures.append(f"{name} (nginx): {why}")
                        else:
                            nimpls.append(impl)
                measure_nginx(ds, nimpls, ngx, work, runs, failures)
                B.rm(ngx.container_dir(f"none-{ds.name}"))
                B.rm(ngx.container_dir(f"ccr1-{ds.name}"))
            B.log(f"azure: nginx part done in {time.monotonic() - t1:.0f} s")
        for ds in datasets:
            B.rm(ds.root)
    if failures:
        raise SystemExit("azure: failed: " + "; ".join(failures))
    B.log("azure: done, scratch removed")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sdk-helper":
        sdk_helper(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "az-admin":
        az_admin(sys.argv[2:])
    else:
        main()
