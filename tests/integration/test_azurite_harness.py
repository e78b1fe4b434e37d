#!/usr/bin/python3
"""The Azure test harness itself, proven with the real Azure SDK (python3-azure) and no ccr: Azurite in memory
(containers, blobs, listing, service and account SAS and their limits), the fault proxy (the SDK round-trips a
10 MiB blob byte-exact through 503s and resets, and each fault kind does what it says on the wire), Azurite on
disk across restart(), and HTTPS + OAuth (bearer tokens from make_bearer_token and from the IMDS-style
TokenServer are accepted; garbage, expired and wrong-audience tokens are refused with 403).

Needs Node.js/npm (tools/bootstrap-azurite.sh installs Azurite into tests/azurite/node_modules on first use)."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import ccrtest
from ccrtest import MiB
from azurite import Azurite, StaticTokenCredential, TokenServer, make_bearer_token
from faultproxy import FaultProxy

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient, LinearRetry


def fast_retry(total=10):
    """The SDK's default backoff starts at 15 s; tests want the same retries without the wait."""
    return LinearRetry(backoff=0.05, random_jitter_range=0.02, retry_total=total)


def payload(n, seed):
    """n deterministic pseudo-random bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.shake_256(b"%d:%d" % (seed, i)).digest(min(MiB, n - len(out)))
        i += 1
    return bytes(out)


class InMemory(unittest.TestCase):
    """One in-memory Azurite shared by the cases below (each uses its own container)."""

    @classmethod
    def setUpClass(cls):
        cls.az = Azurite()
        cls.addClassCleanup(cls.az.close)  # also when the rest of setUpClass fails
        cls.az.start()
        cls.svc = cls.az.service_client(retry_policy=fast_retry())


    def test_attributes(self):
        az = self.az
        self.assertTrue(az.running())
        self.assertEqual(az.account, "devstoreaccount1")
        self.assertEqual(az.blob_endpoint, "http://127.0.0.1:%d/devstoreaccount1" % az.port)
        self.assertIn("AccountName=devstoreaccount1;", az.connection_string)
        self.assertIn("AccountKey=%s;" % az.key, az.connection_string)
        self.assertIn("BlobEndpoint=%s" % az.blob_endpoint, az.connection_string)
        self.assertEqual(az.url("cont", "a b/c"), az.blob_endpoint + "/cont/a%20b/c")
        self.assertIn("--disableTelemetry", az.argv())
        self.assertIn("--inMemoryPersistence", az.argv())

    def test_upload_download_list(self):
        c = self.svc.create_container("basic")
        data = payload(3 * MiB + 17, 1)
        c.upload_blob("dir/one.bin", data)
        self.assertEqual(c.download_blob("dir/one.bin").readall(), data)
        self.assertEqual(c.get_blob_client("dir/one.bin").get_blob_properties().size, len(data))
        for i in range(20):
            c.upload_blob("many/%02d" % i, b"blob %d" % i)
        names = [b.name for b in c.list_blobs(name_starts_with="many/", results_per_page=7)]
        self.assertEqual(names, ["many/%02d" % i for i in range(20)])
        self.assertEqual(c.download_blob("many/13").readall(), b"blob 13")
        c.delete_blob("many/13")
        self.assertEqual(len(list(c.list_blobs(name_starts_with="many/"))), 19)
        # The connection string names the same account and endpoint.
        other = BlobServiceClient.from_connection_string(self.az.connection_string)
        self.assertEqual(other.get_container_client("basic").download_blob("many/00").readall(), b"blob 0")

    def test_container_sas(self):
        self.svc.create_container("sas")
        sas = self.az.container_sas("sas")
        cc = ContainerClient.from_container_url(self.az.url("sas") + "?" + sas, retry_policy=fast_retry())
        cc.upload_blob("x", b"through a SAS")
        self.assertEqual([b.name for b in cc.list_blobs()], ["x"])
        self.assertEqual(cc.download_blob("x").readall(), b"through a SAS")
        # A read+list SAS reads but cannot write; a SAS for another container gets nothing here.
        ro = ContainerClient.from_container_url(self.az.url("sas") + "?" + self.az.container_sas("sas", "rl"))
        self.assertEqual(ro.download_blob("x").readall(), b"through a SAS")
        with self.assertRaises(HttpResponseError) as cm:
            ro.upload_blob("y", b"no")
        self.assertEqual(cm.exception.status_code, 403)
        wrong = ContainerClient.from_container_url(self.az.url("sas") + "?" + self.az.container_sas("other"))
        with self.assertRaises(HttpResponseError) as cm:
            wrong.download_blob("x").readall()
        self.assertEqual(cm.exception.status_code, 403)
        # Plain HTTP with the SAS (what a C client does): GET the blob.
        with urllib.request.urlopen(self.az.url("sas", "x") + "?" + sas, timeout=30) as r:
            self.assertEqual(r.read(), b"through a SAS")

    def test_account_sas(self):
        self.svc.create_container("acct")
        svc = BlobServiceClient(self.az.blob_endpoint, credential=self.az.account_sas())
        svc.get_container_client("acct").upload_blob("y", b"account sas")
        self.assertIn("acct", [c.name for c in svc.list_containers()])
        ro = BlobServiceClient(self.az.blob_endpoint, credential=self.az.account_sas(permission="rl"))
        self.assertEqual(ro.get_container_client("acct").download_blob("y").readall(), b"account sas")
        with self.assertRaises(HttpResponseError) as cm:
            ro.get_container_client("acct").upload_blob("z", b"no")
        self.assertEqual(cm.exception.status_code, 403)

    def test_no_credentials_refused(self):
        self.svc.create_container("private")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(self.az.url("private") + "?restype=container&comp=list", timeout=30)
        self.assertIn(cm.exception.code, (403, 404))


class Proxy(unittest.TestCase):
    """The fault proxy in front of an in-memory Azurite."""

    @classmethod
    def setUpClass(cls):
        cls.az = Azurite()
        cls.addClassCleanup(cls.az.close)  # also when the rest of setUpClass fails
        cls.az.start()
        cls.az.service_client().create_container("proxied")
        cls.sas = cls.az.container_sas("proxied")


    def proxy(self, **kw):
        return self.proxy_to(self.az.port, **kw)

    def proxy_to(self, port, **kw):
        p = FaultProxy(port, **kw).start()
        self.addCleanup(p.stop)
        return p

    def conn(self, p):
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
        self.addCleanup(c.close)
        return c

    def path(self, blob):
        return "/devstoreaccount1/proxied/%s?%s" % (blob, self.sas)

    def put(self, c, blob, data, **headers):
        h = {"x-ms-blob-type": "BlockBlob", "Content-Length": str(len(data))}
        h.update(headers)
        c.request("PUT", self.path(blob), body=data, headers=h)
        r = c.getresponse()
        r.read()
        return r

    def direct(self):
        return self.az.service_client().get_container_client("proxied")

    def test_sdk_roundtrip_through_503_and_reset(self):
        p = self.proxy(faults={"503": 0.1, "reset": 0.1}, seed=1, retry_after="random")
        svc = self.az.service_client(endpoint=p.endpoint(), retry_policy=fast_retry(), max_block_size=MiB,
                                     max_single_put_size=MiB, max_single_get_size=MiB, max_chunk_get_size=MiB)
        c = svc.get_container_client("proxied")
        data = payload(10 * MiB, 2)
        c.upload_blob("big", data, overwrite=True)
        blocks = self.direct().get_blob_client("big").get_block_list()[0]
        self.assertEqual([b.size for b in blocks], [MiB] * 10)
        self.assertEqual(c.download_blob("big").readall(), data)
        self.assertEqual(self.direct().download_blob("big").readall(), data)
        n = p.counts
        self.assertGreater(n["503"], 0, n)
        self.assertGreater(n["reset"], 0, n)
        self.assertGreaterEqual(n["requests"], 22, n)  # 10 blocks + commit + 10 ranged reads, plus retries
        self.assertEqual(n["requests"], n["forwarded"] + n["503"], n)
        self.assertEqual(n.get("upstream_errors", 0), 0, n)

    def test_no_faults_keepalive(self):
        p = self.proxy()
        c = self.conn(p)
        for i in range(5):
            self.assertEqual(self.put(c, "ka%d" % i, b"v%d" % i).status, 201)
        c.request("GET", self.path("ka3"))
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"v3"))
        c.request("HEAD", self.path("ka3"))
        r = c.getresponse()
        self.assertEqual((r.status, r.read(), r.getheader("Content-Length")), (200, b"", "2"))
        self.assertEqual(p.counts["requests"], 7)
        self.assertEqual(p.faults_injected(), 0)

    def test_chunked_bodies(self):
        """Chunked request bodies (Azurite refuses them, as Azure does, so an echo server answers) and chunked
        answers (Azurite's listings) pass through intact."""
        echo = EchoUpstream(self)
        p = self.proxy_to(echo.port)
        c = self.conn(p)
        data = payload(MiB + 5, 3)
        pieces = [data[i:i + 100000] for i in range(0, len(data), 100000)]
        for chunked_answer in (False, True):
            c.request("PUT", "/echo", body=iter(pieces), encode_chunked=True,
                      headers={"Transfer-Encoding": "chunked", "X-Echo-Chunked": "1" if chunked_answer else "0"})
            r = c.getresponse()
            self.assertEqual(r.getheader("Transfer-Encoding"), "chunked" if chunked_answer else None)
            self.assertEqual((r.status, r.read()), (200, data))
        self.assertEqual(echo.connections, 1)
        for i in range(3):
            self.direct().upload_blob("list/%d" % i, b"x", overwrite=True)
        p = self.proxy()
        cc = ContainerClient.from_container_url("%s/proxied?%s" % (p.endpoint(), self.sas))
        self.assertEqual([b.name for b in cc.list_blobs(name_starts_with="list/")], ["list/0", "list/1", "list/2"])
        c = self.conn(p)
        p.configure(schedule={1: "truncate"})
        c.request("GET", "/devstoreaccount1/proxied?restype=container&comp=list&" + self.sas)
        r = c.getresponse()
        self.assertEqual((r.status, r.getheader("Transfer-Encoding")), (200, "chunked"))
        with self.assertRaises(http.client.IncompleteRead):
            r.read()

    def test_503_answers_without_forwarding(self):
        p = self.proxy(schedule={1: "503", 3: "503"}, retry_after=2)
        c = self.conn(p)
        r = self.put(c, "busy", b"first")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.getheader("x-ms-error-code"), "ServerBusy")
        self.assertEqual(r.getheader("Retry-After"), "2")
        self.assertFalse(self.direct().get_blob_client("busy").exists())
        self.assertEqual(self.put(c, "busy", b"second").status, 201)  # same connection, still usable
        p.configure(retry_after=None)
        r = self.put(c, "busy", b"third")
        self.assertEqual(r.status, 503)
        self.assertIsNone(r.getheader("Retry-After"))
        self.assertEqual(self.direct().download_blob("busy").readall(), b"second")
        self.assertEqual((p.counts["503"], p.counts["forwarded"]), (2, 1))

    def test_reset_after_forwarding(self):
        p = self.proxy(schedule={1: "reset"})
        c = self.conn(p)
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)) as cm:
            self.put(c, "rst", b"written anyway")
        self.assertIsInstance(cm.exception, ConnectionResetError)  # RST, not a FIN
        self.assertEqual(self.direct().download_blob("rst").readall(), b"written anyway")
        self.assertEqual(p.counts["reset"], 1)

    def test_reset_early(self):
        p = self.proxy(schedule={1: "reset-early"})
        c = self.conn(p)
        with self.assertRaises(OSError):
            self.put(c, "early", payload(4 * MiB, 4))
        self.assertFalse(self.direct().get_blob_client("early").exists())
        self.assertEqual((p.counts["reset-early"], p.counts["forwarded"]), (1, 0))

    def test_truncate(self):
        self.direct().upload_blob("trunc", payload(100000, 5), overwrite=True)
        p = self.proxy(methods={"GET"}, faults={"truncate": 1.0})
        c = self.conn(p)
        self.assertEqual(self.put(c, "trunc2", b"puts pass").status, 201)  # not a GET: not eligible
        c.request("GET", self.path("trunc"))
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        with self.assertRaises(http.client.IncompleteRead) as cm:
            r.read()
        self.assertEqual(len(cm.exception.partial), 50000)
        self.assertEqual((p.counts["truncate"], p.counts["requests"]), (1, 2))

    def test_stall_and_stall_body(self):
        data = payload(200000, 6)
        self.direct().upload_blob("slow", data, overwrite=True)
        p = self.proxy(url_regex=r"/slow\?", schedule={1: "stall", 2: "stall-body"}, stall_seconds=1.0)
        c = self.conn(p)
        for kind in ("stall", "stall-body"):
            t0 = time.monotonic()
            c.request("GET", self.path("slow"))
            r = c.getresponse()
            self.assertEqual(r.read(), data, kind)
            self.assertGreaterEqual(time.monotonic() - t0, 0.95, kind)
        t0 = time.monotonic()
        c.request("GET", self.path("slow"))
        self.assertEqual(c.getresponse().read(), data)
        self.assertLess(time.monotonic() - t0, 0.9)  # the schedule is used up: no stall
        # A client that gives up during a stall sees a timeout.
        p.configure(schedule={1: "stall"}, stall_seconds=3)
        s = http.client.HTTPConnection("127.0.0.1", p.port, timeout=0.3)
        self.addCleanup(s.close)
        s.request("GET", self.path("slow"))
        with self.assertRaises(socket.timeout):
            s.getresponse()
        self.assertEqual((p.counts["stall"], p.counts["stall-body"]), (2, 1))

    def test_delay(self):
        p = self.proxy(delay_ms=100)
        c = self.conn(p)
        t0 = time.monotonic()
        for i in range(5):
            self.assertEqual(self.put(c, "d%d" % i, b"x").status, 201)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)

    def test_rates_are_seeded(self):
        def run():
            p = self.proxy(faults={"503": 0.5}, seed=7)
            c = self.conn(p)
            out = [self.put(c, "seed", b"x").status for _ in range(12)]
            p.stop()
            return out

        a, b = run(), run()
        self.assertEqual(a, b)
        self.assertIn(503, a)
        self.assertIn(201, a)

    def test_expect_100_continue_with_curl(self):
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        p = self.proxy(schedule={2: "503"})
        data = payload(2 * MiB, 8)
        src = os.path.join(tempfile.mkdtemp(prefix="ccr-px-"), "src")
        self.addCleanup(shutil.rmtree, os.path.dirname(src), ignore_errors=True)
        with open(src, "wb") as f:
            f.write(data)
        url = "http://127.0.0.1:%d%s" % (p.port, self.path("curl"))
        cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-T", src,
               "-H", "x-ms-blob-type: BlockBlob", "-H", "Expect: 100-continue", url]
        res = [subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60) for _ in range(2)]
        self.assertEqual([r.stdout for r in res], [b"201", b"503"], [r.stderr for r in res])
        self.assertEqual(self.direct().download_blob("curl").readall(), data)

    def test_upstream_closing_idle_connections(self):
        """An upstream that silently closes each connection after one answer (as Azurite does after 5 s idle):
        every request still gets its answer through one kept-alive client connection."""
        echo = EchoUpstream(self, close_each=True)
        p = self.proxy_to(echo.port)
        c = self.conn(p)
        for i in range(10):
            c.request("POST", "/echo", body=b"req %d" % i)
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"req %d" % i))
        self.assertEqual(echo.connections, 10)
        self.assertEqual(p.counts["forwarded"], 10)
        self.assertEqual(p.counts.get("upstream_errors", 0), 0)

    def test_upstream_dropping_a_reused_connection(self):
        """The race the idle check cannot catch: the upstream drops a kept-alive connection just as a request
        goes out. The proxy replays the request on a fresh connection; the client never notices."""
        echo = EchoUpstream(self, drop_second=True)
        p = self.proxy_to(echo.port)
        c = self.conn(p)
        for i in range(10):
            body = payload(100000 + i, 10 + i)
            c.request("PUT", "/echo", body=body)
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, body))
        n = p.counts
        self.assertEqual((n["forwarded"], n["replayed"], n.get("upstream_errors", 0)), (10, 9, 0), n)
        self.assertEqual(echo.connections, 10)


