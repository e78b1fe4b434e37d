"""An independent Python client of the ccr-gov protocol (docs/governance.md, "Protocol"), for the tests.

It shares no code with the C client: its own CBOR, COSE_Sign1/ES384 (python3-cryptography), virtual evidence,
and the ECIES of key release. Tests use it to send exactly the requests they want (unsigned, badly signed,
replayed, stale) and to check that what the C side produces verifies independently.
Also: GovDaemon, which runs `ccr-gov init` and `ccr-gov serve` for a test.
"""

import base64
import hashlib
import http.client
import json
import os
import signal
import ssl
import struct
import subprocess
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# ------------------------------------------------------------------------------------------------------------
# CBOR (RFC 8949), just what COSE_Sign1 needs
# ------------------------------------------------------------------------------------------------------------


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 1 << 8:
        return bytes([major << 5 | 24, n])
    if n < 1 << 16:
        return bytes([major << 5 | 25]) + struct.pack(">H", n)
    if n < 1 << 32:
        return bytes([major << 5 | 26]) + struct.pack(">I", n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


class Tag:
    def __init__(self, tag, value):
        self.tag = tag
        self.value = value


def cbor_encode(v):
    if isinstance(v, bool):
        return bytes([0xF5 if v else 0xF4])
    if v is None:
        return bytes([0xF6])
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, (list, tuple)):
        return _head(4, len(v)) + b"".join(cbor_encode(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor_encode(k) + cbor_encode(x) for k, x in v.items())
    if isinstance(v, Tag):
        return _head(6, v.tag) + cbor_encode(v.value)
    raise TypeError(type(v))


def cbor_decode(b):
    v, off = _dec(b, 0)
    if off != len(b):
        raise ValueError("trailing bytes")
    return v


def _dec(b, off):
    ib = b[off]
    major, ai = ib >> 5, ib & 31
    off += 1
    if ai < 24:
        n = ai
    elif ai in (24, 25, 26, 27):
        size = 1 << (ai - 24)
        n = int.from_bytes(b[off : off + size], "big")
        off += size
    else:
        raise ValueError("indefinite or reserved length")
    if major == 0:
        return n, off
    if major == 1:
        return -1 - n, off
    if major in (2, 3):
        s = b[off : off + n]
        if len(s) != n:
            raise ValueError("truncated")
        return (s if major == 2 else s.decode()), off + n
    if major == 4:
        out = []
        for _ in range(n):
            x, off = _dec(b, off)
            out.append(x)
        return out, off
    if major == 5:
        out = {}
        for _ in range(n):
            k, off = _dec(b, off)
            x, off = _dec(b, off)
            out[k] = x
        return out, off
    if major == 6:
        x, off = _dec(b, off)
        return Tag(n, x), off
    if major == 7:
        return {20: False, 21: True, 22: None}[ai], off
    raise ValueError("major type")


# ------------------------------------------------------------------------------------------------------------
# COSE_Sign1 with ES384
# ------------------------------------------------------------------------------------------------------------


def _sig_raw(der):
    r, s = decode_dss_signature(der)
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


def cose_sign1(key, protected, payload=b""):
    """protected: dict of header labels (1 and 4 as ints, the rest strings). Returns tagged COSE_Sign1 bytes."""
    pb = cbor_encode(protected)
    tbs = cbor_encode(["Signature1", pb, b"", payload])
    sig = _sig_raw(key.sign(tbs, ec.ECDSA(hashes.SHA384())))
    return cbor_encode(Tag(18, [pb, {}, payload, sig]))


def cose_verify(env, public_key):
    """Verifies a COSE_Sign1 made by anyone (the C side); returns (protected dict, payload)."""
    v = cbor_decode(env)
    if isinstance(v, Tag):
        assert v.tag == 18
        v = v.value
    pb, _unprot, payload, sig = v
    assert len(sig) == 96
    tbs = cbor_encode(["Signature1", pb, b"", payload])
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    public_key.verify(der, tbs, ec.ECDSA(hashes.SHA384()))  # raises InvalidSignature
    return cbor_decode(pb), payload


# ------------------------------------------------------------------------------------------------------------
# Identities, evidence, key release
# ------------------------------------------------------------------------------------------------------------


class Member:
    """A member identity loaded from PREFIX_cert.pem / PREFIX_privk.pem (made by `ccr gov member keygen`)."""

    def __init__(self, prefix):
        self.prefix = prefix
        with open(prefix + "_cert.pem", "rb") as f:
            self.cert_pem = f.read()
        with open(prefix + "_privk.pem", "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        self.id = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def spki_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def canonical(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def measure(v):
    return hashlib.sha256(canonical(v)).hexdigest()


class CleanRoom:
    """A virtual clean room: an ephemeral P-384 key and evidence claiming `measurement` (hex)."""

    def __init__(self, measurement):
        self.key = ec.generate_private_key(ec.SECP384R1())
        self.spki = spki_der(self.key.public_key())
        self.measurement = measurement
        rd = hashlib.sha256(self.spki).digest() + bytes(32)
        self.evidence = json.dumps(
            {"type": "virtual", "measurement": measurement, "report_data": rd.hex()}
        ).encode()

    def open_release(self, answer, aad):
        epk = serialization.load_der_public_key(base64.b64decode(answer["epk"]))
        z = self.key.exchange(ec.ECDH(), epk)
        info = b"ccr-gov key release v1" + hashlib.sha256(self.spki).digest()
        k = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(z)
        return AESGCM(k).decrypt(base64.b64decode(answer["iv"]), base64.b64decode(answer["ciphertext"]), aad)


# ------------------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------------------


class Client:
    """Signs and sends requests. signer: a Member, a CleanRoom, or None (unsigned)."""

    def __init__(self, port, service_cert, signer=None, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.ctx = ssl.create_default_context(cafile=service_cert) if service_cert else None
        self.signer = signer
        self.conn = None

    def _connect(self):
        if self.conn is None:
            if self.ctx:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.conn

    def envelope(self, method, path, body=None, msg_type="request", proposal_id=None, created_at=None,
                 request=None, signer=None):
        signer = signer or self.signer
        payload = b"" if body is None else json.dumps(body).encode()
        prot = {1: -35}
        if isinstance(signer, Member):
            prot[4] = signer.id.encode()
        prot["ccf.gov.msg.type"] = msg_type
        prot["ccf.gov.msg.created_at"] = int(time.time()) if created_at is None else created_at
        if proposal_id:
            prot["ccf.gov.msg.proposal_id"] = proposal_id
        prot["ccr.request"] = request or "%s %s" % (method, path)
        if isinstance(signer, CleanRoom):
            prot["ccf.gov.msg.type"] = "cleanroom"
            prot["ccr.evidence"] = signer.evidence
            prot["ccr.pubkey"] = signer.spki
        return cose_sign1(signer.key, prot, payload)

    def send_raw(self, method, path, body=None, sign_header=None):
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/cose"
        if sign_header is not None:
            headers["Ccr-Sign"] = sign_header
        for attempt in range(2):
            c = self._connect()
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return r.status, doc

    def call(self, method, path, body=None, **kw):
        """Signs and sends; returns (status, json). kw: msg_type, proposal_id, created_at, request, signer."""
        if self.signer is None and kw.get("signer") is None:
            return self.send_raw(method, path, None if method in ("GET", "DELETE") else b"")
        env = self.envelope(method, path, body, **kw)
        if method in ("GET", "DELETE"):
            return self.send_raw(method, path, None, base64.urlsafe_b64encode(env).rstrip(b"=").decode())
        return self.send_raw(method, path, env)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ------------------------------------------------------------------------------------------------------------
# The daemon
# ------------------------------------------------------------------------------------------------------------


class GovDaemon:
    """`ccr-gov init` (once) and `ccr-gov serve` on a free port over HTTPS; stop() or kill()."""

    def __init__(self, gov_bin, data_dir, operator_cert, extra=(), init=True):
        self.bin = gov_bin
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc = None
        self.port = None
        if init:
            r = subprocess.run([gov_bin, "init", "--data-dir", data_dir, "--operator-cert", operator_cert],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("ccr-gov init failed: %s %s" % (r.stdout, r.stderr))
        self.cert = os.path.join(data_dir, "service_cert.pem")

    def start(self, timeout=30):
        tmp = tempfile.mkdtemp(prefix="ccrgov-")
        port_file = os.path.join(tmp, "port")
        ready = os.path.join(tmp, "ready")
        self.log = os.path.join(tmp, "log")
        self.proc = subprocess.Popen([self.bin, "serve", "--data-dir", self.data_dir, "--port", "0",
                                      "--port-file", port_file, "--ready-file", ready, "--log-file", self.log]
                                     + self.extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("ccr-gov serve exited %d: %s" % (self.proc.returncode,
                                                                    self.proc.stderr.read().decode()))
            if time.time() > deadline:
                self.kill()
                raise RuntimeError("ccr-gov serve not ready in %d s" % timeout)
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        return self

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d" % self.port

    def client(self, signer=None):
        return Client(self.port, self.cert, signer)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=30)
            self.proc.stderr.close()
            self.proc = None
            return rc
        return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc:
            self.proc.stderr.close()
        self.proc = None


def make_member(directory, name):
    """Writes DIR/NAME_privk.pem and DIR/NAME_cert.pem (P-384, self-signed, CN=name) without the C code;
    returns the Member."""
    import datetime

    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA384()))
    prefix = os.path.join(directory, name)
    with open(prefix + "_privk.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(prefix + "_privk.pem", 0o600)
    with open(prefix + "_cert.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return Member(prefix)


def log_entry_hash(prev_hash, entry):
    """The hash of a log entry per docs/governance.md ("Log")."""
    body = {k: entry[k] for k in ("action", "actor", "data", "seq", "timestamp")}
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(body)).hexdigest()
