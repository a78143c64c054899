"""GetEntitlements (AWS Marketplace Entitlement Service) through boto3.

boto3's marketplace-entitlement client sends awsJson 1.1: its model lists
["smithy-rpc-v2-cbor", "json"], and botocore takes the first protocol of its
own priority list (json before smithy-rpc-v2-cbor) that the model has. The
CBOR test builds a botocore client from the same bundled model restricted to
smithy-rpc-v2-cbor, so botocore's own CBOR serializer and parser talk to the
server.
"""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from mpmeter_server import (
    BUYER_ACCOUNT, CANCELLED_ACCOUNT, OTHER_SELLER_KEY, OTHER_SELLER_SECRET, REGION, SELLER_KEY, SELLER_SECRET, ServerTestCase,
)

ENT_SERVICE = "marketplace-entitlement"
CONTRACT_PRODUCT = "examplecontract1"
CONTRACT_CUSTOMER = "cust-contract-1"
CONTRACT_LICENSE = "arn:aws:license-manager::444455556666:license/l-0c0a000000000001"
CONTRACT_EXPIRES = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def cbor_session():
    """A botocore session whose marketplace-entitlement model speaks only
    smithy-rpc-v2-cbor (the bundled model, one metadata field changed)."""
    loader_session = botocore.session.get_session()
    model = loader_session.get_component("data_loader").load_service_model(ENT_SERVICE, "service-2")
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    version = model["metadata"]["apiVersion"]
    root = tempfile.mkdtemp(prefix="mpmeter-botocore-cbor-")
    os.makedirs(os.path.join(root, ENT_SERVICE, version))
    with open(os.path.join(root, ENT_SERVICE, version, "service-2.json"), "w") as f:
        json.dump(model, f)
    s = botocore.session.get_session()
    s.set_config_variable("data_path", root)
    return s


