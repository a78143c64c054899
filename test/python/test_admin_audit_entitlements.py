"""The admin API's entitlements and audit routes against a real `mpmeter
serve --demo`: entitlements replaced over raw HTTP are what boto3's
GetEntitlements answers; boto3's calls are in the audit log's list (with
its filters) and in the JSON-lines export; a created key's secret is not."""

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config

from mpmeter_server import SELLER_ACCOUNT, SELLER_KEY, SELLER_SECRET, ServerTestCase

TOKEN_LINE = re.compile(r"MPMETER_ADMIN_TOKEN=(\S+)")
CONTRACT_PRODUCT = "examplecontract1"
CONTRACT_CUSTOMER = "cust-contract-1"


class AdminAuditEntitlementsTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        deadline = time.time() + 10
        while True:
            m = TOKEN_LINE.search("".join(cls.server.stdout_lines))
            if m or time.time() > deadline:
                break
            time.sleep(0.05)
        if not m:
            raise AssertionError("the demo banner shows no admin token")
        cls.token = m.group(1)

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server.endpoint + "/admin/v1" + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        return status, (json.loads(raw) if ctype.startswith("application/json") else raw.decode())

    def entitlements_client(self):
        return boto3.client("marketplace-entitlement", endpoint_url=self.server.endpoint, region_name="us-east-1",
                            aws_access_key_id=SELLER_KEY, aws_secret_access_key=SELLER_SECRET,
                            config=Config(retries={"max_attempts": 1}))

    def contract_agreement(self):
        status, subs = self.admin("GET", "/subscriptions?product_code=" + CONTRACT_PRODUCT)
        self.assertEqual(status, 200, subs)
        for s in subs["items"]:
            if s.get("customer_identifier") == CONTRACT_CUSTOMER:
                return s["agreement_id"]
        self.fail("no demo contract subscription")

    def test_entitlements_put_seen_by_boto3(self):
        agreement = self.contract_agreement()
        status, out = self.admin("PUT", "/subscriptions/%s/entitlements" % agreement, {"entitlements": [
            {"dimension": "users", "value": 42, "expires_at": "2032-01-01T00:00:00Z"},
            {"dimension": "storage_tb", "value": 7.0},
            {"dimension": "tier", "value": "42"},
        ]})
        self.assertEqual(status, 200, out)
        got = self.entitlements_client().get_entitlements(ProductCode=CONTRACT_PRODUCT,
                                                          Filter={"CUSTOMER_IDENTIFIER": [CONTRACT_CUSTOMER]})
        by_dim = {e["Dimension"]: e for e in got["Entitlements"]}
        self.assertEqual(set(by_dim), {"users", "storage_tb", "tier"})
        self.assertEqual(by_dim["users"]["Value"], {"IntegerValue": 42})
        self.assertEqual(by_dim["users"]["ExpirationDate"].year, 2032)
        self.assertEqual(by_dim["storage_tb"]["Value"], {"DoubleValue": 7.0})
        self.assertEqual(by_dim["tier"]["Value"], {"StringValue": "42"})
        status, err = self.admin("PUT", "/subscriptions/%s/entitlements" % agreement,
                                 {"entitlements": [{"dimension": "nope", "value": 1}]})
        self.assertEqual(status, 400, err)
        self.assertEqual(err["code"], "validation_failed")

    def test_audit_routes_see_boto3_calls(self):
        status, key = self.admin("POST", "/access-keys", {"account_id": SELLER_ACCOUNT})
        self.assertEqual(status, 201, key)
        client = self.server.client(key=key["id"], secret=key["secret_access_key"])
        out = client.resolve_customer(RegistrationToken="demo-token-1")
        request_id = out["ResponseMetadata"]["RequestId"]
        # The log is written in batches, at most ~0.5 s behind.
        deadline = time.time() + 10
        while True:
            status, page = self.admin("GET", "/audit/events?" + urllib.parse.urlencode(
                {"request_id": request_id, "operation": "ResolveCustomer", "source": "metering"}))
            self.assertEqual(status, 200, page)
            if page["items"] or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(page["items"]), 1, page)
        ev = page["items"][0]
        self.assertEqual(ev["eventSource"], "metering-marketplace.amazonaws.com")
        self.assertEqual(ev["userIdentity"]["accessKeyId"], key["id"])
        self.assertTrue(ev["requestParameters"]["registrationToken"].startswith("sha256:"))
        status, one = self.admin("GET", "/audit/events/" + ev["eventID"])
        self.assertEqual((status, one["requestID"]), (200, request_id))

        self.entitlements_client().get_entitlements(ProductCode=CONTRACT_PRODUCT)
        deadline = time.time() + 10
        while True:
            status, text = self.admin("GET", "/audit/export?source=entitlement")
            self.assertEqual(status, 200)
            lines = [json.loads(l) for l in text.splitlines() if l]
            if lines or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(lines)
        self.assertTrue(all(e["eventSource"] == "entitlement-marketplace.amazonaws.com" and e["eventName"] == "GetEntitlements" for e in lines))

        deadline = time.time() + 10
        while True:  # until the create-access-key event is written too
            status, everything = self.admin("GET", "/audit/export?source=admin")
            self.assertEqual(status, 200)
            if '"create-access-key"' in everything or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertIn('"create-access-key"', everything)
        self.assertNotIn(key["secret_access_key"], everything)
        self.assertNotIn(self.token, everything)
