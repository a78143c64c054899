"""The AWS CLI (v1) against mpmeter, as a seller or workload would use it."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from mpmeter_server import (
    AMI_PRODUCT, BUYER_ACCOUNT, CONTAINER_PRODUCT, CUSTOMER, EC2_KEY, EC2_SECRET, ECS_KEY, ECS_SECRET,
    REGION, SAAS_PRODUCT, SELLER_KEY, SELLER_SECRET, TOKEN, UUID_RE, ServerTestCase,
)

AWS = shutil.which("aws")
CLI_TIMEOUT = 120


@unittest.skipIf(AWS is None, "the aws CLI is not on PATH")
class AwsCliTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.home = tempfile.mkdtemp(prefix="mpmeter-py-cli-")
        cls.addClassCleanup(shutil.rmtree, cls.home, True)

    def aws(self, *args, key=SELLER_KEY, secret=SELLER_SECRET, endpoint_flag=True, extra_env=None):
        """Runs `aws meteringmarketplace ARGS`; returns the CompletedProcess."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            # Nothing from the user's own configuration.
            "HOME": self.home,
            "AWS_CONFIG_FILE": os.path.join(self.home, "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.home, "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1",
        })
        env.update(extra_env or {})
        cmd = [AWS, "meteringmarketplace"] + list(args)
        if endpoint_flag:
            cmd += ["--endpoint-url", self.server.endpoint]
        cmd += ["--cli-connect-timeout", "10", "--cli-read-timeout", "10"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)

    def ok_json(self, proc):
        self.assertEqual(proc.returncode, 0, "aws failed: %s" % proc.stderr)
        return json.loads(proc.stdout)

    def assertCliError(self, proc, code, operation):
        # CLI v1 exits 255 on a service error (v2 exits 254).
        self.assertIn(proc.returncode, (254, 255), "stdout %r stderr %r" % (proc.stdout, proc.stderr))
        self.assertIn("An error occurred (%s) when calling the %s operation" % (code, operation), proc.stderr)
        self.assertEqual(proc.stdout.strip(), "")

    def test_batch_meter_usage(self):
        epoch = int(time.time()) - 3600
        rec = "CustomerIdentifier=%s,Dimension=users,Quantity=3,Timestamp=%d" % (CUSTOMER, epoch)
        out = self.ok_json(self.aws("batch-meter-usage", "--product-code", SAAS_PRODUCT, "--usage-records", rec))
        self.assertEqual(out["UnprocessedRecords"], [])
        self.assertEqual(len(out["Results"]), 1)
        res = out["Results"][0]
        self.assertEqual(res["Status"], "Success")
        self.assertRegex(res["MeteringRecordId"], UUID_RE)
        self.assertEqual(res["UsageRecord"]["CustomerIdentifier"], CUSTOMER)
        self.assertEqual(res["UsageRecord"]["Quantity"], 3)
        # CLI v1 prints the wire value of timestamps (cli_timestamp_format "none"): epoch seconds.
        self.assertEqual(res["UsageRecord"]["Timestamp"], epoch)
        # The same record again gets the same id; another quantity is a duplicate.
        again = self.ok_json(self.aws("batch-meter-usage", "--product-code", SAAS_PRODUCT, "--usage-records", rec))
        self.assertEqual(again["Results"][0]["MeteringRecordId"], res["MeteringRecordId"])
        dup = self.ok_json(self.aws("batch-meter-usage", "--product-code", SAAS_PRODUCT, "--usage-records",
                                    rec.replace("Quantity=3", "Quantity=4")))
        self.assertEqual(dup["Results"][0]["Status"], "DuplicateRecord")

    def test_resolve_customer(self):
        out = self.ok_json(self.aws("resolve-customer", "--registration-token", TOKEN))
        self.assertEqual(out["CustomerIdentifier"], CUSTOMER)
        self.assertEqual(out["CustomerAWSAccountId"], BUYER_ACCOUNT)
        self.assertEqual(out["ProductCode"], SAAS_PRODUCT)

    def test_resolve_customer_with_endpoint_environment_variable(self):
        # Service-specific endpoint variable (serviceId "Marketplace Metering").
        # botocore 1.43 / CLI v1 1.45 honour it.
        proc = self.aws("resolve-customer", "--registration-token", TOKEN, endpoint_flag=False,
                        extra_env={"AWS_ENDPOINT_URL_MARKETPLACE_METERING": self.server.endpoint})
        out = self.ok_json(proc)
        self.assertEqual(out["CustomerIdentifier"], CUSTOMER)
        # Without either the CLI would call metering.marketplace.us-east-1.amazonaws.com,
        # which knows neither the demo key nor the token. The generic variable works too.
        proc = self.aws("resolve-customer", "--registration-token", TOKEN, endpoint_flag=False,
                        extra_env={"AWS_ENDPOINT_URL": self.server.endpoint})
        self.assertEqual(self.ok_json(proc)["CustomerIdentifier"], CUSTOMER)

    def test_error_exit_code(self):
        proc = self.aws("resolve-customer", "--registration-token", "no-such-token")
        self.assertCliError(proc, "InvalidTokenException", "ResolveCustomer")
        proc = self.aws("resolve-customer", "--registration-token", TOKEN, key="AKIANOSUCHKEY0000001", secret="x")
        self.assertCliError(proc, "UnrecognizedClientException", "ResolveCustomer")

    def test_meter_usage_dry_run(self):
        proc = self.aws("meter-usage", "--product-code", AMI_PRODUCT, "--timestamp", str(int(time.time())),
                        "--usage-dimension", "vcpu_hours", "--usage-quantity", "1", "--dry-run",
                        key=EC2_KEY, secret=EC2_SECRET)
        # A dry run that would succeed: exit 0 and {"MeteringRecordId": "DryRunOperation"}.
        self.assertEqual(self.ok_json(proc), {"MeteringRecordId": "DryRunOperation"})

    def test_register_usage(self):
        out = self.ok_json(self.aws("register-usage", "--product-code", CONTAINER_PRODUCT, "--public-key-version", "1",
                                    "--nonce", "cli-nonce", key=ECS_KEY, secret=ECS_SECRET))
        from test_register import jwt_parts
        header, claims, _, _ = jwt_parts(out["Signature"])
        self.assertEqual(header["alg"], "PS256")
        self.assertEqual(claims["productCode"], CONTAINER_PRODUCT)
        self.assertEqual(claims["nonce"], "cli-nonce")
        self.assertEqual(claims["publicKeyVersion"], 1)


if __name__ == "__main__":
    unittest.main()
