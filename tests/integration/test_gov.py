#!/usr/bin/python3
"""ccr-gov over HTTPS, driven by the independent Python client of govref.py (its own CBOR, COSE and ECIES):
the three-party flow at the protocol level, every refusal the service owes (unsigned, bad signature, unknown
or inactive member, stale, replayed or re-aimed envelopes, double votes, closed proposals, stale versions,
changes to an accepted contract, key release before acceptance, with a wrong measurement, with evidence that
does not bind the key, while execution is disabled, without the virtual flag), a released key unreadable
without the ephemeral private key, the hash chain checked here independently, an edited row and an edited
log entry caught by `ccr-gov verify`, 50 concurrent clients x 100 signed requests with nothing lost, and a
daemon killed mid-request that restarts with consistent state."""

import sys

sys.dont_write_bytecode = True

import base64
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

import ccrtest
import govref as G

GOV = os.environ.get("CCR_GOV_BIN") or os.path.join(os.path.dirname(ccrtest.CCR), "ccr-gov")

SPEC = {
    "parties": [{"name": "northwind"}, {"name": "woodgrove"}],
    "datasources": [{"name": "cowin", "owner": "northwind", "url": "file:///data/cowin", "mode": "ccr1",
                     "mount_path": "/mnt/remote/cowin", "kek_secret": "kek-northwind", "wrapped_dek": "AAAA"}],
    "datasinks": [{"name": "output", "owner": "woodgrove", "url": "file:///data/out", "mode": "ccr1",
                   "mount_path": "/mnt/remote/output", "kek_secret": "kek-woodgrove", "wrapped_dek": "AAAA"}],
    "applications": [{"name": "app", "command": ["gzip", "-c"], "mounts": ["cowin", "output"]}],
    "network": {"egress": "deny", "allow": []},
}
DEPLOYMENT = {"contract_id": "c1", "contract_version": 2, "mounts": [], "applications": [{"name": "app"}]}


def strip_virtual(data):
    """An event's data without the "virtual" mark the service adds for a virtual clean room."""
    return {k: v for k, v in data.items() if k != "virtual"}


def err_code(doc):
    return doc.get("error", {}).get("code") if isinstance(doc, dict) else None


class Consortium:
    """A running service with an operator and two active members, and contract c1 accepted with a deployment
    spec, a policy allowing its measurement, and a secret deposited by member a."""

    def __init__(self, extra=("--allow-virtual-attestation",)):
        self.tmp = tempfile.mkdtemp(prefix="ccr-gov-it-")
        self.op = G.make_member(self.tmp, "operator")
        self.a = G.make_member(self.tmp, "northwind")
        self.b = G.make_member(self.tmp, "woodgrove")
        self.data = os.path.join(self.tmp, "gov")
        self.d = G.GovDaemon(GOV, self.data, self.op.prefix + "_cert.pem", extra=extra).start()
        self.cop, self.ca, self.cb = (self.d.client(m) for m in (self.op, self.a, self.b))

    def must(self, client, method, path, body=None, status=(200, 201), **kw):
        st, doc = client.call(method, path, body, **kw)
        if st not in status:
            raise AssertionError("%s %s -> %d %r" % (method, path, st, doc))
        return doc

    def vote_all(self, pid, voters):
        doc = None
        for c in voters:
            doc = self.must(c, "POST", "/proposals/%s/ballots" % pid, {"vote": "accept"}, msg_type="ballot",
                            proposal_id=pid)
        return doc

    def add_members(self):
        p = self.must(self.cop, "POST", "/proposals", {"actions": [
            {"name": "add_member", "args": {"cert": self.a.cert_pem.decode(), "name": "northwind"}},
            {"name": "add_member", "args": {"cert": self.b.cert_pem.decode(), "name": "woodgrove"}}]},
            msg_type="proposal")
        doc = self.vote_all(p["proposal_id"], [self.cop])
        assert doc["state"] == "accepted", doc
        for c in (self.ca, self.cb):
            self.must(c, "POST", "/members/activate", msg_type="ack")

    def accept_contract(self, cid="c1"):
        c = self.must(self.ca, "PUT", "/contracts/" + cid, {"data": SPEC})
        c = self.must(self.ca, "PUT", "/contracts/" + cid, {"version": c["version"], "data": SPEC})
        p = self.must(self.ca, "POST", "/contracts/%s/propose" % cid, {"version": c["version"]},
                      msg_type="proposal")
        self.vote_all(p["proposal_id"], [self.cop, self.ca, self.cb])
        return p["proposal_id"]

    def set_deployment(self, cid="c1", spec=DEPLOYMENT):
        p = self.must(self.cop, "POST", "/proposals", {"actions": [
            {"name": "set_deployment_spec", "args": {"contract_id": cid, "spec": spec}},
            {"name": "set_cleanroom_policy", "args": {"contract_id": cid, "measurements": [G.measure(spec)]}}]},
            msg_type="proposal")
        doc = self.vote_all(p["proposal_id"], [self.cop, self.ca, self.cb])
        assert doc["state"] == "accepted", doc

    def full(self):
        self.add_members()
        self.accept_contract()
        self.set_deployment()
        self.secret = os.urandom(200)
        self.must(self.ca, "PUT", "/contracts/c1/secrets/kek-northwind",
                  {"value": base64.b64encode(self.secret).decode()})
        return self

    def room(self, measurement=None):
        return self.d.client(G.CleanRoom(measurement or G.measure(DEPLOYMENT)))

    def reconnect(self):
        self.cop, self.ca, self.cb = (self.d.client(m) for m in (self.op, self.a, self.b))

    def close(self):
        for c in (self.cop, self.ca, self.cb):
            c.close()
        self.d.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


