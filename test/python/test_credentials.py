"""Temporary credentials: long-term keys refuse a session token, temporary
keys need theirs and expire, and a workload's unchanged boto3 / AWS CLI code
finds its credentials through the container credentials endpoint with only
environment variables set."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from mpmeter_server import (
    AMI_PRODUCT, BUYER_ACCOUNT, CONTAINER_PRODUCT, ECS_KEY, ECS_SECRET, REGION, SERVICE,
    ServerTestCase, mpmeter_bin, now,
)

ECS_WORKLOAD = "arn:aws:ecs:us-east-1:444455556666:task/demo/0123456789abcdef"
ECS_CREDENTIALS_TOKEN = "demo-ecs-credentials-token"
EC2_WORKLOAD = "i-0123456789abcdef0"
EC2_CREDENTIALS_TOKEN = "demo-ec2-credentials-token"
ECS_TEMP_KEY, ECS_TEMP_SECRET, ECS_SESSION_TOKEN = "ASIAEXAMPLEECS000001", "ecs-temporary-secret", "demo-ecs-session-token"
EXPIRED_KEY, EXPIRED_SECRET, EXPIRED_TOKEN = "ASIAEXAMPLEEXPIRED01", "expired-secret", "demo-expired-session-token"

INVALID = "The security token included in the request is invalid."
EXPIRED = "The security token included in the request is expired"
AWS = shutil.which("aws")

# What the workload runs: its own code, no credentials in it.
WORKLOAD_SCRIPT = r"""
import json, sys, boto3
from botocore.exceptions import ClientError
session = boto3.Session()
mm = session.client("meteringmarketplace")
creds = session.get_credentials().get_frozen_credentials()
out = {"access_key": creds.access_key, "has_token": bool(creds.token), "method": session.get_credentials().method}
try:
    if sys.argv[1] == "register":
        r = mm.register_usage(ProductCode=sys.argv[2], PublicKeyVersion=1)
        out["ok"] = bool(r["Signature"])
    else:
        r = mm.meter_usage(ProductCode=sys.argv[2], UsageDimension="vcpu_hours", UsageQuantity=1,
                           Timestamp=int(__import__("time").time()))
        out["ok"] = bool(r["MeteringRecordId"])
except ClientError as e:
    out["error"] = e.response["Error"]["Code"]
