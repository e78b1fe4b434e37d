#!/usr/bin/python3
"""ccr's Azure Blob backend against Azurite (Microsoft's storage emulator, real HTTP on loopback):
round trips in every mode, listings beyond one page, SharedKey, SAS and bearer tokens (fixed and from a
managed-identity endpoint over HTTPS), interop with the Azure Python SDK both ways, a fault-injecting proxy
(503 with and without Retry-After, resets, stalls, truncated bodies), Azurite killed mid-upload and
restarted, and clear errors for bad credentials, a missing container and a wrong URL."""

import sys

sys.dont_write_bytecode = True

import os
import re
import subprocess
import time
import unittest

import ccrtest
from azurite import Azurite, TokenServer, make_bearer_token
from ccrtest import EXIT_IO, EXIT_USAGE, MiB, CcrTestCase, ccr, parse_json_line, tree_listing, write_random
from faultproxy import FaultProxy

SHM = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

# Fast retries and stall detection, so fault tests finish in seconds (the defaults suit real networks).
FAST_RETRY = {"CCR_AZ_RETRY_BASE_MS": "20", "CCR_AZ_RETRY_MAX_MS": "500", "CCR_AZ_STALL_TIMEOUT": "2",
              "CCR_AZ_TRIES": "12"}

AZ = None  # one in-memory Azurite for the module (containers keep the tests apart)


def setUpModule():
    global AZ
    AZ = Azurite()
    AZ.start()


def tearDownModule():
    if AZ:
        AZ.close()


def make_tree(root, small=300):
    os.makedirs(root)
    for i in range(small):
        d = os.path.join(root, "s%02d" % (i % 7))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%04d.dat" % i), "wb") as f:
            f.write(os.urandom(i * 13 % 5000))
    os.makedirs(os.path.join(root, "empty"))
    open(os.path.join(root, "empty", "zero"), "wb").close()
    u = os.path.join(root, "ünïcødé", "日本語 dir")
    os.makedirs(u)
    with open(os.path.join(u, "🔑 key+file&x=1.csv"), "wb") as f:
        f.write(b"a,b\n1,2\n")
    write_random(os.path.join(root, "big.bin"), 9 * MiB + 123)


class AzureCase(CcrTestCase):
    tmp_parent = SHM
    counter = 0

    def setUp(self):
        super().setUp()
        if not AZ.running():
            self.fail("Azurite exited (code %r); its output:\n%s" % (AZ.proc.poll(), AZ.log_text()))
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("AZURE_") or k.startswith("CCR_AZ") or k in ("CCR_STORE_FAULTS", "CCR_MEMORY",
                                                                          "CCR_CA_FILE"):
                del self.env[k]
        self.env["CCR_CONFIG"] = self.path("cfg", "config.json")
        self.env["XDG_STATE_HOME"] = self.path("state")
        self.env["AZURE_STORAGE_KEY"] = AZ.key

    def container(self):
        AzureCase.counter += 1
        return "c%d-%s" % (AzureCase.counter, re.sub(r"[^a-z0-9]", "", self._testMethodName.lower())[-30:])

    def run_ccr(self, *args, env=None, timeout=300):
        return ccr(*args, env=env or self.env, timeout=timeout)

    def add(self, name, url, mode="ccr1", env=None, extra=()):
        args = ["datastore", "add", name, "--url", url, "--mode", mode]
        if mode != "none":
            args.append("--new-key")
        r = self.run_ccr(*args, *extra, env=env)
        self.assertOk(r)
        return r

    def roundtrip(self, name, src, env=None, extra=()):
        up = self.run_ccr("datastore", "upload", name, src, "--json", *extra, env=env)
        self.assertOk(up)
        dst = self.path("dst-" + name)
        down = self.run_ccr("datastore", "download", name, dst, "--json", *extra, env=env)
        self.assertOk(down)
        self.assertEqual(tree_listing(src), tree_listing(dst))
        return parse_json_line(up.out), parse_json_line(down.out)