class GetEntitlementsTest(ServerTestCase):

    def ent(self, key=SELLER_KEY, secret=SELLER_SECRET, region=REGION, validate=True, session=None):
        cfg = Config(retries={"max_attempts": 1}, parameter_validation=validate)
        kw = dict(endpoint_url=self.server.endpoint, region_name=region, aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)
        if session is not None:
            return session.create_client(ENT_SERVICE, **kw)
        return boto3.client(ENT_SERVICE, **kw)

    def check_demo_contract(self, ents):
        by_dim = {e["Dimension"]: e for e in ents}
        self.assertEqual(sorted(by_dim), ["premium_support", "storage_tb", "tier", "users"])
        for e in ents:
            self.assertEqual(e["ProductCode"], CONTRACT_PRODUCT)
            self.assertEqual(e["CustomerIdentifier"], CONTRACT_CUSTOMER)
            self.assertEqual(e["CustomerAWSAccountId"], BUYER_ACCOUNT)
            self.assertEqual(e["LicenseArn"], CONTRACT_LICENSE)
        self.assertEqual(by_dim["users"]["Value"], {"IntegerValue": 10})
        self.assertEqual(by_dim["users"]["ExpirationDate"], CONTRACT_EXPIRES)
        self.assertEqual(by_dim["storage_tb"]["Value"], {"DoubleValue": 2.5})
        self.assertEqual(by_dim["premium_support"]["Value"], {"BooleanValue": True})
        self.assertEqual(by_dim["tier"]["Value"], {"StringValue": "gold"})
        self.assertNotIn("ExpirationDate", by_dim["tier"])

    def test_boto3_sends_awsjson(self):
        c = self.ent()
        self.assertEqual(c.meta.service_model.resolved_protocol, "json")
        seen = {}
        c.meta.events.register("before-send", lambda request, **kw: seen.update(headers=dict(request.headers), url=request.url))
        out = self.assertOK(c.get_entitlements(ProductCode=CONTRACT_PRODUCT))
        self.assertEqual(seen["headers"]["X-Amz-Target"], b"AWSMPEntitlementService.GetEntitlements")
        self.assertEqual(out["ResponseMetadata"]["HTTPHeaders"]["content-type"], "application/x-amz-json-1.1")
        self.assertNotIn("NextToken", out)
        self.check_demo_contract(out["Entitlements"])

    def test_botocore_cbor(self):
        c = self.ent(session=cbor_session())
        self.assertEqual(c.meta.service_model.resolved_protocol, "smithy-rpc-v2-cbor")
        seen = {}
        c.meta.events.register("before-send", lambda request, **kw: seen.update(headers=dict(request.headers), url=request.url))
        out = self.assertOK(c.get_entitlements(ProductCode=CONTRACT_PRODUCT))
        self.assertTrue(seen["url"].endswith("/service/AWSMPEntitlementService/operation/GetEntitlements"), seen["url"])
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        self.assertEqual(headers["smithy-protocol"], b"rpc-v2-cbor")
        self.assertNotIn("x-amz-target", headers)
        self.assertEqual(out["ResponseMetadata"]["HTTPHeaders"]["content-type"], "application/cbor")
        self.assertEqual(out["ResponseMetadata"]["HTTPHeaders"]["smithy-protocol"], "rpc-v2-cbor")
        self.check_demo_contract(out["Entitlements"])
        # Paginated, in CBOR.
        pages = list(c.get_paginator("get_entitlements").paginate(ProductCode=CONTRACT_PRODUCT, PaginationConfig={"PageSize": 3}))
        self.assertEqual([len(p["Entitlements"]) for p in pages], [3, 1])
        # Errors, in CBOR.
        with self.assertRaises(ClientError) as cm:
            c.get_entitlements(ProductCode=CONTRACT_PRODUCT, Filter={"DIMENSION": ["users"]})
        self.assertClientError(cm, "InvalidParameterException", 400, "Invalid filter combination")
        bad = self.ent(session=cbor_session(), validate=False)
        with self.assertRaises(ClientError) as cm:
            bad.get_entitlements(ProductCode=CONTRACT_PRODUCT, MaxResults=0)
        self.assertClientError(cm, "InvalidParameterException", 400, "Value '0' at 'maxResults'")

    def test_filters(self):
        c = self.ent()
        get = lambda f: [e["Dimension"] for e in c.get_entitlements(ProductCode=CONTRACT_PRODUCT, Filter=f)["Entitlements"]]
        self.assertEqual(get({"CUSTOMER_IDENTIFIER": [CONTRACT_CUSTOMER], "DIMENSION": ["users", "tier"]}), ["tier", "users"])
        self.assertEqual(get({"CUSTOMER_AWS_ACCOUNT_ID": [BUYER_ACCOUNT, CANCELLED_ACCOUNT], "DIMENSION": ["users"]}), ["users"])
        self.assertEqual(get({"CUSTOMER_IDENTIFIER": ["cust-contract-cancelled"]}), [])
        self.assertEqual(get({"LICENSE_ARN": [CONTRACT_LICENSE]}), ["premium_support", "storage_tb", "tier", "users"])
        # What boto3's 2022 users met (boto/boto3#3520): DIMENSION alone.
        with self.assertRaises(ClientError) as cm:
            c.get_entitlements(ProductCode=CONTRACT_PRODUCT, Filter={"DIMENSION": ["users"]})
        self.assertClientError(cm, "InvalidParameterException", 400, "Please provide the CUSTOMER_IDENTIFIER")
        with self.assertRaises(ClientError) as cm:
            c.get_entitlements(ProductCode=CONTRACT_PRODUCT, Filter={"CUSTOMER_IDENTIFIER": [CONTRACT_CUSTOMER], "CUSTOMER_AWS_ACCOUNT_ID": [BUYER_ACCOUNT]})
        self.assertClientError(cm, "InvalidParameterException", 400, "mutually exclusive")

    def test_paginator(self):
        pages = list(self.ent().get_paginator("get_entitlements").paginate(ProductCode=CONTRACT_PRODUCT, PaginationConfig={"PageSize": 1}))
        self.assertEqual(len(pages), 4)
        self.assertEqual([p["Entitlements"][0]["Dimension"] for p in pages], ["premium_support", "storage_tb", "tier", "users"])
        self.assertNotIn("NextToken", pages[-1])

    def test_server_validation(self):
        c = self.ent(validate=False)
        for kw, msg in [
            (dict(ProductCode=CONTRACT_PRODUCT, MaxResults=26), "Value '26' at 'maxResults'"),
            (dict(ProductCode=""), "at 'productCode'"),
            (dict(ProductCode=CONTRACT_PRODUCT, Filter={"DIMENSION": []}), "at 'filter.DIMENSION'"),
            (dict(ProductCode=CONTRACT_PRODUCT, Filter={"SELLER": ["x"]}), "Map keys must satisfy constraint"),
            (dict(ProductCode=CONTRACT_PRODUCT, NextToken="not-a-token"), "NextToken"),
        ]:
            with self.assertRaises(ClientError) as cm:
                c.get_entitlements(**kw)
            self.assertClientError(cm, "InvalidParameterException", 400, msg)

    def test_seller_only_and_region(self):
        with self.assertRaises(ClientError) as cm:
            self.ent(OTHER_SELLER_KEY, OTHER_SELLER_SECRET).get_entitlements(ProductCode=CONTRACT_PRODUCT)
        self.assertClientError(cm, "InvalidParameterException", 400)
        with self.assertRaises(ClientError) as cm:
            self.ent(region="eu-west-1").get_entitlements(ProductCode=CONTRACT_PRODUCT)
        self.assertClientError(cm, "DisabledApiException", 400, "us-east-1 only")

    @unittest.skipIf(shutil.which("aws") is None, "the aws CLI is not on PATH")
    def test_aws_cli_with_the_endpoint_variable(self):
        # The service-specific endpoint variable, as a seller's scripts set it.
        home = tempfile.mkdtemp(prefix="mpmeter-py-ent-cli-")
        self.addCleanup(shutil.rmtree, home, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "HOME": home, "AWS_CONFIG_FILE": os.path.join(home, "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "no-credentials"), "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": SELLER_KEY, "AWS_SECRET_ACCESS_KEY": SELLER_SECRET, "AWS_DEFAULT_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1", "AWS_ENDPOINT_URL_MARKETPLACE_ENTITLEMENT_SERVICE": self.server.endpoint,
        })
        proc = subprocess.run(["aws", "marketplace-entitlement", "get-entitlements", "--product-code", CONTRACT_PRODUCT,
                               "--filter", "CUSTOMER_IDENTIFIER=" + CONTRACT_CUSTOMER, "--output", "json"],
                              env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ents = json.loads(proc.stdout)["Entitlements"]
        self.assertEqual(sorted(e["Dimension"] for e in ents), ["premium_support", "storage_tb", "tier", "users"])


if __name__ == "__main__":
    unittest.main()
