"""A fault-injecting HTTP/1.1 reverse proxy for the integration tests (stdlib only, one thread per connection).

It sits on a free loopback port in front of an upstream server (Azurite), keeps connections alive on both sides,
streams request and response bodies (Content-Length and chunked), and on a share of the requests injects a fault:

  "503"         answer 503 ServerBusy with an Azure-style XML error body (Retry-After per retry_after), without
                forwarding; the request body is read first so the client connection stays usable
  "reset"       forward, read the whole upstream answer (so the operation did happen), then close the client
                connection with an RST (SO_LINGER 0) instead of answering
  "reset-early" RST the client right after its request headers, before forwarding anything
  "stall"       forward, then wait stall_seconds before sending the answer
  "stall-body"  forward, send the headers and half of the body, wait stall_seconds, send the rest
  "truncate"    forward, send the headers and half of the body (half the headers when there is no body), then
                close the connection (FIN)

    with FaultProxy(az.port, faults={"503": 0.1, "reset": 0.05}, seed=1, stall_seconds=5) as p:
        endpoint = "http://127.0.0.1:%d/devstoreaccount1" % p.port     # or p.endpoint(az.account)
        ...
        p.counts   # {"requests": N, "forwarded": M, "503": k, "reset": j, ...}

Which requests: a seeded random.Random draws once per eligible request; rates add up (at most 1) and pick the
kind. methods (e.g. {"PUT"}) and url_regex (searched in the request target, e.g. r"comp=block\b") restrict the
eligible requests; schedule={n: kind} forces a fault on the n-th eligible request (1-based) regardless of the
rates, for deterministic "fail the Nth request" tests. delay_ms adds latency to every request (before
forwarding) for benches. Everything except the port can be changed while the proxy runs with configure().

The upstream may close an idle kept-alive connection at any time (Azurite does after 5 s); the proxy checks a
pooled connection before reusing it and, if the upstream still drops it before answering, replays the request
on a fresh connection when its body was small enough to keep (replay_limit), so such races never show up as
faults the test did not ask for (counts["replayed"] tells how often it happened).
"""

import collections
import random
import re
import select
import socket
import ssl
import struct
import threading
import time
import uuid
from email.utils import formatdate

KINDS = ("503", "reset", "reset-early", "stall", "stall-body", "truncate")
_IO_TIMEOUT = 300.0
_PIECE = 256 * 1024
_MAX_LINE = 65536
_MAX_HEADERS = 200


class _Closed(Exception):
    """The peer closed the connection (cleanly, between messages)."""