class RoundTrips(AzureCase):
    def test_every_mode_round_trips_and_verifies(self):
        src = self.path("src")
        make_tree(src)
        n_files = sum(len(f) for _, _, f in os.walk(src))
        for mode in ("ccr1", "cleanroom-cse", "none"):
            with self.subTest(mode=mode):
                name = "m-" + mode
                self.add(name, AZ.url(self.container()), mode=mode)
                up, down = self.roundtrip(name, src)
                self.assertEqual(up["files"], n_files)
                self.assertEqual(down["files"], n_files)
                self.assertEqual(up["errors"], 0)
                ver = self.run_ccr("datastore", "verify", name, "--json")
                self.assertOk(ver)
                self.assertEqual(parse_json_line(ver.out)["files"], n_files)
                ls = self.run_ccr("datastore", "ls", name, "--long", "--json")
                self.assertOk(ls)
                sizes = {e["name"]: e["size"] for e in parse_json_line(ls.out)["blobs"]}
                self.assertEqual(sizes["big.bin"], 9 * MiB + 123)
                self.assertEqual(sizes["empty/zero"], 0)
                self.assertIn("ünïcødé/日本語 dir/🔑 key+file&x=1.csv", sizes)

    def test_prefix_in_url_scopes_every_name(self):
        c = self.container()
        src = self.path("src")
        os.makedirs(src)
        for i in range(5):
            with open(os.path.join(src, "f%d" % i), "wb") as f:
                f.write(b"x" * i)
        self.add("pre", AZ.url(c, "team/a"), mode="none")
        self.roundtrip("pre", src)
        names = sorted(b.name for b in AZ.service_client().get_container_client(c).list_blobs())
        self.assertEqual(names, ["team/a/f%d" % i for i in range(5)])

    def test_listing_beyond_one_page(self):
        # 5,100 blobs: List Blobs returns at most 5,000 per page, so ls and download must follow NextMarker.
        c = self.container()
        self.add("many", AZ.url(c), mode="none")
        src = self.path("many")
        os.makedirs(src)
        for i in range(5100):
            with open(os.path.join(src, "b%05d" % i), "wb") as f:
                f.write(b"%d" % i)
        up = self.run_ccr("datastore", "upload", "many", src, "--json", timeout=600)
        self.assertOk(up)
        self.assertEqual(parse_json_line(up.out)["files"], 5100)
        ls = self.run_ccr("datastore", "ls", "many")
        self.assertOk(ls)
        self.assertEqual(len(ls.out.splitlines()), 5100)
        dst = self.path("many-dst")
        down = self.run_ccr("datastore", "download", "many", dst, "--json", timeout=600)
        self.assertOk(down)
        self.assertEqual(parse_json_line(down.out)["files"], 5100)
        self.assertEqual(tree_listing(src), tree_listing(dst))