print(json.dumps(out))
"""


class CredentialsTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.home = tempfile.mkdtemp(prefix="mpmeter-py-creds-")
        cls.addClassCleanup(shutil.rmtree, cls.home, True)

    def url(self, workload):
        return self.server.endpoint + "/credentials/workloads/" + workload

    def workload_env(self, workload, token=None, token_file=None):
        """The environment of an ECS task pointed at mpmeter: nothing AWS_*
        of ours, no shared config, no keys."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "HOME": self.home,
            "AWS_CONFIG_FILE": os.path.join(self.home, "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.home, "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_ENDPOINT_URL_MARKETPLACE_METERING": self.server.endpoint,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url(workload),
        })
        if token is not None:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        if token_file is not None:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = token_file
        return env

    def run_workload(self, env, *args):
        proc = subprocess.run([sys.executable, "-c", WORKLOAD_SCRIPT] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def fetch(self, workload, token):
        req = urllib.request.Request(self.url(workload), headers={"Authorization": token})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def client(self, key, secret, token=None):
        return boto3.client(SERVICE, endpoint_url=self.server.endpoint, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                            config=Config(retries={"max_attempts": 1}))

    # --- the default chain ------------------------------------------------

    def test_boto3_default_chain_container_credentials(self):
        out = self.run_workload(self.workload_env(ECS_WORKLOAD, token=ECS_CREDENTIALS_TOKEN), "register", CONTAINER_PRODUCT)
        self.assertEqual(out.get("ok"), True, out)
        self.assertTrue(out["access_key"].startswith("ASIA"), out)
        self.assertEqual(len(out["access_key"]), 20)
        self.assertTrue(out["has_token"])
        self.assertEqual(out["method"], "container-role")

    def test_boto3_default_chain_token_file(self):
        path = os.path.join(self.home, "ec2-token")
        with open(path, "w") as f:
            f.write(EC2_CREDENTIALS_TOKEN)  # no newline: botocore refuses one in a header
        out = self.run_workload(self.workload_env(EC2_WORKLOAD, token_file=path), "meter", AMI_PRODUCT)
        self.assertEqual(out.get("ok"), True, out)
        self.assertTrue(out["access_key"].startswith("ASIA"), out)

    def test_boto3_default_chain_wrong_token(self):
        env = self.workload_env(ECS_WORKLOAD, token="not-the-token")
        proc = subprocess.run([sys.executable, "-c", WORKLOAD_SCRIPT, "register", CONTAINER_PRODUCT], env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("403", proc.stderr)

    @unittest.skipIf(AWS is None, "the aws CLI is not on PATH")
    def test_aws_cli_container_credentials(self):
        env = self.workload_env(ECS_WORKLOAD, token=ECS_CREDENTIALS_TOKEN)
        proc = subprocess.run([AWS, "meteringmarketplace", "register-usage", "--product-code", CONTAINER_PRODUCT,
                               "--public-key-version", "1"], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(json.loads(proc.stdout)["Signature"])

    # --- the endpoint -----------------------------------------------------

    def test_endpoint_json(self):
        r = self.fetch(ECS_WORKLOAD, ECS_CREDENTIALS_TOKEN)
        self.assertEqual(set(r), {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"})
        self.assertEqual(r["AccountId"], BUYER_ACCOUNT)
        self.assertRegex(r["Expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(self.fetch(ECS_WORKLOAD, ECS_CREDENTIALS_TOKEN)["AccessKeyId"], r["AccessKeyId"])
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.fetch(ECS_WORKLOAD, EC2_CREDENTIALS_TOKEN)
        self.assertEqual(cm.exception.code, 403)
        self.assertEqual(json.loads(cm.exception.read())["code"], "AccessDenied")

    # --- static temporary keys --------------------------------------------

    def test_temporary_key_with_its_token(self):
        r = self.client(ECS_TEMP_KEY, ECS_TEMP_SECRET, ECS_SESSION_TOKEN).register_usage(
            ProductCode=CONTAINER_PRODUCT, PublicKeyVersion=1)
        self.assertTrue(r["Signature"])

    def test_bogus_token_on_long_term_key(self):
        with self.assertRaises(ClientError) as cm:
            self.client(ECS_KEY, ECS_SECRET, "bogus").register_usage(ProductCode=CONTAINER_PRODUCT, PublicKeyVersion=1)
        self.assertEqual(self.assertClientError(cm, "UnrecognizedClientException", 403), INVALID)

    def test_temporary_key_without_or_with_wrong_token(self):
        for token in (None, ECS_SESSION_TOKEN + "x"):
            with self.assertRaises(ClientError) as cm:
                self.client(ECS_TEMP_KEY, ECS_TEMP_SECRET, token).register_usage(ProductCode=CONTAINER_PRODUCT, PublicKeyVersion=1)
            self.assertClientError(cm, "UnrecognizedClientException", 403, INVALID)

    def test_expired_temporary_key(self):
        mm = self.client(EXPIRED_KEY, EXPIRED_SECRET, EXPIRED_TOKEN)
        with self.assertRaises(mm.exceptions.ExpiredTokenException) as cm:
            mm.meter_usage(ProductCode=AMI_PRODUCT, UsageDimension="vcpu_hours", UsageQuantity=1, Timestamp=now())
        self.assertEqual(self.assertClientError(cm, "ExpiredTokenException", 403), EXPIRED)


class RotationTest(ServerTestCase):
    """Moves the service clock of its own server (mpmeter clock advance)."""

    def clock_advance(self, d):
        subprocess.run([mpmeter_bin(), "clock", "advance", d, "--db", self.server.db],
                       check=True, capture_output=True, timeout=30)

    def fetch(self):
        req = urllib.request.Request(self.server.endpoint + "/credentials/workloads/" + ECS_WORKLOAD,
                                     headers={"Authorization": ECS_CREDENTIALS_TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def register(self, creds):
        return boto3.client(SERVICE, endpoint_url=self.server.endpoint, region_name=REGION,
                            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["Token"], config=Config(retries={"max_attempts": 1})
                            ).register_usage(ProductCode=CONTAINER_PRODUCT, PublicKeyVersion=1)

    def until(self, check, what):
        # The server rereads the clock offset at most once a second.
        deadline = time.monotonic() + 10
        while True:
            got = check()
            if got or time.monotonic() > deadline:
                self.assertTrue(got, what)
                return
            time.sleep(0.2)

    def test_rotation_and_expiry(self):
        first = self.fetch()
        self.clock_advance("41m")
        self.until(lambda: self.fetch()["AccessKeyId"] != first["AccessKeyId"], "new credentials with 19 minutes left")
        second = self.fetch()
        self.assertTrue(self.register(first)["Signature"], "the old credentials work until they expire")
        self.clock_advance("20m")

        def first_expired():
            try:
                self.register(first)
                return False
            except ClientError as e:
                return e.response["Error"]["Code"] == "ExpiredTokenException"
        self.until(first_expired, "the old credentials expire")
        self.assertTrue(self.register(second)["Signature"])


if __name__ == "__main__":
    unittest.main()
