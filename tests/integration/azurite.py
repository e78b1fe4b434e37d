"""Azurite (Microsoft's Azure Storage emulator) for the integration tests: install, start, stop, credentials.

No tests live here; test_azurite_harness.py proves this module with the Azure SDK alone, and the ccr Azure tests
build on it. Needs Debian's /usr/bin/python3 (python3-azure, python3-cryptography) and Node.js + npm; Azurite
itself is pinned by tests/azurite/package-lock.json and installed into tests/azurite/node_modules by
tools/bootstrap-azurite.sh (ensure_installed() runs it; it is a no-op when the install is current).

    with Azurite() as az:                       # in memory, blob service only, free loopback port
        svc = az.service_client()               # azure.storage.blob.BlobServiceClient with the account key
        az.connection_string, az.blob_endpoint, az.container_sas("c"), az.url("c", "a/b")
    with Azurite(location=dir) as az: ...       # on-disk store; az.restart() keeps the data (same port)
    with Azurite(https=True, oauth=True) as az: # TLS (az.ca_file) and bearer tokens ("--oauth basic")
        make_bearer_token()                     # a token Azurite accepts
    with TokenServer() as ts: ts.url            # an IMDS-style managed-identity token endpoint

Every Azurite runs with --disableTelemetry: without it Azurite 3.3x sends usage data to Application Insights,
and this workplace allows no traffic off the machine. Set CCR_AZURITE_DEBUG=1 to get Azurite's debug log and
access log (kept in the instance's temp dir; printed when start-up fails).
"""

import base64
import datetime
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
AZURITE_DIR = os.path.join(ROOT, "tests", "azurite")
BOOTSTRAP = os.path.join(ROOT, "tools", "bootstrap-azurite.sh")
LAUNCHER = os.path.join(AZURITE_DIR, "node_modules", ".bin", "azurite-blob")

ACCOUNT = "devstoreaccount1"
# The emulator's well-known account key (published in Azurite's README; not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START_TIMEOUT = 60.0
READY_LINE = b"successfully listens on"

_installed = None
_install_lock = threading.Lock()


def ensure_installed():
    """Installs Azurite if needed (tools/bootstrap-azurite.sh, once per process); returns the azurite-blob launcher.
    Raises RuntimeError with the bootstrap's message when node/npm are missing or the install fails."""
    global _installed
    with _install_lock:
        if _installed:
            return _installed
        p = subprocess.run(["bash", BOOTSTRAP], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=900)
        if p.returncode != 0:
            raise RuntimeError("cannot install Azurite (%s exited %d):\n%s"
                               % (BOOTSTRAP, p.returncode, p.stdout.decode("utf-8", "replace")))
        if not os.access(LAUNCHER, os.X_OK):
            raise RuntimeError("Azurite launcher %s missing after %s" % (LAUNCHER, BOOTSTRAP))
        _installed = LAUNCHER
        return _installed