class Credentials(AzureCase):
    def test_sas_in_url_and_in_env(self):
        c = self.container()
        AZ.service_client().create_container(c)
        sas = AZ.container_sas(c)
        env = dict(self.env)
        del env["AZURE_STORAGE_KEY"]
        src = self.path("src")
        make_tree(src, small=20)
        self.add("sas-url", AZ.url(c) + "?" + sas, env=env)
        self.roundtrip("sas-url", src, env=env)
        # the SAS never shows in listings of the config, or in verbose request logs
        lst = self.run_ccr("datastore", "list", env=env)
        self.assertOk(lst)
        sig = re.search(r"sig=([^&]+)", sas).group(1)
        self.assertNotIn(sig, lst.out)
        v = self.run_ccr("datastore", "verify", "sas-url", "--verbose", env=env)
        self.assertOk(v)
        self.assertIn("http: GET /devstoreaccount1/%s?restype=container&comp=list" % c, v.err)
        self.assertNotIn(sig, v.err)
        # the same container through $AZURE_STORAGE_SAS_TOKEN
        env2 = dict(env)
        env2["AZURE_STORAGE_SAS_TOKEN"] = "?" + sas
        self.add("sas-env", AZ.url(c, "other"), mode="none", env=env2)
        self.roundtrip("sas-env", src, env=env2)

    def test_connection_string_az_url(self):
        env = dict(self.env)
        del env["AZURE_STORAGE_KEY"]
        env["AZURE_STORAGE_CONNECTION_STRING"] = AZ.connection_string
        src = self.path("src")
        make_tree(src, small=10)
        self.add("cs", "az://%s/data" % self.container(), env=env)
        self.roundtrip("cs", src, env=env)

    def test_wrong_key_is_a_clear_error(self):
        c = self.container()
        self.add("wk", AZ.url(c), mode="none")
        env = dict(self.env)
        env["AZURE_STORAGE_KEY"] = "d3JvbmcgYWNjb3VudCBrZXkgd3Jvbmcga2V5IHdyb25nIGtleQ=="
        src = self.path("src")
        make_tree(src, small=3)
        r = self.run_ccr("datastore", "upload", "wk", src, env=env)
        self.assertRc(r, EXIT_IO)
        # Azure answers AuthenticationFailed, Azurite AuthorizationFailure: both name the signature
        self.assertIn("HTTP 403", r.err)
        self.assertIn("Server failed to authenticate the request", r.err)
        self.assertNotIn(env["AZURE_STORAGE_KEY"], r.err)
        self.assertIn("(request id ", r.err)
        j = self.run_ccr("datastore", "upload", "wk", src, "--json", env=env)
        self.assertRc(j, EXIT_IO)
        failed = parse_json_line(j.out)["failed"]
        self.assertTrue(failed)
        for f in failed:
            self.assertEqual(f["http_status"], 403, f)
            self.assertTrue(f["error_code"], f)
            self.assertRegex(f["request_id"], r"^[0-9a-f-]{36}$", f)

    def test_missing_container_and_wrong_url(self):
        c = self.container()
        self.add("gone", AZ.url(c), mode="none")
        AZ.service_client().delete_container(c)
        r = self.run_ccr("datastore", "ls", "gone")
        self.assertRc(r, EXIT_IO)
        self.assertIn("ContainerNotFound", r.err)
        src = self.path("src")
        make_tree(src, small=2)
        r = self.run_ccr("datastore", "upload", "gone", src)
        self.assertRc(r, EXIT_IO)
        self.assertIn("ContainerNotFound", r.err)
        # nothing listens on this port
        port = ccrtest_free_port()
        r = self.run_ccr("datastore", "add", "nowhere", "--url",
                         "http://127.0.0.1:%d/devstoreaccount1/ccc" % port, "--mode", "none",
                         env=dict(self.env, CCR_AZ_TRIES="2", CCR_AZ_RETRY_BASE_MS="10"))
        self.assertRc(r, EXIT_IO)
        self.assertIn("onnect", r.err)
        # an invalid container name is a usage error before any request
        r = self.run_ccr("datastore", "add", "badname", "--url", AZ.url("Bad_Name"), "--mode", "none")
        self.assertRc(r, EXIT_USAGE)
        self.assertIn("container", r.err)


def ccrtest_free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Bearer(AzureCase):
    """Azurite accepts bearer tokens only over HTTPS (--oauth basic): a second Azurite with TLS."""

    @classmethod
    def setUpClass(cls):
        cls.az = Azurite(https=True, oauth=True)
        cls.az.start()

    @classmethod
    def tearDownClass(cls):
        cls.az.close()

    def bearer_env(self):
        env = dict(self.env)
        del env["AZURE_STORAGE_KEY"]
        env["CCR_CA_FILE"] = self.az.ca_file
        return env

    def test_fixed_token_and_ca_file(self):
        env = self.bearer_env()
        env["AZURE_STORAGE_TOKEN"] = make_bearer_token()
        src = self.path("src")
        make_tree(src, small=10)
        self.add("tok", self.az.url(self.container()), env=env)
        self.roundtrip("tok", src, env=env)
        # without the CA the TLS handshake fails with a hint
        env2 = dict(env)
        del env2["CCR_CA_FILE"]
        r = self.run_ccr("datastore", "ls", "tok", env=env2)
        self.assertRc(r, EXIT_IO)
        self.assertIn("--ca-file", r.err)
        # a garbage token is refused by the server
        env3 = dict(env, AZURE_STORAGE_TOKEN="not-a-token")
        r = self.run_ccr("datastore", "ls", "tok", env=env3)
        self.assertRc(r, EXIT_IO)
        self.assertRegex(r.err, r"HTTP 40[13]")

    def test_managed_identity_endpoint(self):
        with TokenServer() as ts:
            env = self.bearer_env()
            env["AZURE_STORAGE_IDENTITY_ENDPOINT"] = ts.url + "?api-version=2018-02-01"
            src = self.path("src")
            make_tree(src, small=10)
            self.add("mi", self.az.url(self.container()), env=env)
            self.roundtrip("mi", src, env=env)
            self.assertGreaterEqual(len(ts.requests), 1)
            q = ts.requests[0]["query"]
            self.assertEqual(q.get("resource"), ["https://storage.azure.com/"])
            self.assertEqual(ts.requests[0]["headers"].get("metadata"), "true")