class EchoUpstream:
    """A minimal HTTP/1.1 upstream for proxy tests: answers every request with its body (Content-Length, or
    chunked when the request says X-Echo-Chunked: 1); close_each closes after every answer without saying so;
    drop_second reads the second request on a connection and closes without answering."""

    def __init__(self, case, close_each=False, drop_second=False):
        self.close_each = close_each
        self.drop_second = drop_second
        self.connections = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        case.addCleanup(self.lsock.close)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        with s, s.makefile("rb") as f:
            served = 0
            while True:
                line = f.readline()
                if not line:
                    return
                headers = {}
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b""):
                        break
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                if headers.get("transfer-encoding") == "chunked":
                    body = b""
                    while True:
                        n = int(f.readline().split(b";")[0], 16)
                        body += f.read(n)
                        f.readline()
                        if n == 0:
                            break
                else:
                    body = f.read(int(headers.get("content-length", "0")))
                served += 1
                if self.drop_second and served == 2:
                    return
                if headers.get("x-echo-chunked") == "1":
                    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    for i in range(0, len(body), 65536):
                        piece = body[i:i + 65536]
                        out += b"%x\r\n%s\r\n" % (len(piece), piece)
                    s.sendall(out + b"0\r\n\r\n")
                else:
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                if self.close_each:
                    return


