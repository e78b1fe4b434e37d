#!/usr/bin/python3
"""`ccr gov` against a real ccr-gov over HTTPS: the CLI's behaviour and output. Member keygen, add, votes and
activation; a contract created, updated (a stale version: exit 2 with the service's 412), proposed and accepted;
the deployment spec generated (its measurement checked here), proposed and accepted; the clean room policy from
the spec; a KEK private key deposited as a secret and released to a virtual clean room, unwrapping a datastore's
DEK into the same bytes; consent allowed, then refused (exit 3) with the release refused while a member holds
execution disabled; events and the audit log paged with --all; `audit verify` OK, then a problem found (exit 3)
in a log edited behind the service's back. Usage errors and --help need no service."""

import sys

sys.dont_write_bytecode = True

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import time
import unittest

import ccrtest
from ccrtest import ccr

GOV = os.environ.get("CCR_GOV_BIN") or os.path.join(os.path.dirname(ccrtest.CCR), "ccr-gov")
PROPOSAL_RE = re.compile(r"^proposal (p-\d+) created \((.*)\); ([^;\n]*)$", re.M)


def canonical(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def measure(v):
    return hashlib.sha256(canonical(v)).hexdigest()


class Daemon:
    """ccr-gov init + serve --port 0 over HTTPS with virtual attestation allowed."""

    def __init__(self, data_dir, operator_cert):
        self.data_dir = data_dir
        r = subprocess.run([GOV, "init", "--data-dir", data_dir, "--operator-cert", operator_cert],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("ccr-gov init failed (%d): %s %s" % (r.returncode, r.stdout, r.stderr))
        self.cert = os.path.join(data_dir, "service_cert.pem")
        self.proc = None

    def start(self):
        run = tempfile.mkdtemp(prefix="ccr-gov-run-")
        port_file, ready = os.path.join(run, "port"), os.path.join(run, "ready")
        self.proc = subprocess.Popen([GOV, "serve", "--data-dir", self.data_dir, "--port", "0", "--port-file",
                                      port_file, "--ready-file", ready, "--allow-virtual-attestation"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("ccr-gov serve exited %d: %s" % (self.proc.returncode,
                                                                    self.proc.stderr.read().decode()))
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("ccr-gov serve not ready within 30 s")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        shutil.rmtree(run, ignore_errors=True)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stderr.close()
        self.proc = None


class NoService(ccrtest.CcrTestCase):
    """What the CLI decides before talking to anyone."""

    def test_help(self):
        r = ccr("gov", "--help")
        self.assertOk(r)
        for verb in ("member keygen", "update ID --spec FILE --version N", "key release", "audit list",
                     "cleanroom consent"):
            self.assertIn(verb, r.out)
        r = ccr("gov", "contract", "update", "--help")
        self.assertOk(r)
        self.assertIn("--version N", r.out)
        self.assertIn("Example", r.out)
        self.assertIn("412", r.out)
        r = ccr("gov", "key", "--help")
        self.assertOk(r)
        self.assertIn("ccr gov key release ID --secret NAME", r.out)

    def test_usage_errors(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCR_GOV_")}
        cases = [
            (("gov",), "missing noun"),
            (("gov", "nosuch", "list"), "unknown noun"),
            (("gov", "contract", "frobnicate"), "unknown verb"),
            (("gov", "contract", "show"), "missing argument"),
            (("gov", "contract", "show", "c1", "c2"), "unexpected argument"),
            (("gov", "contract", "show", "c/1"), "invalid argument"),
            (("gov", "contract", "show", "c1", "--bogus"), "unknown option"),
            (("gov", "contract", "show", "c1", "--spec", "x"), "does not apply"),
            (("gov", "contract", "update", "c1", "--spec", "x"), "missing --version"),
            (("gov", "contract", "update", "c1", "--spec", "x", "--version", "0"), "invalid --version"),
            (("gov", "contract", "show", "c1"), "--endpoint"),
            (("gov", "contract", "show", "c1", "--endpoint", "https://127.0.0.1:1"), "--member"),
            (("gov", "proposal", "vote", "p-1", "maybe"), "accept"),
            (("gov", "policy", "propose", "c1"), "--measurement"),
            (("gov", "policy", "propose", "c1", "--measurement", "abc"), "64 hex"),
            (("gov", "event", "list", "c1", "--limit", "5000"), "--limit"),
            (("gov", "key", "release", "c1", "--secret", "s", "--deployment-spec", "d"), "--out"),
            (("gov", "key", "release", "c1", "--secret", "s", "--deployment-spec", "d", "--wrapped-dek", "x"),
             "--dek-out"),
            (("gov", "cleanroom", "consent", "c1", "--deployment-spec", "d"), "--action"),
            (("gov", "member", "keygen"), "--name"),
        ]
        for args, needle in cases:
            r = ccr(*args, env=env)
            self.assertUsageHint(r)
            self.assertIn(needle, r.err, r)

    def test_keygen_and_id(self):
        r = ccr("gov", "member", "keygen", "--name", "zed", "--out-dir", self.tmp)
        self.assertOk(r)
        mid = re.search(r"^member id ([0-9a-f]{64})$", r.out, re.M).group(1)
        cert, key = self.path("zed_cert.pem"), self.path("zed_privk.pem")
        self.assertIn(cert, r.out)
        self.assertIn(key, r.out)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertNotIn("PRIVATE", r.out)
        r = ccr("gov", "member", "id", "--cert", cert)
        self.assertOk(r)
        self.assertEqual(r.out.strip(), mid)
        r = ccr("gov", "member", "id", "--cert", cert, "--json")
        self.assertOk(r)
        self.assertEqual(json.loads(r.out), {"member_id": mid, "name": "zed"})
        # the id is the SHA-256 of the certificate's DER
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding
        der = x509.load_pem_x509_certificate(ccrtest.read(cert)).public_bytes(Encoding.DER)
        self.assertEqual(hashlib.sha256(der).hexdigest(), mid)
        r = ccr("gov", "member", "keygen", "--name", "zed", "--out-dir", self.tmp)
        self.assertRc(r, 2)


class Flow(unittest.TestCase):
    """One consortium, driven step by step (the test methods run in name order and share the state)."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ccr-gov-cli-")
        cls.keys = os.path.join(cls.tmp, "keys")
        os.mkdir(cls.keys)
        cls.ids = {}
        for name in ("operator", "alice", "bob"):
            r = ccr("gov", "member", "keygen", "--name", name, "--out-dir", cls.keys)
            if r.rc != 0:
                raise RuntimeError("keygen failed: %r" % r)
            cls.ids[name] = re.search(r"^member id ([0-9a-f]{64})$", r.out, re.M).group(1)
        cls.daemon = Daemon(os.path.join(cls.tmp, "gov"), cls.prefix("operator") + "_cert.pem")
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.env = dict(os.environ)
        cls.env.update(CCR_GOV_ENDPOINT="https://127.0.0.1:%d" % cls.daemon.port,
                       CCR_GOV_SERVICE_CERT=cls.daemon.cert)
        cls.env.pop("CCR_GOV_MEMBER", None)
        cls.failed = False

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def prefix(cls, name):
        return os.path.join(cls.keys, name)

    def setUp(self):
        if Flow.failed:
            self.skipTest("an earlier step failed")

    def run(self, result=None):
        n = len(result.failures) + len(result.errors) if result else 0
        super().run(result)
        if result and len(result.failures) + len(result.errors) > n:
            Flow.failed = True

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def gov(self, who, *args, rc=0):
        a = ["gov"] + [str(x) for x in args]
        if who:
            a += ["--member", self.prefix(who)]
        r = ccr(*a, env=self.env, timeout=60)
        if rc is not None:
            self.assertEqual(r.rc, rc, r)
        return r

    def proposal(self, r):
        m = PROPOSAL_RE.search(r.out)
        self.assertIsNotNone(m, r)
        return m.group(1), m.group(2), m.group(3)

    def vote(self, pid, voters, last_state):
        for i, v in enumerate(voters):
            r = self.gov(v, "proposal", "vote", pid, "accept")
            self.assertIn("proposal %s accept recorded" % pid, r.out)
            if i + 1 < len(voters):
                self.assertIn("%d of " % (len(voters) - i - 1), r.out)
        self.assertTrue(r.out.rstrip().endswith("; " + last_state), r)

    def cleanroom(self, *args, spec=None, rc=0):
        return self.gov(None, *args, "--deployment-spec", spec or self.path("dep.json"), rc=rc)

    # ------------------------------------------------------------------------------------------------------

    def test_01_members(self):
        r = self.gov("operator", "member", "list")
        self.assertRegex(r.out, r"operator\s+active\s+%s" % self.ids["operator"])
        # alice: proposed by the operator, the only active member
        r = self.gov("operator", "member", "add", "--cert", self.prefix("alice") + "_cert.pem")
        pid, summary, tail = self.proposal(r)
        self.assertEqual(summary, "add_member alice")
        self.assertEqual(tail, "1 of 1 member must still vote")
        # not yet a member at all, then accepted but inactive: refused (exit 3) with the service's code
        r = self.gov("alice", "member", "list", rc=3)
        self.assertIn("401 UnknownMember", r.err)
        self.vote(pid, ["operator"], "accepted")
        r = self.gov("alice", "member", "list", rc=3)
        self.assertIn("403 InactiveMember", r.err)
        r = self.gov("alice", "member", "activate")
        self.assertEqual(r.out, "member %s is active\n" % self.ids["alice"])
        # bob: two active members must accept
        r = self.gov("alice", "member", "add", "--cert", self.prefix("bob") + "_cert.pem", "--name", "bob")
        pid, summary, tail = self.proposal(r)
        self.assertEqual(tail, "2 of 2 members must still vote")
        r = self.gov("alice", "proposal", "list", "--state", "open")
        self.assertRegex(r.out, r"(?m)^%s\s+open\s+0 accept 0 reject\s+add_member bob$" % pid)
        r = self.gov("alice", "proposal", "show", pid)
        self.assertIn("add_member {\"cert\":\"<certificate of member %s>\",\"name\":\"bob\"}" % self.ids["bob"],
                      r.out)
        self.vote(pid, ["alice", "operator"], "accepted")
        self.gov("bob", "member", "activate")
        r = self.gov("bob", "member", "list", "--json")
        members = json.loads(r.out)["members"]
        self.assertEqual(sorted((m["name"], m["status"]) for m in members),
                         [("alice", "active"), ("bob", "active"), ("operator", "active")])
        # a second ballot is the service's 409
        r = self.gov("bob", "proposal", "vote", pid, "accept", rc=2)
        self.assertRegex(r.err, r"^ccr gov proposal vote: %s: 409 \w+: " % pid)

    def test_02_contract(self):
        # the datastore's DEK, wrapped under a KEK whose private key becomes the contract's secret
        self.assertEqual(ccr("key", "new", "--out", self.path("dek.bin")).rc, 0)
        self.assertEqual(ccr("kek", "new", "--out", self.path("kek.pem")).rc, 0)
        self.assertEqual(ccr("key", "wrap", "--kek", self.path("kek.pem"), "--key", self.path("dek.bin"),
                             "--out", self.path("dek.wrapped")).rc, 0)
        wrapped = ccrtest.read(self.path("dek.wrapped")).decode().strip()
        spec = {
            "parties": [{"name": "alice", "member_id": self.ids["alice"]}, {"name": "bob"}],
            "datasources": [{"name": "cowin", "owner": "alice", "url": "file:///data/cowin", "mode": "ccr1",
                             "mount_path": "/mnt/remote/cowin", "kek_secret": "kek-alice",
                             "wrapped_dek": wrapped}],
            "datasinks": [{"name": "output", "owner": "bob", "url": "file:///data/out", "mode": "none",
                           "mount_path": "/mnt/remote/output"}],
            "applications": [{"name": "app", "command": ["gzip", "-c"], "mounts": ["cowin", "output"]}],
            "network": {"egress": "deny", "allow": []},
        }
        with open(self.path("spec1.json"), "w") as f:
            json.dump(spec, f)
        r = self.gov("alice", "contract", "create", "c1", "--spec", self.path("spec1.json"))
        self.assertEqual(r.out, "contract c1 created (version 1, draft)\n")
        spec["applications"][0]["env"] = {"LEVEL": "9"}
        with open(self.path("spec2.json"), "w") as f:
            json.dump(spec, f)
        r = self.gov("bob", "contract", "update", "c1", "--spec", self.path("spec2.json"), "--version", "1")
        self.assertEqual(r.out, "contract c1 updated (version 2, draft)\n")
        # alice edits what she saw (version 1): refused, nothing lost
        r = self.gov("alice", "contract", "update", "c1", "--spec", self.path("spec1.json"), "--version", "1",
                     rc=2)
        self.assertRegex(r.err, r"^ccr gov contract update: c1: 412 VersionMismatch: .+")
        r = self.gov("alice", "contract", "show", "c1", "--json")
        c = json.loads(r.out)
        self.assertEqual((c["version"], c["state"], c["data"]), (2, "draft", spec))
        r = self.gov("alice", "contract", "list")
        self.assertRegex(r.out, r"(?m)^c1\s+2\s+draft\s+-\s")
        # propose, vote through the contract
        r = self.gov("alice", "contract", "propose", "c1")
        pid, summary, tail = self.proposal(r)
        self.assertEqual(summary, "set_contract c1 v2")
        self.assertEqual(tail, "3 of 3 members must still vote")
        r = self.gov("alice", "contract", "show", "c1")
        self.assertRegex(r.out, r"state\s+proposed")
        self.assertRegex(r.out, r"proposal\s+%s" % pid)
        for i, who in enumerate(("alice", "bob", "operator")):
            r = self.gov(who, "contract", "vote", "c1", "accept")
            self.assertIn("proposal %s accept recorded (set_contract c1 v2)" % pid, r.out)
        self.assertTrue(r.out.rstrip().endswith("; accepted"), r)
        c = json.loads(self.gov("bob", "contract", "show", "c1", "--json").out)
        self.assertEqual(c["state"], "accepted")
        r = self.gov("bob", "contract", "vote", "c1", "accept", rc=2)
        self.assertIn("no open proposal", r.err)
        # an accepted contract is not a draft any more
        r = self.gov("bob", "contract", "update", "c1", "--spec", self.path("spec2.json"), "--version", "2",
                     rc=2)
        self.assertIn("409 ContractNotDraft", r.err)

    def test_03_deployment_and_policy(self):
        dep = self.path("dep.json")
        r = self.gov("alice", "deployment", "generate", "c1", "--out", dep)
        spec = json.loads(ccrtest.read(dep))
        m = measure(spec)
        self.assertIn("measurement %s" % m, r.out)
        self.assertEqual((spec["contract_id"], spec["contract_version"]), ("c1", 2))
        self.assertEqual([x["name"] for x in spec["mounts"]], ["cowin", "output"])
        # without --out: the spec on stdout, the measurement on stderr
        r = self.gov("alice", "deployment", "generate", "c1")
        self.assertEqual(json.loads(r.out), spec)
        self.assertIn(m, r.err)
        r = self.gov("alice", "deployment", "show", "c1", rc=2)
        self.assertIn("404", r.err)
        r = self.gov("alice", "deployment", "propose", "c1", "--spec", dep)
        pid, summary, _ = self.proposal(r)
        self.assertEqual(summary, "set_deployment_spec c1")
        self.vote(pid, ["alice", "bob", "operator"], "accepted")
        r = self.gov("bob", "deployment", "show", "c1", "--json")
        self.assertEqual(json.loads(r.out)["measurement"], m)
        r = self.gov("alice", "policy", "propose", "c1", "--from-spec", dep)
        pid, summary, _ = self.proposal(r)
        self.assertEqual(summary, "set_cleanroom_policy c1 (1 measurement)")
        self.vote(pid, ["alice", "bob", "operator"], "accepted")
        r = self.gov("bob", "policy", "show", "c1")
        self.assertIn("  %s\n" % m, r.out)
        # a proposal of the same policy by its measurement, then withdrawn by its proposer
        r = self.gov("bob", "policy", "propose", "c1", "--measurement", m)
        pid, _, _ = self.proposal(r)
        r = self.gov("alice", "proposal", "withdraw", pid, rc=3)
        self.assertIn("403", r.err)
        r = self.gov("bob", "proposal", "withdraw", pid)
        self.assertEqual(r.out, "proposal %s withdrawn\n" % pid)
        r = self.gov("bob", "proposal", "show", pid)
        self.assertRegex(r.out, r"state\s+withdrawn")
        self.assertIn("set_cleanroom_policy", r.out)

    def test_04_secret_and_release(self):
        r = self.gov("alice", "secret", "deposit", "c1", "kek-alice", "--file", self.path("kek.pem"))
        self.assertIn("secret kek-alice of contract c1 deposited", r.out)
        self.assertNotIn("PRIVATE", r.out + r.err)
        r = self.gov("bob", "secret", "list", "c1")
        self.assertRegex(r.out, r"(?m)^kek-alice\s+%s\s" % self.ids["alice"])
        self.assertNotIn("PRIVATE", r.out)
        # the clean room: release the KEK, unwrap the datastore's DEK with it
        out = self.path("released.bin")
        r = self.cleanroom("key", "release", "c1", "--secret", "kek-alice", "--wrapped-dek",
                           "@" + self.path("dek.wrapped"), "--dek-out", out)
        self.assertIn("DEK unwrapped with released KEK kek-alice of contract c1 into %s" % out, r.out)
        self.assertIn("virtual", r.err)
        self.assertEqual(ccrtest.read(out), ccrtest.read(self.path("dek.bin")))
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        # the wrapped DEK given inline too; an existing --dek-out needs --force
        wrapped = ccrtest.read(self.path("dek.wrapped")).decode().strip()
        r = self.cleanroom("key", "release", "c1", "--secret", "kek-alice", "--wrapped-dek", wrapped,
                           "--dek-out", out, rc=2)
        self.assertIn("already exists", r.err)
        self.cleanroom("key", "release", "c1", "--secret", "kek-alice", "--wrapped-dek", wrapped, "--dek-out", out,
                       "--force")
        self.assertEqual(ccrtest.read(out), ccrtest.read(self.path("dek.bin")))
        # --out: the secret itself
        r = self.cleanroom("key", "release", "c1", "--secret", "kek-alice", "--out", self.path("kek-released.pem"))
        self.assertEqual(ccrtest.read(self.path("kek-released.pem")), ccrtest.read(self.path("kek.pem")))
        self.assertNotIn("PRIVATE", r.out + r.err)
        # a clean room running something else is refused
        other = json.loads(ccrtest.read(self.path("dep.json")))
        other["network"] = {"egress": "allow"}
        with open(self.path("other.json"), "w") as f:
            json.dump(other, f)
        r = self.cleanroom("key", "release", "c1", "--secret", "kek-alice", "--out", self.path("x.pem"),
                           spec=self.path("other.json"), rc=3)
        self.assertIn("403 MeasurementMismatch", r.err)
        self.assertFalse(os.path.exists(self.path("x.pem")))

    def test_05_consent_and_execution(self):
        r = self.cleanroom("cleanroom", "consent", "c1", "--action", "execution")
        self.assertEqual(r.out, "allowed\n")
        r = self.gov("bob", "execution", "disable", "c1")
        self.assertRegex(r.out, r"execution\s+disabled \(held by %s\)" % self.ids["bob"][:12])
        r = self.gov("alice", "execution", "status", "c1", "--json")
        self.assertEqual(json.loads(r.out)["execution"]["disabled_by"], [self.ids["bob"]])
        r = self.cleanroom("cleanroom", "consent", "c1", "--action", "execution", rc=3)
        self.assertRegex(r.out, r"^refused: .+\n$")
        out = self.path("refused.bin")
        r = self.cleanroom("key", "release", "c1", "--secret", "kek-alice", "--wrapped-dek",
                           "@" + self.path("dek.wrapped"), "--dek-out", out, rc=3)
        self.assertRegex(r.err, r"ccr gov key release: c1: 403 ExecutionDisabled: ")
        self.assertFalse(os.path.exists(out))
        r = self.gov("bob", "execution", "enable", "c1")
        self.assertRegex(r.out, r"execution\s+enabled\n")
        self.assertEqual(self.cleanroom("cleanroom", "consent", "c1", "--action", "execution").out, "allowed\n")
        # logging: disabling is accepted at creation; enabling is a proposal like any other
        r = self.gov("alice", "logging", "disable", "c1")
        _, summary, tail = self.proposal(r)
        self.assertEqual((summary, tail), ("disable_logging c1", "accepted"))
        r = self.gov("alice", "logging", "enable", "c1")
        _, summary, tail = self.proposal(r)
        self.assertEqual((summary, tail), ("enable_logging c1", "3 of 3 members must still vote"))
        # any actions from a file (YAML here): telemetry off, accepted at creation
        with open(self.path("actions.yaml"), "w") as f:
            f.write("actions:\n  - name: disable_telemetry\n    args:\n      contract_id: c1\n")
        r = self.gov("bob", "proposal", "create", "--actions", self.path("actions.yaml"))
        self.assertEqual(self.proposal(r)[1:], ("disable_telemetry c1", "accepted"))
        r = self.gov("alice", "execution", "status", "c1")
        self.assertRegex(r.out, r"logging\s+disabled")
        self.assertRegex(r.out, r"telemetry\s+disabled")

    def test_06_documents(self):
        with open(self.path("terms.txt"), "w") as f:
            f.write("Use the data for the agreed study only.\n")
        r = self.gov("alice", "document", "create", "terms", "--contract", "c1", "--file", self.path("terms.txt"))
        self.assertEqual(r.out, "document terms created (version 1, draft)\n")
        with open(self.path("terms.txt"), "a") as f:
            f.write("Results leave only through the output datasink.\n")
        r = self.gov("bob", "document", "update", "terms", "--file", self.path("terms.txt"), "--version", "1")
        self.assertEqual(r.out, "document terms updated (version 2, draft)\n")
        r = self.gov("alice", "document", "update", "terms", "--file", self.path("terms.txt"), "--version", "1",
                     rc=2)
        self.assertIn("412 VersionMismatch", r.err)
        r = self.gov("alice", "document", "propose", "terms")
        pid, summary, _ = self.proposal(r)
        self.assertEqual(summary, "set_document terms v2")
        r = self.cleanroom("cleanroom", "document", "c1", "terms", rc=2)
        self.assertIn("404", r.err)
        for who in ("alice", "bob", "operator"):
            r = self.gov(who, "document", "vote", "terms", "accept")
        self.assertTrue(r.out.rstrip().endswith("; accepted"), r)
        r = self.cleanroom("cleanroom", "document", "c1", "terms")
        self.assertEqual(r.out, "Use the data for the agreed study only.\n"
                                "Results leave only through the output datasink.\n")
        r = self.gov("bob", "document", "show", "terms", "--json")
        d = json.loads(r.out)
        self.assertEqual((d["contract_id"], d["version"], d["state"]), ("c1", 2, "accepted"))

    def test_07_events(self):
        r = self.cleanroom("cleanroom", "event", "c1", "--type", "job.done", "--data", '{"rows":42}')
        seq = int(re.match(r"^event (\d+) recorded \(job\.done\)$", r.out).group(1))
        r = self.gov("alice", "event", "list", "c1", "--all", "--limit", "2", "--json")
        events = json.loads(r.out)["events"]
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(set(seqs)))
        types = [e["type"] for e in events]
        self.assertGreaterEqual(types.count("consent"), 3)
        self.assertGreaterEqual(types.count("key_released"), 3)
        self.assertEqual(events[-1]["seq"], seq)
        self.assertEqual((events[-1]["type"], events[-1]["data"]["rows"]), ("job.done", 42))
        # text, paged: the same rows in order, with a header
        r = self.gov("alice", "event", "list", "c1", "--all", "--limit", "2")
        lines = r.out.splitlines()
        self.assertTrue(lines[0].startswith("SEQ"), r)
        self.assertEqual([int(l.split()[0]) for l in lines[1:]], seqs)
        # one page without --all says where to go on
        r = self.gov("alice", "event", "list", "c1", "--limit", "2")
        self.assertEqual(len(r.out.splitlines()), 3)
        self.assertIn("--from", r.err)

    def test_08_audit(self):
        r = self.gov("bob", "audit", "list", "--all", "--limit", "7", "--json")
        entries = json.loads(r.out)["entries"]
        self.assertEqual([e["seq"] for e in entries], list(range(1, len(entries) + 1)))
        self.assertGreater(len(entries), 20)
        r = self.gov("bob", "audit", "list", "--from", "3", "--limit", "2")
        self.assertEqual([int(l.split()[0]) for l in r.out.splitlines()[1:]], [3, 4])
        r = self.gov("bob", "audit", "verify")
        m = re.match(r"^audit: (\d+) entries, head ([0-9a-f]{64}): OK\n$", r.out)
        self.assertIsNotNone(m, r)
        self.assertGreaterEqual(int(m.group(1)), len(entries))
        # edit an entry behind the service's back: the client's own check finds it
        self.daemon.stop()
        db = sqlite3.connect(os.path.join(self.daemon.data_dir, "gov.db"))
        db.execute("UPDATE log SET actor = 'mallory' WHERE seq = 2")
        db.commit()
        db.close()
        self.daemon.start()
        self.env["CCR_GOV_ENDPOINT"] = "https://127.0.0.1:%d" % self.daemon.port
        r = self.gov("bob", "audit", "verify", rc=3)
        self.assertIn("entry 2: hash mismatch", r.out)
        self.assertRegex(r.out, r"audit: \d+ entries, head [0-9a-f]{64}: \d+ problems?\n$")


if __name__ == "__main__":
    ccrtest.main("test_gov_cli")