class SdkInterop(AzureCase):
    """The Azure Python SDK reads what ccr writes (mode none) and ccr reads what the SDK writes."""

    def test_sdk_reads_ccr_blobs(self):
        c = self.container()
        self.add("plain", AZ.url(c), mode="none")
        src = self.path("src")
        make_tree(src, small=30)
        up = self.run_ccr("datastore", "upload", "plain", src)
        self.assertOk(up)
        cc = AZ.service_client().get_container_client(c)
        for dirpath, _, files in os.walk(src):
            for n in files:
                p = os.path.join(dirpath, n)
                rel = os.path.relpath(p, src)
                with open(p, "rb") as f:
                    self.assertEqual(cc.download_blob(rel).readall(), f.read(), rel)

    def test_ccr_reads_sdk_blobs(self):
        c = self.container()
        svc = AZ.service_client(max_single_put_size=4 * MiB, max_block_size=1 * MiB)
        svc.create_container(c)
        cc = svc.get_container_client(c)
        blobs = {
            "single/small.bin": os.urandom(1000),
            "single/empty": b"",
            "chunked/large.bin": os.urandom(11 * MiB + 7),  # > max_single_put_size: Put Block + Put Block List
            "ünï/ñame with spaces": os.urandom(333),
        }
        for n, data in blobs.items():
            cc.upload_blob(n, data, overwrite=True)
        self.add("sdk", AZ.url(c), mode="none")
        dst = self.path("dst")
        r = self.run_ccr("datastore", "download", "sdk", dst, "--json")
        self.assertOk(r)
        self.assertEqual(parse_json_line(r.out)["files"], len(blobs))
        for n, data in blobs.items():
            with open(os.path.join(dst, n), "rb") as f:
                self.assertEqual(f.read(), data, n)


