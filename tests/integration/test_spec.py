#!/usr/bin/python3
"""`ccr spec ...` through the binary: two parties build their fragments with the commands (one YAML, one
JSON; one taking its datastore from a ccr config, one with a member certificate whose id is checked against
a SHA-256 of its DER computed here), they are merged and validated; a broken fragment's problems are all
listed and the merge refuses it; conflicting settings; refusals and exit codes."""

import sys

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)

import base64
import datetime
import hashlib
import json
import os

import ccrtest
from ccrtest import CcrTestCase, EXIT_OK, EXIT_USAGE, EXIT_IO, EXIT_AUTH

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

WRAPPED = base64.b64encode(bytes(range(256))).decode()


def make_cert(path, name):
    """A self-signed P-384 certificate (what `ccr gov member keygen` makes); returns its member id."""
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA384()))
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class SpecCase(CcrTestCase):
    def setUp(self):
        super().setUp()
        self.env = {k: v for k, v in os.environ.items() if k != "CCR_CONFIG"}
        self.env["HOME"] = self.path("home")
        self.env["XDG_CONFIG_HOME"] = self.path("xdg")

    def spec(self, *args):
        return ccrtest.ccr("spec", *args, env=self.env)

    def load(self, p):
        with open(p) as f:
            text = f.read()
        if p.endswith(".json"):
            return json.loads(text)
        return text

    def write_config(self):
        cfg = self.path("config.json")
        with open(cfg, "w") as f:
            json.dump({"version": 1, "datastores": [
                {"name": "nw-data", "url": "file:///srv/store/northwind", "mode": "ccr1",
                 "region_size": 1048576, "key": self.key}]}, f)
        os.chmod(cfg, 0o600)
        return cfg

    def northwind(self):
        """northwind's fragment (YAML): a datasource from its datastore config, the network policy."""
        nw = self.path("northwind.yaml")
        self.nw_id = make_cert(self.path("nw_cert.pem"), "northwind")
        self.assertOk(self.spec("init", nw, "--party", "northwind", "--member-cert", self.path("nw_cert.pem")))
        wfile = self.path("cowin.wrapped")
        with open(wfile, "w") as f:
            f.write(WRAPPED + "\n")
        self.assertOk(self.spec("add-datasource", nw, "--name", "cowin", "--datastore", "nw-data",
                                "--config", self.write_config(), "--mount-path", "/mnt/remote/cowin",
                                "--kek-secret", "kek-northwind", "--wrapped-dek", "@" + wfile))
        self.assertOk(self.spec("set-network", nw, "--egress", "deny", "--allow", "example.com"))
        return nw

    def contoso(self):
        """contoso's fragment (JSON): a datasink given by URL, the application, logging."""
        co = self.path("contoso.json")
        self.assertOk(self.spec("init", co, "--party", "contoso"))
        self.assertOk(self.spec("add-datasink", co, "--name", "output", "--url", "file:///srv/out",
                                "--mode", "none", "--mount-path", "/mnt/remote/output"))
        self.assertOk(self.spec("add-application", co, "--name", "demo-app", "--command", "gzip", "--arg", "-c",
                                "--env", "LEVEL=9", "--env", "MODE=true", "--mount", "cowin", "--mount", "output"))
        self.assertOk(self.spec("set-logging", co, "--sink", "output"))
        self.assertOk(self.spec("set-telemetry", co, "--sink", "output"))
        return co


