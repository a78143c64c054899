"""The mpmeter CLI (the binary) managing a real `mpmeter serve --demo` through
its admin API: what it creates is what the data plane answers, through the
AWS CLI; its exit codes are the documented ones (docs/cli.md)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from mpmeter_server import REGION, SELLER_KEY, SELLER_SECRET, ServerTestCase, mpmeter_bin

AWS = shutil.which("aws")
TOKEN_LINE = re.compile(r"export MPMETER_SERVER=(\S+) MPMETER_ADMIN_TOKEN=(\S+)")

EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_SERVER = 2, 3, 4, 5


class MpmeterCliTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        deadline = time.time() + 10  # the banner's lines are read by another thread
        while True:
            m = TOKEN_LINE.search("".join(cls.server.stdout_lines))
            if m or time.time() > deadline:
                break
            time.sleep(0.05)
        if not m:
            raise AssertionError("the demo banner shows no export line")
        # The banner's line, as a user pastes it.
        cls.env = {k: v for k, v in os.environ.items() if not k.startswith(("MPMETER_", "AWS_"))}
        cls.env.update({"MPMETER_SERVER": m.group(1), "MPMETER_ADMIN_TOKEN": m.group(2)})

    def mpmeter(self, *args, env=None):
        return subprocess.run([mpmeter_bin()] + list(args), env=env or self.env, capture_output=True, text=True, timeout=60)

    def ok(self, *args):
        proc = self.mpmeter(*args)
        self.assertEqual(proc.returncode, 0, "mpmeter %s: %s%s" % (" ".join(args), proc.stdout, proc.stderr))
        return proc.stdout

    def ok_json(self, *args):
        return json.loads(self.ok(*(args + ("-o", "json"))))

    def exits(self, code, *args, env=None):
        proc = self.mpmeter(*args, env=env)
        self.assertEqual(proc.returncode, code, "mpmeter %s: %s%s" % (" ".join(args), proc.stdout, proc.stderr))
        self.assertEqual(proc.stdout, "")
        self.assertTrue(proc.stderr.startswith("mpmeter: "), proc.stderr)
        return proc.stderr

    @unittest.skipIf(AWS is None, "the aws CLI is not on PATH")
    def test_walkthrough_resolved_by_the_aws_cli(self):
        # What README's walkthrough does: a product, a buyer, a token.
        self.ok("accounts", "create", "210987654321", "--name", "CLI Buyer")
        product = self.ok_json("products", "create", "--code", "pycliprod1", "--seller", "111122223333", "--type", "saas",
                               "--dimension", "users", "--dimension", "gigabytes:GB:0.10")
        self.assertEqual([d["name"] for d in product["dimensions"]], ["users", "gigabytes"])
        sub = self.ok_json("subscriptions", "create", "--account", "210987654321", "--product", "pycliprod1")
        token = self.ok_json("tokens", "issue", "--account", "210987654321", "--product", "pycliprod1")

        home = tempfile.mkdtemp(prefix="mpmeter-py-cli-")
        self.addCleanup(shutil.rmtree, home, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"HOME": home, "AWS_CONFIG_FILE": os.path.join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "none"),
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": SELLER_KEY, "AWS_SECRET_ACCESS_KEY": SELLER_SECRET,
                    "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1"})
        proc = subprocess.run([AWS, "meteringmarketplace", "resolve-customer", "--endpoint-url", self.server.endpoint,
                               "--registration-token", token["token"]], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = json.loads(proc.stdout)
        self.assertEqual(out["CustomerIdentifier"], sub["customer_identifier"])
        self.assertEqual(out["CustomerAWSAccountId"], "210987654321")
        self.assertEqual(out["ProductCode"], "pycliprod1")
        self.assertEqual(out["LicenseArn"], sub["license_arn"])

        # Expired through the CLI, the token is refused by the AWS CLI.
        self.ok("tokens", "expire", token["id"])
        proc = subprocess.run([AWS, "meteringmarketplace", "resolve-customer", "--endpoint-url", self.server.endpoint,
                               "--registration-token", token["token"]], env=env, capture_output=True, text=True, timeout=120)
        self.assertIn("ExpiredTokenException", proc.stderr)

    def test_tables_and_json(self):
        table = self.ok("products", "list").splitlines()
        self.assertTrue(table[0].startswith("CODE"), table)
        self.assertTrue(any(line.startswith("exampleprod1 ") for line in table), table)
        products = self.ok_json("products", "list")
        self.assertIsInstance(products, list)
        self.assertIn("exampleprod1", [p["code"] for p in products])

    def test_exit_codes(self):
        self.assertIn("not_found", self.exits(EXIT_NOT_FOUND, "products", "get", "nosuchproduct"))
        self.assertIn("already_exists", self.exits(EXIT_CONFLICT, "accounts", "create", "111122223333"))
        self.exits(EXIT_USAGE, "accounts", "list", "--no-such-flag")
        self.exits(EXIT_USAGE, "no-such-command")
        down = dict(self.env, MPMETER_SERVER="http://127.0.0.1:1")
        self.assertIn("connection refused", self.exits(EXIT_SERVER, "accounts", "list", env=down))
        self.assertIn("unauthorized", self.exits(1, "accounts", "list", "--token", "wrong"))

    def test_help_and_completion(self):
        proc = self.mpmeter("subscriptions", "cancel", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--account", proc.stdout)
        self.assertIn("__start_mpmeter", self.ok("completion", "bash"))


if __name__ == "__main__":
    unittest.main()