class _Upstream:
    """One connection to the upstream, with a buffered reader."""

    def __init__(self, host, port, ssl_context, server_hostname):
        s = socket.create_connection((host, port), timeout=_IO_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            s = ssl_context.wrap_socket(s, server_hostname=server_hostname)
        self.sock = s
        self.rfile = s.makefile("rb", buffering=_PIECE)

    def stale(self):
        """True when the upstream has closed (or sent something unasked) while the connection sat idle: an idle
        kept-alive socket that polls readable has nothing good to say."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def close(self):
        for c in (self.rfile, self.sock):
            try:
                c.close()
            except OSError:
                pass


def _read_line(rfile):
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise ValueError("header line too long")
    return line


def _read_head(rfile):
    """Reads a start line and headers. Returns (start_line_bytes, [(name, value, raw_line_bytes)]);
    raises _Closed on a clean EOF before the first byte."""
    start = _read_line(rfile)
    while start in (b"\r\n", b"\n"):  # tolerate stray empty lines between messages (RFC 9112 2.2)
        start = _read_line(rfile)
    if not start:
        raise _Closed()
    if not start.endswith(b"\n"):
        raise ConnectionError("connection closed inside the start line")
    headers = []
    while True:
        line = _read_line(rfile)
        if not line:
            raise ConnectionError("connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            break
        if len(headers) >= _MAX_HEADERS:
            raise ValueError("too many headers")
        name, _, value = line.partition(b":")
        headers.append((name.strip().decode("latin-1").lower(), value.strip().decode("latin-1"), line))
    return start, headers


def _header(headers, name):
    for n, v, _ in headers:
        if n == name:
            return v
    return None


def _has_token(headers, name, token):
    for n, v, _ in headers:
        if n == name and token in [t.strip().lower() for t in v.split(",")]:
            return True
    return False


def _framing(headers):
    """('chunked', None), ('length', n) or (None, None) when the message says nothing about its body."""
    te = _header(headers, "transfer-encoding")
    if te is not None and te.split(",")[-1].strip().lower() == "chunked":
        return "chunked", None
    cl = _header(headers, "content-length")
    if cl is not None:
        return "length", int(cl.split(",")[0].strip())
    return None, None


def _body_pieces(rfile, kind, length):
    """Yields the body as it appears on the wire (chunk framing included) in pieces; kind 'close' reads to EOF."""
    if kind == "length":
        left = length
        while left > 0:
            b = rfile.read1(min(left, _PIECE))
            if not b:
                raise ConnectionError("connection closed inside a body (%d bytes missing)" % left)
            left -= len(b)
            yield b
    elif kind == "chunked":
        while True:
            line = _read_line(rfile)
            if not line.endswith(b"\n"):
                raise ConnectionError("connection closed inside a chunk header")
            size = int(line.split(b";")[0].strip(), 16)
            yield line
            if size == 0:
                while True:  # trailers, then the empty line
                    t = _read_line(rfile)
                    if not t.endswith(b"\n"):
                        raise ConnectionError("connection closed inside trailers")
                    yield t
                    if t in (b"\r\n", b"\n"):
                        return
            left = size + 2  # data and its CRLF
            while left > 0:
                b = rfile.read1(min(left, _PIECE))
                if not b:
                    raise ConnectionError("connection closed inside a chunk")
                left -= len(b)
                yield b
    elif kind == "close":
        while True:
            b = rfile.read1(_PIECE)
            if not b:
                return
            yield b


def _arm_rst(sock):
    """Makes the coming close() of sock send a TCP RST instead of a FIN (SO_LINGER on, 0 s)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


class FaultProxy:
    """See the module docstring. upstream_port (and upstream_host, default 127.0.0.1) is where requests go;
    upstream_ssl_context (e.g. ssl.create_default_context(cafile=az.ca_file)) makes the upstream leg TLS; with
    tls=(cert_file, key_file) the proxy itself serves TLS. retry_after: None (no header), seconds (int), or
    "random" (a seeded coin picks no header or 0..2 s per answer)."""

    def __init__(self, upstream_port, faults=None, seed=1, stall_seconds=5.0, methods=None, url_regex=None,
                 schedule=None, retry_after=None, delay_ms=0, upstream_host="127.0.0.1", upstream_ssl_context=None,
                 tls=None, replay_limit=64 << 20, log_size=10000):
        self.upstream = (upstream_host, int(upstream_port))
        self.upstream_ssl_context = upstream_ssl_context
        self.replay_limit = replay_limit
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random(seed)
        self._eligible = 0
        self._counts = collections.Counter()
        self.log = collections.deque(maxlen=log_size)  # (method, target, fault or None)
        self.configure(faults=faults or {}, stall_seconds=stall_seconds, methods=methods, url_regex=url_regex,
                       schedule=schedule or {}, retry_after=retry_after, delay_ms=delay_ms)
        self._server_ssl = None
        if tls is not None:
            self._server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._server_ssl.load_cert_chain(tls[0], tls[1])
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(128)
        self.port = self._lsock.getsockname()[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self._socks = set()
        self._threads = []
        self._accept_thread = None

    # --- configuration and results ------------------------------------------------------------------------------
    def configure(self, **kw):
        """Changes faults, stall_seconds, methods, url_regex, schedule, retry_after or delay_ms while running.
        A new schedule counts eligible requests from now on."""
        with self._lock:
            if "faults" in kw:
                faults = dict(kw.pop("faults"))
                for k, v in faults.items():
                    if k not in KINDS:
                        raise ValueError("unknown fault kind %r (know %s)" % (k, ", ".join(KINDS)))
                    if not 0 <= v <= 1:
                        raise ValueError("rate of %r must be within 0..1" % k)
                if sum(faults.values()) > 1 + 1e-9:
                    raise ValueError("fault rates add up to more than 1")
                self.faults = faults
            if "methods" in kw:
                m = kw.pop("methods")
                self.methods = {x.upper() for x in m} if m else None
            if "url_regex" in kw:
                r = kw.pop("url_regex")
                self.url_regex = re.compile(r) if isinstance(r, str) else r
            if "schedule" in kw:
                s = dict(kw.pop("schedule") or {})
                for k in s.values():
                    if k not in KINDS:
                        raise ValueError("unknown fault kind %r in schedule" % k)
                self.schedule = s
                self._eligible = 0
            for name in ("stall_seconds", "retry_after", "delay_ms"):
                if name in kw:
                    setattr(self, name, kw.pop(name))
            if kw:
                raise TypeError("unknown option(s): %s" % ", ".join(kw))

    @property
    def counts(self):
        """A snapshot: "requests" (every request read), "forwarded" (sent upstream, faults included),
        "replayed", "upstream_errors", "client_errors", and one entry per injected kind."""
        with self._lock:
            c = collections.Counter(self._counts)
        for k in ("requests", "forwarded", "replayed") + KINDS:
            c.setdefault(k, 0)
        return dict(c)

    def faults_injected(self):
        c = self.counts
        return sum(c[k] for k in KINDS)

    def reset_counts(self):
        with self._lock:
            self._counts.clear()
            self.log.clear()

    def endpoint(self, account="devstoreaccount1"):
        """The blob endpoint through the proxy, for a path-style (emulator) account."""
        return "%s/%s" % (self.url, account)

    def _count(self, key, n=1):
        with self._lock:
            self._counts[key] += n

    def _decide(self, method, target):
        with self._lock:
            self._counts["requests"] += 1
            if self.methods is not None and method not in self.methods:
                return None
            if self.url_regex is not None and not self.url_regex.search(target):
                return None
            self._eligible += 1
            if self._eligible in self.schedule:
                return self.schedule[self._eligible]
            if not self.faults:
                return None
            x = self._rng.random()
            acc = 0.0
            for kind in KINDS:  # fixed order, so a seed always means the same thing
                acc += self.faults.get(kind, 0.0)
                if x < acc:
                    return kind
            return None

    # --- life cycle ---------------------------------------------------------------------------------------------
    def start(self):
        self._accept_thread = threading.Thread(target=self._accept_loop, name="FaultProxy-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self):
        self._stop.set()
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(10)
        for t in list(self._threads):
            t.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _track(self, s, add=True):
        with self._lock:
            if add:
                self._socks.add(s)
            else:
                self._socks.discard(s)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self._lsock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.settimeout(_IO_TIMEOUT)
            t = threading.Thread(target=self._serve, args=(c,), name="FaultProxy-conn", daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()

    # --- one client connection ----------------------------------------------------------------------------------
    def _serve(self, csock):
        self._track(csock)
        up = None
        rfile = None
        try:
            if self._server_ssl is not None:
                # wrap_socket takes the descriptor over: track the TLS socket from here on.
                self._track(csock, False)
                csock = self._server_ssl.wrap_socket(csock, server_side=True)
                self._track(csock)
            rfile = csock.makefile("rb", buffering=_PIECE)
            while not self._stop.is_set():
                try:
                    start, headers = _read_head(rfile)
                except _Closed:
                    return
                keep, up = self._one_request(csock, rfile, start, headers, up)
                if not keep:
                    return
        except (OSError, ValueError, ConnectionError, ssl.SSLError):
            self._count("client_errors")
        finally:
            self._drop(up)
            # The socket really closes when its last user (the makefile reader) lets go; an armed RST goes
            # out then.
            if rfile is not None:
                try:
                    rfile.close()
                except OSError:
                    pass
            try:
                csock.close()
            except OSError:
                pass
            self._track(csock, False)

    def _connect(self):
        up = _Upstream(self.upstream[0], self.upstream[1], self.upstream_ssl_context, self.upstream[0])
        self._track(up.sock)
        return up

    def _drop(self, up):
        if up is not None:
            self._track(up.sock, False)
            up.close()

    def _one_request(self, csock, rfile, start, headers, up):
        """Handles one request whose head was read. Returns (keep_client_connection, upstream_connection)."""
        parts = start.split()
        if len(parts) < 3:
            raise ValueError("bad request line %r" % start[:200])
        method = parts[0].decode("latin-1").upper()
        target = parts[1].decode("latin-1")
        version = parts[2].decode("latin-1")
        kind, length = _framing(headers)
        if kind is None:
            kind, length = "length", 0
        expect = _has_token(headers, "expect", "100-continue")
        close_after = _has_token(headers, "connection", "close") or version == "HTTP/1.0"
        fault = self._decide(method, target)
        self.log.append((method, target, fault))
        if self.delay_ms:
            self._stop.wait(self.delay_ms / 1000.0)

        if fault == "reset-early":
            self._count("reset-early")
            _arm_rst(csock)
            return False, up
        if fault == "503":
            self._count("503")
            if expect:
                # The client waits for 100 before it sends its body; answering at once without reading it is
                # allowed, but then the connection cannot carry another request.
                self._send_503(csock, close=True)
                return False, up
            for _ in _body_pieces(rfile, kind, length):
                pass
            self._send_503(csock, close=close_after)
            return not close_after, up

        # Forward. Expect is answered here (and stripped) so the body flows without a round trip upstream.
        if expect:
            csock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        head = start + b"".join(line for n, _, line in headers if n != "expect") + b"\r\n"
        resp, up, send_failed = self._forward(head, _body_pieces(rfile, kind, length), up)
        if resp is None:
            # The upstream dropped the request and it could not be replayed: the client sees the connection
            # close, as it would with a real server that went away.
            self._count("upstream_errors")
            return False, up
        self._count("forwarded")

        rstart, rheaders = resp
        while int(rstart.split()[1]) in range(100, 200) and int(rstart.split()[1]) != 101:
            # Interim answers (Expect is stripped, but relay any the upstream sends anyway).
            csock.sendall(rstart + b"".join(line for _, _, line in rheaders) + b"\r\n")
            rstart, rheaders = _read_head(up.rfile)
        status = int(rstart.split()[1])
        rkind, rlength = _framing(rheaders)
        if method == "HEAD" or status in (204, 304):
            rkind, rlength = "length", 0
        elif rkind is None:
            rkind = "close"
        rhead = rstart + b"".join(line for _, _, line in rheaders) + b"\r\n"
        up_close = send_failed or rkind == "close" or _has_token(rheaders, "connection", "close")
        keep = not (close_after or rkind == "close" or _has_token(rheaders, "connection", "close"))

        if fault is None:
            csock.sendall(rhead)
            for b in _body_pieces(up.rfile, rkind, rlength):
                csock.sendall(b)
            if up_close:
                self._drop(up)
                up = None
            return keep, up

        # Faults after forwarding: take the whole answer from the upstream first, so the upstream connection
        # stays usable and the operation is complete there.
        body = b"".join(_body_pieces(up.rfile, rkind, rlength))
        if up_close:
            self._drop(up)
            up = None
        self._count(fault)
        if fault == "reset":
            _arm_rst(csock)
            return False, up
        if fault == "stall":
            self._stop.wait(self.stall_seconds)
            csock.sendall(rhead + body)
            return keep, up
        if fault == "stall-body":
            half = len(body) // 2
            csock.sendall(rhead + body[:half])
            self._stop.wait(self.stall_seconds)
            csock.sendall(body[half:])
            return keep, up
        if fault == "truncate":
            csock.sendall(rhead + body[: len(body) // 2] if body else rhead[: len(rhead) // 2])
            try:
                csock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False, up
        raise AssertionError(fault)

    def _forward(self, head, body_iter, up):
        """Sends head and the client's body upstream and reads the answer's head.
        Returns (response head or None, upstream connection or None, whether sending failed part way)."""
        saved = []  # the body on the wire, kept for a replay while it is at most replay_limit bytes
        saved_len = 0
        body_done = False
        for attempt in (1, 2):
            if up is not None and up.stale():
                self._drop(up)
                up = None
            reused = up is not None
            if up is None:
                try:
                    up = self._connect()
                except OSError:
                    up = None
            failed = up is None
            if not failed:
                try:
                    up.sock.sendall(head)
                    if body_done:
                        for b in saved:
                            up.sock.sendall(b)
                except OSError:
                    failed = True
            if not body_done:
                # Keep reading (and copying) the client's body after an upstream failure so the client side
                # stays in step.
                for b in body_iter:
                    if saved is not None:
                        saved_len += len(b)
                        if saved_len <= self.replay_limit:
                            saved.append(b)
                        else:
                            saved = None
                    if not failed:
                        try:
                            up.sock.sendall(b)
                        except OSError:
                            failed = True
                body_done = True
            if up is not None:
                # Even after a failed send the upstream may have answered early (e.g. an error before the body).
                try:
                    return _read_head(up.rfile), up, failed
                except (_Closed, OSError, ConnectionError, ValueError):
                    pass
            self._drop(up)
            up = None
            if not (reused and saved is not None and attempt == 1):
                break
            # A kept-alive connection the upstream had just closed: the request never got there, so replay it.
            self._count("replayed")
        return None, None, True

    def _send_503(self, csock, close):
        rid = str(uuid.uuid4())
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The server is '
                'currently unable to receive requests. Please retry your request.\nRequestId:%s\nTime:%s</Message>'
                '</Error>' % (rid, time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()))).encode()
        h = ["HTTP/1.1 503 Server Busy", "Content-Type: application/xml", "Content-Length: %d" % len(body),
             "Server: Microsoft-HTTPAPI/2.0", "x-ms-request-id: %s" % rid, "x-ms-version: 2021-12-02",
             "x-ms-error-code: ServerBusy", "Date: %s" % formatdate(usegmt=True)]
        ra = self.retry_after
        if ra == "random":
            with self._lock:
                ra = self._rng.choice([None, 0, 1, 2])
        if ra is not None:
            h.append("Retry-After: %d" % int(ra))
        if close:
            h.append("Connection: close")
        csock.sendall(("\r\n".join(h) + "\r\n\r\n").encode() + body)