class TestFragments(SpecCase):
    def test_two_parties_merge_and_validate(self):
        nw, co = self.northwind(), self.contoso()
        text = self.load(nw)
        # readable block-style YAML
        self.assertTrue(text.startswith("parties:\n- name: northwind\n  member_id: %s\n" % self.nw_id), text)
        self.assertIn("datasources:\n- name: cowin\n  owner: northwind\n  url: file:///srv/store/northwind\n"
                      "  mode: ccr1\n  mount_path: /mnt/remote/cowin\n  kek_secret: kek-northwind\n", text)
        self.assertNotIn("{", text)
        self.assertEqual(self.load(co)["applications"], [
            {"name": "demo-app", "command": ["gzip", "-c"], "env": {"LEVEL": "9", "MODE": "true"},
             "mounts": ["cowin", "output"]}])

        merged = self.path("merged.json")
        r = self.spec("merge", merged, nw, co)
        self.assertOk(r)
        self.assertEqual(r.err, "")
        m = self.load(merged)
        self.assertEqual(m["parties"], [{"name": "northwind", "member_id": self.nw_id}, {"name": "contoso"}])
        self.assertEqual(m["datasources"], [
            {"name": "cowin", "owner": "northwind", "url": "file:///srv/store/northwind", "mode": "ccr1",
             "mount_path": "/mnt/remote/cowin", "kek_secret": "kek-northwind", "wrapped_dek": WRAPPED}])
        self.assertEqual(m["datasinks"], [
            {"name": "output", "owner": "contoso", "url": "file:///srv/out", "mode": "none",
             "mount_path": "/mnt/remote/output"}])
        self.assertEqual(m["network"], {"egress": "deny", "allow": ["example.com"]})
        self.assertEqual(m["logging"], {"sink": "output"})
        self.assertEqual(m["telemetry"], {"sink": "output"})

        r = self.spec("validate", merged)
        self.assertOk(r)
        self.assertEqual(r.out, "valid\n")
        r = self.spec("validate", "--json", merged)
        self.assertOk(r)
        self.assertEqual(json.loads(r.out), {"valid": True, "problems": []})

        # the YAML merge reads back to the same spec
        merged_yaml = self.path("merged.yml")
        self.assertOk(self.spec("merge", merged_yaml, co, nw))
        self.assertOk(self.spec("validate", merged_yaml))
        self.assertNoTemp(self.tmp)

    def test_a_fragment_alone_is_not_valid(self):
        co = self.contoso()
        r = self.spec("validate", co)
        self.assertRc(r, EXIT_AUTH)
        self.assertEqual(r.out, "applications[demo-app].mounts: unknown access point 'cowin'\n")

    def test_broken_fragment_lists_every_problem(self):
        nw = self.northwind()
        bad = self.path("bad.yaml")
        with open(bad, "w") as f:
            f.write("parties:\n"
                    "  - name: fabrikam\n"
                    "datasources:\n"
                    "  - {name: cowin, owner: nobody, url: az://x, mode: ccr2, mount_path: data/x}\n"
                    "  - {name: plain, owner: fabrikam, url: az://y, mode: cleanroom-cse, mount_path: /mnt/remote/cowin}\n"
                    "applications:\n"
                    "  - {name: demo-app, command: [sh], mounts: [cowin2]}\n")
        want = [
            "datasources[cowin]: owner 'nobody' is not a party",
            "datasources[cowin]: mount_path 'data/x' is not absolute",
            "datasources[cowin]: unknown mode 'ccr2' (use ccr1, cleanroom-cse, none or cpk)",
            "datasources[plain]: mode cleanroom-cse needs kek_secret and wrapped_dek",
            "duplicate name 'cowin' (datasources #1 and datasources #2)",
            "duplicate mount path /mnt/remote/cowin (datasources[cowin], datasources[plain])",
            "applications[demo-app].mounts: unknown access point 'cowin2'",
        ]
        out = self.path("out.json")
        r = self.spec("merge", out, nw, bad)
        self.assertRc(r, EXIT_AUTH)
        lines = r.err.splitlines()
        for w in want:
            self.assertIn("ccr spec merge: " + w, lines)
        self.assertEqual(len(lines), len(want) + 1, r.err)
        self.assertIn("not written: 7 problems", lines[-1])
        self.assertFalse(os.path.exists(out))

        r = self.spec("merge", "--force", out, nw, bad)
        self.assertOk(r)
        self.assertTrue(os.path.exists(out))
        self.assertIn("warning: " + want[0], r.err)

        r = self.spec("validate", out)
        self.assertRc(r, EXIT_AUTH)
        self.assertEqual(sorted(r.out.splitlines()), sorted(want))
        r = self.spec("validate", "--json", out)
        self.assertRc(r, EXIT_AUTH)
        j = json.loads(r.out)
        self.assertFalse(j["valid"])
        self.assertEqual(sorted(j["problems"]), sorted(want))

    def test_conflicting_settings(self):
        nw, co = self.northwind(), self.contoso()
        self.assertOk(self.spec("set-network", co, "--egress", "allow"))
        out = self.path("m.yaml")
        r = self.spec("merge", out, nw, co)
        self.assertRc(r, EXIT_AUTH)
        self.assertIn("network is set differently by party northwind and party contoso", r.err)
        self.assertFalse(os.path.exists(out))
        # the same setting in both is fine
        self.assertOk(self.spec("set-network", co, "--egress", "deny", "--allow", "example.com"))
        self.assertOk(self.spec("merge", out, nw, co))

    def test_syntax_error(self):
        bad = self.path("broken.yaml")
        with open(bad, "w") as f:
            f.write("parties:\n  - name: a\n    x: [1, 2\nb: c\n")
        r = self.spec("validate", bad)
        self.assertRc(r, EXIT_AUTH)
        self.assertIn("%s:4:2: " % bad, r.err)
        r = self.spec("validate", "--json", bad)
        self.assertRc(r, EXIT_AUTH)
        j = json.loads(r.out)
        self.assertFalse(j["valid"])
        self.assertTrue(j["problems"][0].startswith("%s:4:2: " % bad))
        r = self.spec("merge", self.path("o.yaml"), bad)
        self.assertRc(r, EXIT_AUTH)
        r = self.spec("add-datasink", bad, "--name", "o", "--url", "u", "--mode", "none", "--mount-path", "/o")
        self.assertRc(r, EXIT_AUTH)