class GovTest(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.k = Consortium().full()

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def refused(self, client, method, path, body=None, status=None, code=None, **kw):
        st, doc = client.call(method, path, body, **kw)
        self.assertEqual((st, err_code(doc)), (status, code), "%s %s: %r" % (method, path, doc))
        self.assertTrue(doc["error"].get("message"), "an error says what failed: %r" % doc)
        return doc

    # -- the flow --------------------------------------------------------------------------------------------

    def test_members_and_contract(self):
        k = self.k
        doc = k.must(k.cb, "GET", "/members")
        states = {m["member_id"]: m["status"] for m in doc["members"]}
        self.assertEqual({i: states.get(i) for i in (k.op.id, k.a.id, k.b.id)},
                         {k.op.id: "active", k.a.id: "active", k.b.id: "active"})
        self.assertEqual(set(states.values()) - {"active"}, set(states.values()) & {"removed"},
                         "other members (added by other tests) are removed: %r" % states)
        c = k.must(k.cb, "GET", "/contracts/c1")
        self.assertEqual((c["state"], c["version"], c["data"]), ("accepted", 2, SPEC))
        rt = k.must(k.cb, "GET", "/contracts/c1/runtime")
        self.assertTrue(rt["execution"]["enabled"])
        self.assertEqual((rt["logging"], rt["telemetry"]), ("disabled", "disabled"))
        dep = k.must(k.cb, "GET", "/contracts/c1/deployment")
        self.assertEqual(dep["measurement"], G.measure(DEPLOYMENT))
        pol = k.must(k.cb, "GET", "/contracts/c1/policy")
        self.assertEqual(pol["measurements"], [G.measure(DEPLOYMENT)])
        secrets = k.must(k.cb, "GET", "/contracts/c1/secrets")["secrets"]
        self.assertEqual([(s["name"], s["owner"]) for s in secrets], [("kek-northwind", k.a.id)])
        self.assertNotIn("value", secrets[0])

    def test_key_release_and_consent(self):
        k = self.k
        room = k.room()
        st, ans = room.call("POST", "/cleanroom/keys/release", {"contract_id": "c1", "secret": "kek-northwind"})
        self.assertEqual(st, 200, ans)
        self.assertTrue(ans["virtual"])
        self.assertEqual(room.signer.open_release(ans, b"c1/kek-northwind"), k.secret)
        # Only the ephemeral private key opens it: another clean room's key cannot.
        other = G.CleanRoom(G.measure(DEPLOYMENT))
        with self.assertRaises(Exception):
            other.open_release(ans, b"c1/kek-northwind")
        st, ans = room.call("POST", "/cleanroom/consent", {"contract_id": "c1", "action": "execution"})
        self.assertEqual((st, ans["allowed"]), (200, True), ans)
        st, ans = room.call("POST", "/cleanroom/consent", {"contract_id": "c1", "action": "logging"})
        self.assertEqual((st, ans["allowed"]), (200, False), ans)
        self.assertIn("logging", ans["reason"])
        ev = k.must(k.cop, "GET", "/contracts/c1/events?from=1&limit=1000")["events"]
        types = [e["type"] for e in ev]
        self.assertIn("key_released", types)
        self.assertIn("consent", types)
        rel = [e for e in ev if e["type"] == "key_released"][-1]
        self.assertTrue(rel["data"].get("virtual"), rel)
        self.assertNotIn(base64.b64encode(k.secret).decode(), str(ev))

    def test_events_paging(self):
        k = self.k
        room = k.room()
        sent = []
        for i in range(25):
            st, ans = room.call("POST", "/cleanroom/events", {"contract_id": "c1", "type": "progress",
                                                              "data": {"i": i}})
            self.assertEqual(st, 200, ans)
            sent.append(ans["seq"])
        got, frm = [], 1
        while frm is not None:
            doc = k.must(k.cb, "GET", "/contracts/c1/events?from=%d&limit=7" % frm)
            self.assertLessEqual(len(doc["events"]), 7)
            got += doc["events"]
            frm = doc["next"]
        seqs = [e["seq"] for e in got]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "oldest first, no gaps")
        self.assertTrue(set(sent) <= set(seqs))
        mine = [e["data"]["i"] for e in got if e["type"] == "progress"]
        self.assertEqual(mine[-25:], list(range(25)))
        for e in got:
            self.assertRegex(e["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_log_chain_independently(self):
        k = self.k
        entries, frm = [], 1
        while frm is not None:
            doc = k.must(k.cop, "GET", "/audit?from=%d&limit=50" % frm)
            entries += doc["entries"]
            frm = doc["next"]
        self.assertGreater(len(entries), 10)
        prev = "0" * 64
        for i, e in enumerate(entries):
            self.assertEqual(e["seq"], i + 1)
            self.assertEqual(e["prev_hash"], prev)
            self.assertEqual(G.log_entry_hash(prev, e), e["hash"], "entry %d" % e["seq"])
            prev = e["hash"]
        self.assertNotIn(base64.b64encode(k.secret).decode(), str(entries), "no secret in the log")
        rep = k.must(k.cop, "GET", "/audit/verify")
        self.assertTrue(rep["ok"], rep)

    # -- refusals --------------------------------------------------------------------------------------------

    def test_refused_envelopes(self):
        k = self.k
        unsigned = k.d.client(None)
        self.refused(unsigned, "GET", "/members", status=401, code="Unsigned")
        self.refused(unsigned, "POST", "/proposals", status=401, code="Unsigned")
        # A flipped bit in the signature.
        env = bytearray(k.cop.envelope("POST", "/proposals", {"actions": []}, msg_type="proposal"))
        env[-5] ^= 1
        st, doc = k.cop.send_raw("POST", "/proposals", bytes(env))
        self.assertEqual((st, err_code(doc)), (401, "BadSignature"), doc)
        # Garbage instead of an envelope.
        st, doc = k.cop.send_raw("POST", "/proposals", b"\x84\x01\x02")
        self.assertEqual((st, err_code(doc)), (401, "BadSignature"), doc)
        # Unknown member.
        stranger = k.d.client(G.make_member(k.tmp, "stranger"))
        self.refused(stranger, "GET", "/members", status=401, code="UnknownMember")
        # Stale, in both directions.
        self.refused(k.cop, "GET", "/members", status=401, code="StaleRequest", created_at=int(time.time()) - 3600)
        self.refused(k.cop, "GET", "/members", status=401, code="StaleRequest", created_at=int(time.time()) + 3600)
        # Replayed.
        env = k.ca.envelope("PUT", "/contracts/replay", {"data": SPEC})
        st, doc = k.ca.send_raw("PUT", "/contracts/replay", env)
        self.assertEqual(st, 201, doc)
        st, doc = k.ca.send_raw("PUT", "/contracts/replay", env)
        self.assertEqual((st, err_code(doc)), (401, "ReplayedRequest"), doc)
        # An envelope made for another request.
        self.refused(k.cop, "GET", "/proposals", status=401, code="RequestMismatch", request="GET /members")
        env = k.ca.envelope("PUT", "/contracts/x1", {"data": SPEC})
        st, doc = k.ca.send_raw("PUT", "/contracts/x2", env)
        self.assertEqual((st, err_code(doc)), (401, "RequestMismatch"), doc)

    def test_inactive_member(self):
        k = self.k
        d = G.make_member(k.tmp, "latecomer")
        p = k.must(k.cop, "POST", "/proposals", {"actions": [{"name": "add_member", "args": {
            "cert": d.cert_pem.decode()}}]}, msg_type="proposal")
        self.assertEqual(k.vote_all(p["proposal_id"], [k.cop, k.ca, k.cb])["state"], "accepted")
        cd = k.d.client(d)
        self.refused(cd, "GET", "/members", status=403, code="InactiveMember")
        self.refused(cd, "POST", "/proposals", {"actions": []}, status=403, code="InactiveMember",
                     msg_type="proposal")
        # Remove it again, so the other tests keep three active members.
        p = k.must(k.cop, "POST", "/proposals", {"actions": [{"name": "remove_member", "args": {
            "member_id": d.id}}]}, msg_type="proposal")
        self.assertEqual(k.vote_all(p["proposal_id"], [k.cop, k.ca, k.cb])["state"], "accepted")
        self.refused(cd, "POST", "/members/activate", status=403, code="InactiveMember", msg_type="ack")

    def test_votes(self):
        k = self.k
        p = k.must(k.cb, "POST", "/proposals", {"actions": [{"name": "enable_telemetry", "args": {
            "contract_id": "c1"}}]}, msg_type="proposal")
        pid = p["proposal_id"]
        self.assertEqual(p["state"], "open")
        k.must(k.cb, "POST", "/proposals/%s/ballots" % pid, {"vote": "accept"}, msg_type="ballot", proposal_id=pid)
        self.refused(k.cb, "POST", "/proposals/%s/ballots" % pid, {"vote": "accept"}, status=409,
                     code="AlreadyVoted", msg_type="ballot", proposal_id=pid)
        # The ballot's proposal id header must name the proposal of the path.
        st, doc = k.ca.call("POST", "/proposals/%s/ballots" % pid, {"vote": "accept"}, msg_type="ballot",
                            proposal_id="p-999999")
        self.assertIn(st, (400, 401), doc)
        # Any reject vetoes.
        doc = k.must(k.ca, "POST", "/proposals/%s/ballots" % pid, {"vote": "reject"}, msg_type="ballot",
                      proposal_id=pid)
        self.assertEqual(doc["state"], "rejected")
        self.refused(k.cop, "POST", "/proposals/%s/ballots" % pid, {"vote": "accept"}, status=409,
                     code="ProposalNotOpen", msg_type="ballot", proposal_id=pid)
        self.assertEqual(k.must(k.cop, "GET", "/contracts/c1/runtime")["telemetry"], "disabled")
        # Withdrawal: only by its author, and then closed.
        p = k.must(k.cb, "POST", "/proposals", {"actions": [{"name": "enable_logging", "args": {
            "contract_id": "c1"}}]}, msg_type="proposal")
        pid = p["proposal_id"]
        self.refused(k.ca, "POST", "/proposals/%s/withdraw" % pid, status=403, code="Forbidden",
                     msg_type="withdrawal", proposal_id=pid)
        doc = k.must(k.cb, "POST", "/proposals/%s/withdraw" % pid, msg_type="withdrawal", proposal_id=pid)
        self.assertEqual(doc["state"], "withdrawn")
        self.refused(k.ca, "POST", "/proposals/%s/ballots" % pid, {"vote": "accept"}, status=409,
                     code="ProposalNotOpen", msg_type="ballot", proposal_id=pid)
        # Disabling telemetry passes without votes.
        p = k.must(k.cb, "POST", "/proposals", {"actions": [{"name": "disable_telemetry", "args": {
            "contract_id": "c1"}}]}, msg_type="proposal")
        self.assertEqual(p["state"], "accepted")

    def test_contract_versions(self):
        k = self.k
        c = k.must(k.ca, "PUT", "/contracts/c9", {"data": SPEC})
        self.assertEqual((c["version"], c["state"]), (1, "draft"))
        c = k.must(k.cb, "PUT", "/contracts/c9", {"version": 1, "data": SPEC})
        self.assertEqual(c["version"], 2)
        self.refused(k.ca, "PUT", "/contracts/c9", {"version": 1, "data": SPEC}, status=412,
                     code="VersionMismatch")
        self.refused(k.ca, "POST", "/contracts/c9/propose", {"version": 1}, status=412, code="VersionMismatch",
                     msg_type="proposal")
        # Accepted contracts are immutable.
        self.refused(k.ca, "PUT", "/contracts/c1", {"version": 2, "data": SPEC}, status=409,
                     code="ContractNotDraft")
        self.refused(k.ca, "PUT", "/contracts/c1", {"data": {}}, status=409, code="ContractNotDraft")
        self.refused(k.ca, "GET", "/contracts/nope", status=404, code="NotFound")

    def test_release_refusals(self):
        k = self.k
        # Before acceptance: a draft contract has no policy.
        k.must(k.ca, "PUT", "/contracts/draft1", {"data": SPEC})
        self.refused(k.room(), "POST", "/cleanroom/keys/release", {"contract_id": "draft1",
                     "secret": "kek-northwind"}, status=403, code="PolicyNotSet")
        # A measurement the policy does not list.
        self.refused(k.room("ab" * 32), "POST", "/cleanroom/keys/release", {"contract_id": "c1",
                     "secret": "kek-northwind"}, status=403, code="MeasurementMismatch")
        # Evidence that binds another key than the one that signs.
        room = k.room()
        room.signer.spki = G.spki_der(G.ec.generate_private_key(G.ec.SECP384R1()).public_key())
        self.refused(room, "POST", "/cleanroom/keys/release", {"contract_id": "c1", "secret": "kek-northwind"},
                     status=403, code="AttestationFailed")
        # No such secret.
        self.refused(k.room(), "POST", "/cleanroom/keys/release", {"contract_id": "c1", "secret": "nope"},
                     status=404, code="NotFound")
        # While one member holds execution disabled: refused; consent says why.
        rt = k.must(k.cb, "POST", "/contracts/c1/execution/disable")
        self.assertFalse(rt["execution"]["enabled"])
        self.assertEqual(rt["execution"]["disabled_by"], [k.b.id])
        try:
            self.refused(k.room(), "POST", "/cleanroom/keys/release", {"contract_id": "c1",
                         "secret": "kek-northwind"}, status=403, code="ExecutionDisabled")
            st, ans = k.room().call("POST", "/cleanroom/consent", {"contract_id": "c1", "action": "execution"})
            self.assertEqual((st, ans["allowed"]), (200, False), ans)
            self.assertIn(k.b.id[:12], ans["reason"])
            # Another member cannot lift b's hold.
            rt = k.must(k.ca, "POST", "/contracts/c1/execution/enable")
            self.assertFalse(rt["execution"]["enabled"])
        finally:
            rt = k.must(k.cb, "POST", "/contracts/c1/execution/enable")
        self.assertTrue(rt["execution"]["enabled"])
        st, _ = k.room().call("POST", "/cleanroom/keys/release", {"contract_id": "c1", "secret": "kek-northwind"})
        self.assertEqual(st, 200)

    def test_secret_owner(self):
        k = self.k
        self.refused(k.cb, "PUT", "/contracts/c1/secrets/kek-northwind", {"value": "AAAA"}, status=403,
                     code="Forbidden")


class GovNoVirtualTest(unittest.TestCase):
    def test_virtual_refused_without_flag(self):
        k = Consortium(extra=())
        try:
            k.full()
            st, doc = k.d.client(None).call("GET", "/service")
            self.assertEqual(st, 200, doc)
            self.assertFalse(doc["virtual_attestation_allowed"])
            for path, body in (("/cleanroom/keys/release", {"contract_id": "c1", "secret": "kek-northwind"}),
                               ("/cleanroom/consent", {"contract_id": "c1", "action": "execution"})):
                st, doc = k.room().call("POST", path, body)
                self.assertEqual((st, err_code(doc)), (403, "VirtualNotAllowed"), doc)
        finally:
            k.close()


class GovDurabilityTest(unittest.TestCase):
    def verify(self, data_dir):
        return subprocess.run([GOV, "verify", "--data-dir", data_dir], capture_output=True, text=True, timeout=120)

    def test_tampering_found_by_verify(self):
        k = Consortium().full()
        try:
            k.room().call("POST", "/cleanroom/events", {"contract_id": "c1", "type": "started", "data": {}})
            self.assertEqual(k.d.stop(), 0)
            r = self.verify(k.data)
            self.assertEqual(r.returncode, 0, r)
            for what in ("row", "log"):
                copy = os.path.join(k.tmp, "copy-" + what)
                shutil.copytree(k.data, copy)
                db = sqlite3.connect(os.path.join(copy, "gov.db"))
                tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
                if what == "row":
                    t = next(t for t in tables if t.startswith("contract"))
                    cols = [c[1] for c in db.execute("PRAGMA table_info(%s)" % t)]
                    col = next(c for c in cols if c in ("data", "spec", "body"))
                    n = db.execute("UPDATE %s SET %s = replace(%s, 'gzip', 'curl')" % (t, col, col)).rowcount
                else:
                    self.assertIn("log", tables)
                    n = db.execute("UPDATE log SET data = replace(data, 'northwind', 'eastwind') "
                                   "WHERE seq = 2").rowcount
                db.commit()
                db.close()
                self.assertEqual(n, 1, "%s: exactly one row edited" % what)
                r = self.verify(copy)
                self.assertEqual(r.returncode, 3, "%s edit not found: %r" % (what, r))
                self.assertRegex(r.stdout + r.stderr, "(?i)problem|mismatch|hash")
        finally:
            k.close()

    def test_concurrent_load(self):
        """50 clients x 100 signed requests: every answer 200/201, no vote or event lost, the log intact."""
        k = Consortium().full()
        try:
            errors, acks, ballots = [], {}, []
            lock = threading.Lock()
            members = [k.op, k.a, k.b]

            def worker(i):
                # 50 clean room events and, as member i % 3, 25 proposals each followed by its author's ballot.
                m = members[i % 3]
                c = k.d.client(m)
                room = k.room()
                pid = None
                try:
                    for j in range(50):
                        st, doc = room.call("POST", "/cleanroom/events", {"contract_id": "c1", "type": "load",
                                                                         "data": {"w": i, "j": j}})
                        if st != 200:
                            errors.append(("event", st, doc))
                        else:
                            with lock:
                                acks[(i, j)] = doc["seq"]
                        if j % 2 == 0:
                            st, doc = c.call("POST", "/proposals", {"actions": [{"name": "enable_logging",
                                             "args": {"contract_id": "c1"}}]}, msg_type="proposal")
                            if st in (200, 201):
                                pid = doc["proposal_id"]
                            else:
                                errors.append(("proposal", st, doc))
                        else:
                            st, doc = c.call("POST", "/proposals/%s/ballots" % pid, {"vote": "accept"},
                                             msg_type="ballot", proposal_id=pid)
                            if st != 200:
                                errors.append(("ballot", st, doc))
                            else:
                                with lock:
                                    ballots.append((pid, m.id))
                except Exception as e:  # a transport failure is an error too
                    errors.append(("exception", repr(e)))
                finally:
                    c.close()
                    room.close()

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            took = time.time() - t0
            self.assertEqual(errors[:5], [], "%d errors" % len(errors))
            seqs = sorted(acks.values())
            self.assertEqual(len(seqs), 50 * 50)
            self.assertEqual(len(set(seqs)), len(seqs), "event sequence numbers are unique")
            # Every acknowledged event is there, with its data.
            got, frm = {}, 1
            while frm is not None:
                doc = k.must(k.cop, "GET", "/contracts/c1/events?from=%d&limit=1000" % frm)
                for e in doc["events"]:
                    got[e["seq"]] = e
                frm = doc["next"]
            for (i, j), seq in acks.items():
                self.assertEqual(strip_virtual(got[seq]["data"]), {"w": i, "j": j})
            # Every acknowledged ballot is recorded on its proposal.
            self.assertEqual(len(ballots), 50 * 25)
            for pid, mid in ballots[:200]:
                p = k.must(k.cop, "GET", "/proposals/" + pid)
                self.assertEqual(p["ballots"].get(mid), "accept", p)
            rep = k.must(k.cop, "GET", "/audit/verify")
            self.assertTrue(rep["ok"], rep)
            print("load: 5,000 signed requests from 50 clients in %.1f s" % took)
        finally:
            k.close()

    def test_killed_mid_request(self):
        """SIGKILL while requests are in flight; the restarted service is consistent and lost nothing acked."""
        k = Consortium().full()
        try:
            acked, stop = [], threading.Event()

            def writer(w):
                room = k.room()
                j = 0
                while not stop.is_set():
                    try:
                        st, doc = room.call("POST", "/cleanroom/events", {"contract_id": "c1", "type": "k",
                                                                         "data": {"w": w, "j": j}})
                    except Exception:
                        break
                    if st == 200:
                        acked.append((doc["seq"], w, j))
                    j += 1
                room.close()

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            k.d.kill()
            stop.set()
            for t in threads:
                t.join(timeout=60)
            self.assertGreater(len(acked), 20)
            r = self.verify(k.data)
            self.assertEqual(r.returncode, 0, r)
            k.d.start()
            k.reconnect()  # the restarted daemon listens on a new port
            got, frm = {}, 1
            while frm is not None:
                doc = k.must(k.cop, "GET", "/contracts/c1/events?from=%d&limit=1000" % frm)
                for e in doc["events"]:
                    got[e["seq"]] = e
                frm = doc["next"]
            self.assertEqual(sorted(got), list(range(1, len(got) + 1)))
            for seq, w, j in acked:
                self.assertEqual(strip_virtual(got[seq]["data"]), {"w": w, "j": j})
            st, doc = k.room().call("POST", "/cleanroom/events", {"contract_id": "c1", "type": "after", "data": {}})
            self.assertEqual((st, doc["seq"]), (200, len(got) + 1))
            rep = k.must(k.cop, "GET", "/audit/verify")
            self.assertTrue(rep["ok"], rep)
        finally:
            k.close()


if __name__ == "__main__":
    if not (os.path.isfile(GOV) and os.access(GOV, os.X_OK)):
        print("FATAL: ccr-gov not found at %s (set CCR_GOV_BIN)" % GOV)
        sys.exit(1)
    ccrtest.main("test_gov", needs_ccr=False)