class OnDisk(unittest.TestCase):
    def test_restart_keeps_blobs(self):
        loc = tempfile.mkdtemp(prefix="ccr-azurite-disk-")
        self.addCleanup(shutil.rmtree, loc, ignore_errors=True)
        data = payload(2 * MiB + 3, 9)
        with Azurite(location=loc) as az:
            self.assertNotIn("--inMemoryPersistence", az.argv())
            c = az.service_client().create_container("disk")
            c.upload_blob("kept", data)
            port = az.port
            az.restart()
            self.assertTrue(az.running())
            self.assertEqual(az.port, port)
            c = az.service_client().get_container_client("disk")
            self.assertEqual(c.download_blob("kept").readall(), data)
            self.assertEqual([b.name for b in c.list_blobs()], ["kept"])
            az.stop()
            self.assertFalse(az.running())
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertTrue(os.listdir(loc))  # the store stays where the caller put it

    def test_in_memory_restart_forgets(self):
        with Azurite() as az:
            az.service_client().create_container("gone")
            az.restart()
            self.assertEqual([c.name for c in az.service_client().list_containers()], [])


class ImdsCredential:
    """A TokenCredential that asks an IMDS-style endpoint, as a managed-identity client does."""

    def __init__(self, url):
        self.url = url

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        resource = scopes[0][: -len("/.default")] if scopes[0].endswith("/.default") else scopes[0]
        q = urllib.parse.urlencode({"api-version": "2018-02-01", "resource": resource})
        req = urllib.request.Request(self.url + "?" + q, headers={"Metadata": "true"})
        with urllib.request.urlopen(req, timeout=10) as r:
            j = json.load(r)
        return AccessToken(j["access_token"], int(j["expires_on"]))


class HttpsOAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.az = Azurite(https=True, oauth=True)
        cls.addClassCleanup(cls.az.close)
        cls.az.start()
        cls.az.service_client().create_container("tok")


    def client(self, token):
        return self.az.service_client(credential=StaticTokenCredential(token),
                                      retry_policy=fast_retry(2)).get_container_client("tok")

    def test_tls(self):
        az = self.az
        self.assertTrue(az.blob_endpoint.startswith("https://127.0.0.1:%d/" % az.port))
        self.assertIn("DefaultEndpointsProtocol=https;", az.connection_string)
        for host in ("127.0.0.1", "localhost"):
            ctx = ssl.create_default_context(cafile=az.ca_file)
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT
            with socket.create_connection(("127.0.0.1", az.port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as s:
                    self.assertEqual(s.getpeercert()["subjectAltName"],
                                     (("DNS", "localhost"), ("IP Address", "127.0.0.1")))
        with self.assertRaises(ssl.SSLCertVerificationError):  # the system store does not know our CA
            with socket.create_connection(("127.0.0.1", az.port), timeout=10) as raw:
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        if shutil.which("curl"):  # libcurl + OpenSSL, as ccr uses them
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", az.ca_file,
                                az.url("tok") + "?restype=container&comp=list&" + az.container_sas("tok")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(r.stdout, b"200", r.stderr)
        # The account key still works over TLS.
        c = az.service_client().get_container_client("tok")
        c.upload_blob("key", b"shared key over tls", overwrite=True)
        self.assertEqual(c.download_blob("key").readall(), b"shared key over tls")

    def test_bearer_token_accepted(self):
        cred = StaticTokenCredential(make_bearer_token())
        c = self.az.service_client(credential=cred).get_container_client("tok")
        c.upload_blob("bearer", b"via oauth", overwrite=True)
        self.assertEqual(c.download_blob("bearer").readall(), b"via oauth")
        self.assertIn("bearer", [b.name for b in c.list_blobs()])
        self.assertEqual(cred.calls[0], ("https://storage.azure.com/.default",))
        # The fine-grained audience of this account works too.
        c = self.client(make_bearer_token(aud="https://devstoreaccount1.blob.core.windows.net/"))
        self.assertEqual(c.download_blob("bearer").readall(), b"via oauth")

    def assertRefused(self, token, detail):
        with self.assertRaises(HttpResponseError) as cm:
            self.client(token).download_blob("bearer").readall()
        e = cm.exception
        self.assertEqual(e.status_code, 403, str(e))
        self.assertIsInstance(e, ClientAuthenticationError)
        self.assertEqual(e.error_code, "AuthenticationFailed")
        self.assertIn(detail, str(e))

    def test_bad_tokens_refused(self):
        self.client(make_bearer_token()).upload_blob("bearer", b"via oauth", overwrite=True)
        self.assertRefused("garbage", "Authentication scheme Bearer is not supported.")
        self.assertRefused(make_bearer_token(expires_in=-60), "The token is expired.")
        self.assertRefused(make_bearer_token(not_before=time.time() + 600), "Lifetime validation failed.")
        self.assertRefused(make_bearer_token(aud="https://vault.azure.net"), "Invalid token audience.")
        self.assertRefused(make_bearer_token(aud="https://someoneelse.blob.core.windows.net"),
                           "Invalid token audience.")
        self.assertRefused(make_bearer_token(iss="https://evil.example/"), "Invalid token issuer.")

    def test_bearer_over_http_refused(self):
        """Azurite takes bearer tokens over HTTPS only, as Azure does."""
        with Azurite(oauth=True) as az:
            az.service_client().create_container("plain")
            conn = http.client.HTTPConnection("127.0.0.1", az.port, timeout=30)
            self.addCleanup(conn.close)
            conn.request("GET", "/devstoreaccount1/plain?restype=container",
                         headers={"Authorization": "Bearer " + make_bearer_token(), "x-ms-version": "2021-12-02"})
            r = conn.getresponse()
            body = r.read()
            self.assertEqual(r.status, 403)
            self.assertIn(b"not allowed with HTTP", body)

    def test_proxy_tls_both_sides(self):
        """FaultProxy serving TLS in front of HTTPS Azurite: bearer tokens work through it, faults still land."""
        az = self.az
        p = FaultProxy(az.port, tls=(az.cert_file, az.key_file), schedule={1: "503", 3: "reset"},
                       upstream_ssl_context=ssl.create_default_context(cafile=az.ca_file)).start()
        self.addCleanup(p.stop)
        self.assertTrue(p.url.startswith("https://"))
        c = az.service_client(endpoint=p.endpoint(), credential=StaticTokenCredential(),
                              retry_policy=fast_retry()).get_container_client("tok")
        data = payload(300000, 11)
        c.upload_blob("via-proxy", data, overwrite=True)
        self.assertEqual(c.download_blob("via-proxy").readall(), data)
        n = p.counts
        self.assertEqual((n["503"], n["reset"], n.get("client_errors", 0)), (1, 1, 0), n)

    def test_token_server(self):
        with TokenServer() as ts:
            self.assertTrue(ts.url.startswith("http://127.0.0.1:%d/metadata/identity/oauth2/token" % ts.port))
            cred = ImdsCredential(ts.url)
            c = self.az.service_client(credential=cred).get_container_client("tok")
            c.upload_blob("imds", b"managed identity", overwrite=True)
            self.assertEqual(c.download_blob("imds").readall(), b"managed identity")
            self.assertGreaterEqual(len(ts.requests), 1)
            req = ts.requests[0]
            self.assertEqual(req["path"], "/metadata/identity/oauth2/token")
            self.assertEqual(req["headers"]["metadata"], "true")
            self.assertEqual(req["query"]["resource"], ["https://storage.azure.com"])

            q = ts.url + "?api-version=2018-02-01&resource=" + urllib.parse.quote("https://storage.azure.com/")
            with urllib.request.urlopen(urllib.request.Request(q, headers={"Metadata": "true"}), timeout=10) as r:
                j = json.load(r)
            self.assertEqual(j["token_type"], "Bearer")
            self.assertEqual(j["resource"], "https://storage.azure.com/")
            self.assertEqual(j["expires_in"], "3600")
            self.assertAlmostEqual(int(j["expires_on"]), time.time() + 3600, delta=30)
            self.assertEqual(j["access_token"], ts.tokens[-1])
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(q, timeout=10)  # no Metadata header
            self.assertEqual(cm.exception.code, 400)
            ts.status = 500
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(urllib.request.Request(q, headers={"Metadata": "true"}), timeout=10)
            self.assertEqual(cm.exception.code, 500)
            ts.status = 200
            ts.token_factory = lambda resource: "garbage"
            with self.assertRaises(ClientAuthenticationError):
                self.az.service_client(credential=ImdsCredential(ts.url),
                                       retry_policy=fast_retry(1)).get_container_client("tok").download_blob(
                                           "imds").readall()
            self.assertEqual(len(ts.requests), 5)


if __name__ == "__main__":
    ccrtest.main(needs_ccr=False)