def free_port():
    """A loopback TCP port that was free a moment ago (the kernel picks it; someone may take it before us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


# --- OAuth ---------------------------------------------------------------------------------------------------
# What Azurite 3.35 checks with `--oauth basic` (dist/src/blob/authentication/BlobTokenAuthenticator.js, which
# runs after the shared-key and SAS authenticators have passed on the request):
#   - only when the request has an Authorization header; Get/Set Container ACL skip token auth entirely;
#   - the header must start with "Bearer", else 400 InvalidAuthenticationInfo;
#   - the connection must be HTTPS, else 403 AuthenticationFailed "Authentication scheme Bearer is not allowed
#     with HTTP." (so OAuth needs --cert/--key);
#   - the token (the text after "Bearer ") is decoded with jsonwebtoken.decode(): three base64url parts
#     (the signature may be empty), the header part must be a JSON object; the signature is NOT verified;
#   - claims nbf, exp and iat must all be present (else 403 "Authentication scheme Bearer is not supported.");
#     server time < nbf -> 403 "Lifetime validation failed."; server time > exp -> 403 "...The token is
#     expired." (no clock-skew allowance; iat is only required to exist);
#   - iss must start with https://sts.windows.net/, https://sts.microsoftonline.de/,
#     https://sts.chinacloudapi.cn/ or https://sts.windows-ppe.net (else 403 "Invalid token issuer.");
#   - aud must equal https://storage.azure.com (optional trailing /), e406a681-f3d4-42a8-90b6-c2b029497af1, or
#     https://<account>.blob.core.windows.net (also .chinacloudapi.cn/.usgovcloudapi.net/.cloudapi.de, optional
#     trailing /) where <account> must be the request's account (else 403 "Invalid token audience.");
#   - scopes, roles, tenant, oid are not checked. Every failure is 403 AuthenticationFailed with the reason in
#     the XML <AuthenticationErrorDetail>. A request with no Authorization header at all (and no SAS) gets
#     403 AuthorizationFailure from the middleware.
STORAGE_AUDIENCE = "https://storage.azure.com"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def make_bearer_token(expires_in=3600, aud=STORAGE_AUDIENCE, iss=None, not_before=None, **claims):
    """A JWT-shaped access token that Azurite's "basic" OAuth accepts (see the notes above): RS256 header, claims
    aud/iss/iat/nbf/exp/oid/tid, and random bytes for a signature nobody checks. expires_in may be negative to
    make an expired token; not_before (epoch seconds) defaults to 5 minutes ago; extra claims override."""
    now = int(time.time())
    payload = {
        "aud": aud,
        "iss": iss or "https://sts.windows.net/%s/" % DEFAULT_TENANT,
        "iat": now - 300,
        "nbf": now - 300 if not_before is None else int(not_before),
        "exp": now + int(expires_in),
        "oid": str(uuid.uuid4()),
        "tid": DEFAULT_TENANT,
        "sub": "ccr-test",
        "ver": "1.0",
    }
    payload.update(claims)
    header = {"alg": "RS256", "typ": "JWT", "kid": "ccr-test"}
    return ".".join([_b64url(json.dumps(header, separators=(",", ":")).encode()),
                     _b64url(json.dumps(payload, separators=(",", ":")).encode()),
                     _b64url(os.urandom(64))])


# --- TLS -----------------------------------------------------------------------------------------------------
def make_tls_files(directory, names=("localhost",), ips=("127.0.0.1",)):
    """Writes ca.pem (a throwaway CA), cert.pem and key.pem (a server cert signed by it for `names` and `ips`,
    in subjectAltName) into directory; returns (ca_file, cert_file, key_file). A separate CA rather than one
    self-signed leaf because strict verifiers (OpenSSL's X509_STRICT, Python 3.13 defaults) reject a leaf that
    is its own trust anchor."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccr test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = os.path.join(directory, "ca.pem")
    cert_file = os.path.join(directory, "cert.pem")
    key_file = os.path.join(directory, "key.pem")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return ca_file, cert_file, key_file


class _PortTaken(Exception):
    pass


def _die_with_parent():
    """In the child before exec: SIGKILL when the parent dies, so a test killed by a ctest timeout leaves no
    emulator behind. (Linux ties this to the thread that forked: start Azurite from a thread that outlives it,
    normally the main thread.)"""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


class Azurite:
    """One azurite-blob process on 127.0.0.1 (blob service only). Use as a context manager, or call start()/stop().

    location: None for --inMemoryPersistence (lost on restart), else a directory for the on-disk store (created
      if missing, never removed by us). https: serve TLS with a fresh CA (ca_file) and a cert for 127.0.0.1 and
      localhost. oauth: --oauth basic (bearer tokens; Azurite accepts them over HTTPS only). port: None picks a
      free one, kept across restart(). loose: --loose (ignore unsupported headers instead of failing).
      extra_args: appended to the command line. debug: keep Azurite's debug and access logs (also with
      CCR_AZURITE_DEBUG=1).
    """

    account = ACCOUNT
    key = KEY

    def __init__(self, location=None, https=False, oauth=False, port=None, loose=True, extra_args=(), debug=None):
        self.location = os.path.abspath(location) if location is not None else None
        self.https = bool(https)
        self.oauth = bool(oauth)
        self.port = int(port) if port else free_port()
        self.loose = bool(loose)
        self.extra_args = [str(a) for a in extra_args]
        self.debug = bool(os.environ.get("CCR_AZURITE_DEBUG")) if debug is None else bool(debug)
        self.launcher = None
        self.proc = None
        # Our own scratch: cwd of the process (an in-memory Azurite still treats cwd as its "location"), logs,
        # TLS files. Removed by close().
        self.tmp = tempfile.mkdtemp(prefix="ccr-azurite-")
        self.out_file = os.path.join(self.tmp, "azurite.out")
        self.debug_file = os.path.join(self.tmp, "debug.log")
        self.ca_file = self.cert_file = self.key_file = None
        if self.https:
            self.ca_file, self.cert_file, self.key_file = make_tls_files(self.tmp)
        self._auto_port = not port
        self._started_once = False
        self._set_port(self.port)

    def _set_port(self, port):
        self.port = port
        scheme = "https" if self.https else "http"
        self.blob_endpoint = "%s://127.0.0.1:%d/%s" % (scheme, self.port, ACCOUNT)
        self.connection_string = "DefaultEndpointsProtocol=%s;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;" % (
            scheme, ACCOUNT, KEY, self.blob_endpoint)

    # --- life cycle ---------------------------------------------------------------------------------------------
    def argv(self):
        a = [self.launcher or LAUNCHER, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--skipApiVersionCheck", "--disableProductStyleUrl", "--disableTelemetry"]
        if self.location is None:
            a.append("--inMemoryPersistence")
        else:
            a += ["--location", self.location]
        if self.loose:
            a.append("--loose")
        if self.https:
            a += ["--cert", self.cert_file, "--key", self.key_file]
        if self.oauth:
            a += ["--oauth", "basic"]
        if self.debug:
            a += ["--debug", self.debug_file]
        else:
            a.append("--silent")
        return a + self.extra_args

    def start(self, timeout=START_TIMEOUT):
        """Starts the process and returns once it listens; raises RuntimeError with its output otherwise.
        A port we picked ourselves that someone else took in the meantime (parallel tests) is replaced by a new
        one on the first start; after that the port is part of the contract and stays."""
        for attempt in range(5):
            try:
                self._start(timeout)
                self._started_once = True
                return self
            except _PortTaken:
                if not self._auto_port or self._started_once or attempt == 4:
                    raise RuntimeError("Azurite cannot listen on 127.0.0.1:%d:\n%s" % (self.port, self.log_text()))
                self._set_port(free_port())
        raise AssertionError("unreachable")

    def _start(self, timeout):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("Azurite already running (pid %d)" % self.proc.pid)
        self.launcher = ensure_installed()
        if self.location is not None:
            os.makedirs(self.location, exist_ok=True)
        out = open(self.out_file, "ab")
        try:
            out.write(b"--- start %s\n" % " ".join(self.argv()).encode())
            out.flush()
            offset = out.tell()
            self.proc = subprocess.Popen(self.argv(), cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                if b"EADDRINUSE" in self._output_since(offset):
                    raise _PortTaken()
                raise RuntimeError("Azurite exited with %d while starting:\n%s" % (rc, self.log_text()))
            # The ready line is printed after listen() succeeded, so a port someone else holds cannot fool us
            # into talking to a stranger; the connect then proves the socket really accepts.
            if READY_LINE in self._output_since(offset) and self._accepts():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("Azurite did not accept connections on 127.0.0.1:%d within %.0f s:\n%s"
                                   % (self.port, timeout, self.log_text()))
            time.sleep(0.05)

    def _output_since(self, offset):
        try:
            with open(self.out_file, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def log_text(self, limit=20000):
        """Azurite's console output and the tail of its debug log (if enabled), for failure messages."""
        parts = []
        for name in (self.out_file, self.debug_file):
            try:
                with open(name, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            parts.append("== %s ==\n%s" % (name, data[-limit:].decode("utf-8", "replace")))
        return "\n".join(parts) or "(no output)"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM (Azurite closes its stores cleanly, so an on-disk store keeps everything) and wait; SIGKILL if it
        has not exited within timeout. Returns the exit status, or None if it was not running."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def kill(self):
        """SIGKILL, like a crash: an on-disk store may lose what Azurite had not yet saved."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.kill()
        p.wait()
        return p.returncode

    def restart(self, timeout=START_TIMEOUT):
        """stop() then start() on the same port with the same location (an in-memory store comes back empty)."""
        self.stop()
        return self.start(timeout)

    def close(self):
        self.stop()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.kill()

    # --- clients and credentials --------------------------------------------------------------------------------
    def service_client(self, endpoint=None, credential=None, **kwargs):
        """azure.storage.blob.BlobServiceClient for this account: the account key unless credential is given;
        endpoint overrides blob_endpoint (e.g. a FaultProxy's, "http://127.0.0.1:PORT/devstoreaccount1"); kwargs
        go to the client (retry_policy, max_block_size, ...). With https it trusts ca_file."""
        from azure.storage.blob import BlobServiceClient

        if credential is None:
            credential = {"account_name": ACCOUNT, "account_key": KEY}
        if endpoint is None:
            endpoint = self.blob_endpoint
        if endpoint.startswith("https:") and self.ca_file and "connection_verify" not in kwargs:
            kwargs["connection_verify"] = self.ca_file
        return BlobServiceClient(account_url=endpoint, credential=credential, **kwargs)

    def container_sas(self, container, permission="racwdl", hours=2, **kwargs):
        """A service SAS token (query string without '?') for container, signed with the account key.
        permission letters as in ContainerSasPermissions.from_string (r a c w d x l t ...)."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        now = datetime.datetime.now(datetime.timezone.utc)
        return generate_container_sas(ACCOUNT, container, account_key=KEY,
                                      permission=ContainerSasPermissions.from_string(permission),
                                      start=kwargs.pop("start", now - datetime.timedelta(minutes=5)),
                                      expiry=kwargs.pop("expiry", now + datetime.timedelta(hours=hours)), **kwargs)

    def account_sas(self, permission="racwdlup", resource_types="sco", hours=2, **kwargs):
        """An account SAS token (query string without '?') for the blob service."""
        from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

        now = datetime.datetime.now(datetime.timezone.utc)
        return generate_account_sas(ACCOUNT, KEY, resource_types=ResourceTypes.from_string(resource_types),
                                    permission=AccountSasPermissions.from_string(permission),
                                    start=kwargs.pop("start", now - datetime.timedelta(minutes=5)),
                                    expiry=kwargs.pop("expiry", now + datetime.timedelta(hours=hours)), **kwargs)

    def url(self, container, prefix=""):
        """URL of container, or of the blob / virtual directory `prefix` inside it (path-quoted, '/' kept)."""
        u = "%s/%s" % (self.blob_endpoint, urllib.parse.quote(container, safe=""))
        if prefix:
            u += "/" + urllib.parse.quote(prefix, safe="/")
        return u


class StaticTokenCredential:
    """An azure.core TokenCredential that returns a fixed token (default: make_bearer_token()) and counts calls."""

    def __init__(self, token=None, expires_in=3600):
        self.token = token if token is not None else make_bearer_token(expires_in)
        self.expires_on = int(time.time()) + int(expires_in)
        self.calls = []

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        self.calls.append(scopes)
        return AccessToken(self.token, self.expires_on)


# --- managed identity ----------------------------------------------------------------------------------------
class TokenServer:
    """An IMDS-style token endpoint on a free loopback port, served by a thread.

    GET <any path>?api-version=...&resource=... with header "Metadata: true" answers 200 with JSON
    {"access_token", "expires_on" (epoch, string), "expires_in" (string), "not_before", "token_type": "Bearer",
    "resource"} like Azure's instance metadata service; without the header 400 (as IMDS), without resource 400.
    url is the full IMDS path (http://127.0.0.1:PORT/metadata/identity/oauth2/token); base_url has no path.

    Knobs, changeable while it runs: token_factory(resource) -> token string (default: make_bearer_token with
    aud=resource, so a wrong resource yields a token Azurite rejects); expires_in; status (non-200 answers an
    error JSON with that status); delay (seconds before answering). requests records every request as a dict
    {method, path, query (dict of lists), headers (dict, lower-case names)}.
    """

    PATH = "/metadata/identity/oauth2/token"

    def __init__(self, token_factory=None, status=200, expires_in=3600, delay=0.0):
        self.token_factory = token_factory or (lambda resource: make_bearer_token(self.expires_in,
                                                                                  aud=resource.rstrip("/")))
        self.status = status
        self.expires_in = expires_in
        self.delay = delay
        self.requests = []
        self.tokens = []
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def do_GET(self):
                owner._handle(self)

            def do_POST(self):
                owner._handle(self)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self.url = self.base_url + self.PATH
        self._thread = None

    def _handle(self, h):
        parsed = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(parsed.query)
        n = int(h.headers.get("Content-Length") or 0)
        if n:
            h.rfile.read(n)
        rec = {"method": h.command, "path": parsed.path, "query": query,
               "headers": {k.lower(): v for k, v in h.headers.items()}}
        with self._lock:
            self.requests.append(rec)
        if self.delay:
            time.sleep(self.delay)
        resource = (query.get("resource") or [""])[0]
        if (h.headers.get("Metadata") or "").lower() != "true":
            code, body = 400, {"error": "invalid_request",
                               "error_description": "Required metadata header not specified"}
        elif not resource:
            code, body = 400, {"error": "invalid_request", "error_description": "resource is required"}
        elif self.status != 200:
            code, body = self.status, {"error": "server_error",
                                       "error_description": "injected status %d" % self.status}
        else:
            now = int(time.time())
            token = self.token_factory(resource)
            with self._lock:
                self.tokens.append(token)
            code, body = 200, {"access_token": token, "client_id": str(uuid.uuid4()),
                               "expires_in": str(int(self.expires_in)),
                               "expires_on": str(now + int(self.expires_in)), "ext_expires_in": str(int(self.expires_in)),
                               "not_before": str(now), "resource": resource, "token_type": "Bearer"}
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="TokenServer", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


if __name__ == "__main__":
    # Manual use: start an in-memory Azurite and print how to reach it until Ctrl-C.
    with Azurite(https="--https" in sys.argv, oauth="--oauth" in sys.argv) as az:
        print(az.connection_string)
        if az.ca_file:
            print("ca_file:", az.ca_file)
        try:
            while az.running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