class Cpk(AzureCase):
    """Mode cpk sends the customer-provided key headers with every blob request, over HTTPS only. Azurite does
    not implement CPK, so a small recording HTTPS server stands in for the service here."""

    def test_cpk_headers_on_every_blob_request(self):
        import base64
        import hashlib
        import http.server
        import ssl
        import threading

        from azurite import make_tls_files

        seen = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, body=b""):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"0x1"')
                self.send_header("Last-Modified", "Mon, 23 Nov 2026 10:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                seen.append(("PUT", self.path, dict((k.lower(), v) for k, v in self.headers.items())))
                self.reply(201)

            def do_GET(self):
                seen.append(("GET", self.path, dict((k.lower(), v) for k, v in self.headers.items())))
                self.reply(200, b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs/>'
                                b'<NextMarker/></EnumerationResults>')

        ca, cert, key = make_tls_files(self.tmp)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        url = "https://127.0.0.1:%d/devstoreaccount1/cpkdata" % srv.server_address[1]
        env = dict(self.env, CCR_CA_FILE=ca)

        r = self.run_ccr("datastore", "add", "cpk", "--url", url.replace("https:", "http:"), "--mode", "cpk",
                         "--new-key", env=env)
        self.assertRc(r, EXIT_USAGE)
        self.assertIn("HTTPS only", r.err)

        self.add("cpk", url, mode="cpk", env=env)
        dek = ccrtest.read(self.path("cfg", "cpk.key"))
        src = self.path("src")
        os.makedirs(src)
        with open(os.path.join(src, "a.csv"), "wb") as f:
            f.write(b"x" * 1000)
        write_random(os.path.join(src, "big.bin"), 9 * MiB)
        r = self.run_ccr("datastore", "upload", "cpk", src, "--verbose", env=env)
        self.assertOk(r)
        want_key = base64.b64encode(dek).decode()
        want_sha = base64.b64encode(hashlib.sha256(dek).digest()).decode()
        blob_puts = [h for m, p, h in seen if m == "PUT" and "restype=container" not in p]
        self.assertGreaterEqual(len(blob_puts), 4)  # a.csv + 3 blocks + the block list of big.bin
        for h in blob_puts:
            self.assertEqual(h.get("x-ms-encryption-key"), want_key)
            self.assertEqual(h.get("x-ms-encryption-key-sha256"), want_sha)
            self.assertEqual(h.get("x-ms-encryption-algorithm"), "AES256")
        self.assertNotIn(want_key, r.err)
        self.assertNotIn(want_key, r.out)


class Faults(AzureCase):
    def fault_roundtrip(self, faults, extra_env=None, **kw):
        c = self.container()
        AZ.service_client().create_container(c)
        with FaultProxy(AZ.port, faults=faults, seed=7, **kw) as p:
            env = dict(self.env, **FAST_RETRY)
            if extra_env:
                env.update(extra_env)
            self.add("f", "%s/%s" % (p.endpoint(AZ.account), c), env=env)
            src = self.path("src")
            make_tree(src, small=120)
            up, down = self.roundtrip("f", src, env=env)
            counts = p.counts
            # every injected fault cost the client a retry, and the summaries say so
            self.assertGreater(up["retries"] + down["retries"], 0, (up, down, counts))
            self.assertGreaterEqual(up["requests"], up["files"])
            return counts

    def test_503_with_and_without_retry_after(self):
        counts = self.fault_roundtrip({"503": 0.25}, retry_after=None)
        self.assertGreater(counts["503"], 5)

    def test_503_retry_after_is_honoured(self):
        c = self.container()
        AZ.service_client().create_container(c)
        with FaultProxy(AZ.port, faults={}, schedule={1: "503"}, retry_after=1) as p:
            env = dict(self.env, **FAST_RETRY)
            self.add("ra", "%s/%s" % (p.endpoint(AZ.account), c), mode="none", env=env)
            t0 = time.monotonic()
            r = self.run_ccr("datastore", "ls", "ra", "--verbose", env=env)
            self.assertOk(r)
            # the add made request 1 (answered 503 with Retry-After: 1): it was retried after >= 1 s
            self.assertEqual(p.counts["503"], 1)
        del t0

    def test_resets_stalls_and_truncation(self):
        counts = self.fault_roundtrip({"reset": 0.06, "reset-early": 0.06, "stall": 0.03, "stall-body": 0.03,
                                       "truncate": 0.06}, stall_seconds=4)
        injected = sum(counts[k] for k in ("reset", "reset-early", "stall", "stall-body", "truncate"))
        self.assertGreater(injected, 10, counts)

    def test_azurite_killed_mid_upload_then_resumed(self):
        # Azurite on disk, slowed by a delaying proxy so the upload lasts long enough to be killed halfway.
        # Azurite saves its metadata every 5 s, so what it committed in its last seconds is lost by the kill:
        # the re-run must trust the store's listing, not only its journal, and redo those.
        loc = self.path("azurite-disk")
        with Azurite(location=loc) as az, FaultProxy(az.port, delay_ms=200) as p:
            env = dict(self.env, **FAST_RETRY)
            env["CCR_AZ_TRIES"] = "2"
            c = self.container()
            self.add("k", "%s/%s" % (p.endpoint(az.account), c), env=env)
            src = self.path("src")
            os.makedirs(src)
            for i in range(80):
                write_random(os.path.join(src, "f%02d" % i), 256 * 1024 + i)
            proc = subprocess.Popen([ccrtest.CCR, "datastore", "upload", "k", src, "--json", "--connections", "2"],
                                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            cc = az.service_client().get_container_client(c)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sum(1 for _ in cc.list_blobs()) < 3:
                time.sleep(0.05)
            time.sleep(6)  # the first blobs reach Azurite's disk; the upload goes on
            self.assertIsNone(proc.poll(), "the upload ended before Azurite was killed")
            az.kill()
            out, err = proc.communicate(timeout=120)
            self.assertNotEqual(proc.returncode, 0, err)
            az.restart()
            r = self.run_ccr("datastore", "upload", "k", src, "--json", env=env)
            self.assertOk(r)
            j = parse_json_line(r.out)
            self.assertEqual(j["files"] + j["resumed"], 80)
            self.assertGreater(j["resumed"], 0)
            self.assertGreater(j["files"], 0)
            dst = self.path("dst")
            self.assertOk(self.run_ccr("datastore", "download", "k", dst, env=env))
            self.assertEqual(tree_listing(src), tree_listing(dst))


if __name__ == "__main__":
    unittest.main(verbosity=2)