class TestRefusals(SpecCase):
    def test_init_refuses_to_overwrite(self):
        f = self.path("a.yaml")
        self.assertOk(self.spec("init", f, "--party", "a"))
        r = self.spec("init", f, "--party", "b")
        self.assertRc(r, EXIT_IO)
        self.assertIn("already exists (use --force to replace it)", r.err)
        self.assertIn("name: a\n", self.load(f))
        self.assertOk(self.spec("init", f, "--party", "b", "--force"))
        self.assertEqual(self.load(f), "parties:\n- name: b\n")

    def test_names_replace_only_with_force(self):
        f = self.path("a.json")
        self.assertOk(self.spec("init", f, "--party", "a"))
        base = ["--name", "d", "--url", "az://c/x", "--mount-path", "/mnt/d"]
        self.assertOk(self.spec("add-datasource", f, *base, "--mode", "none"))
        r = self.spec("add-datasource", f, *base, "--mode", "cpk")
        self.assertRc(r, EXIT_USAGE)
        self.assertIn("already has a datasource 'd' (use --force to replace it)", r.err)
        r = self.spec("add-datasink", f, *base, "--mode", "none")
        self.assertRc(r, EXIT_USAGE)
        self.assertOk(self.spec("add-datasource", f, *base, "--mode", "cpk", "--force"))
        j = self.load(f)
        self.assertEqual(len(j["datasources"]), 1)
        self.assertEqual(j["datasources"][0]["mode"], "cpk")
        self.assertEqual(j["datasources"][0]["owner"], "a")
        # --force across kinds moves it
        self.assertOk(self.spec("add-datasink", f, *base, "--mode", "none", "--force"))
        j = self.load(f)
        self.assertEqual(j["datasources"], [])
        self.assertEqual([d["name"] for d in j["datasinks"]], ["d"])
        app = ["--name", "x", "--command", "cat", "--mount", "d"]
        self.assertOk(self.spec("add-application", f, *app))
        self.assertRc(self.spec("add-application", f, *app), EXIT_USAGE)
        self.assertOk(self.spec("add-application", f, *app, "--arg", "-n", "--force"))
        self.assertEqual(self.load(f)["applications"][0]["command"], ["cat", "-n"])

    def test_usage_errors(self):
        f = self.path("a.yaml")
        self.assertUsageHint(self.spec("init", f))
        self.assertUsageHint(self.spec("init", f, "--party", "bad name"))
        self.assertOk(self.spec("init", f, "--party", "a"))
        ds = ["--name", "d", "--mount-path", "/mnt/d"]
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--url", "az://c", "--mode", "ccr2"))
        r = self.spec("add-datasource", f, *ds, "--url", "az://c", "--mode", "ccr1")
        self.assertUsageHint(r)
        self.assertIn("mode ccr1 needs --kek-secret", r.err)
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--url", "az://c", "--mode", "none",
                                       "--kek-secret", "k", "--wrapped-dek", WRAPPED))
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--url", "az://c", "--mode", "ccr1",
                                       "--kek-secret", "k", "--wrapped-dek", "not base64!"))
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--url", "az://c", "--mode", "ccr1",
                                       "--kek-secret", "k"))
        self.assertUsageHint(self.spec("add-datasource", f, "--name", "d", "--url", "az://c", "--mode", "none",
                                       "--mount-path", "mnt/d"))
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--url", "az://c"))
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--datastore", "x", "--url", "az://c"))
        r = self.spec("add-datasource", f, *ds, "--datastore", "nope", "--config", self.write_config())
        self.assertRc(r, EXIT_USAGE)
        self.assertIn("unknown datastore 'nope' (see 'ccr datastore list')", r.err)
        self.assertUsageHint(self.spec("add-datasource", f, *ds, "--url", "az://c", "--mode", "none",
                                       "--owner", "someone-else"))
        self.assertUsageHint(self.spec("set-network", f, "--egress", "maybe"))
        self.assertUsageHint(self.spec("set-network", f, "--egress", "allow", "--allow", "example.com"))
        self.assertUsageHint(self.spec("add-application", f, "--name", "x", "--command", "cat"))
        self.assertUsageHint(self.spec("add-application", f, "--name", "x", "--command", "cat", "--mount", "d",
                                       "--env", "NOEQUALS"))
        self.assertUsageHint(self.spec("set-logging", f))
        self.assertUsageHint(self.spec("merge", self.path("o.yaml")))
        self.assertUsageHint(self.spec("frobnicate", f))
        self.assertUsageHint(self.spec("validate", f, "--bogus"))
        # nothing above changed the fragment
        self.assertEqual(self.load(f), "parties:\n- name: a\n")
        # a missing file is an I/O error
        r = self.spec("validate", self.path("missing.yaml"))
        self.assertRc(r, EXIT_IO)
        r = self.spec("add-datasink", self.path("missing.yaml"), *ds, "--url", "u", "--mode", "none")
        self.assertRc(r, EXIT_IO)
        self.assertIn("ccr spec init", r.err)

    def test_owner_must_be_named_when_several_parties(self):
        a, b, m = self.path("a.yaml"), self.path("b.yaml"), self.path("m.yaml")
        self.assertOk(self.spec("init", a, "--party", "a"))
        self.assertOk(self.spec("init", b, "--party", "b"))
        self.assertOk(self.spec("merge", m, a, b))
        ds = ["--name", "d", "--url", "az://c", "--mode", "none", "--mount-path", "/mnt/d"]
        r = self.spec("add-datasink", m, *ds)
        self.assertUsageHint(r)
        self.assertIn("--owner", r.err)
        self.assertOk(self.spec("add-datasink", m, *ds, "--owner", "b"))
        self.assertOk(self.spec("validate", m))

    def test_help(self):
        r = self.spec("--help")
        self.assertOk(r)
        self.assertIn("ccr spec merge OUT FRAGMENT...", r.out)
        for verb in ("init", "add-datasource", "add-datasink", "add-application", "set-network", "set-logging",
                     "set-telemetry", "merge", "validate"):
            r = self.spec(verb, "--help")
            self.assertOk(r, verb)
            self.assertTrue(r.out.startswith("Usage: ccr spec " + verb), r.out)


if __name__ == "__main__":
    ccrtest.main()
