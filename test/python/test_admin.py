"""The admin API over raw HTTP against a real `mpmeter serve --demo`, and
what it changes seen through boto3: the demo prints a generated admin token;
no or a wrong token is 401; a product, subscription and token made through
it resolve with boto3; a revoked key is refused at once; the seed export
reads back."""

import json
import re
import time
import unittest
import urllib.error
import urllib.request

from botocore.exceptions import ClientError

from mpmeter_server import SELLER_ACCOUNT, Server, ServerTestCase

TOKEN_LINE = re.compile(r"MPMETER_ADMIN_TOKEN=(\S+)")


class AdminAPITest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        deadline = time.time() + 10  # the banner's lines are read by another thread
        while True:
            lines = "".join(cls.server.stdout_lines)
            m = TOKEN_LINE.search(lines)
            if m or time.time() > deadline:
                break
            time.sleep(0.05)
        if not m:
            raise AssertionError("the demo banner shows no admin token:\n" + lines)
        cls.token = m.group(1)

    def admin(self, method, path, body=None, token=None):
        """(status, decoded JSON or text) of one admin request."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server.endpoint + "/admin/v1" + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + (self.token if token is None else token))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        return status, (json.loads(raw) if "json" in ctype else raw.decode())

    def test_tokens(self):
        for tok in ("", "wrong"):
            status, body = self.admin("GET", "/accounts", token=tok)
            self.assertEqual(status, 401)
            self.assertEqual(set(body), {"code", "message"})
            self.assertEqual(body["code"], "unauthorized")
        status, body = self.admin("GET", "/openapi.json")
        self.assertEqual(status, 200)
        self.assertEqual(body["openapi"], "3.1.0")
        self.assertIn("/accounts", body["paths"])

    def test_walkthrough_and_revoke(self):
        status, _ = self.admin("POST", "/accounts", {"id": "210987654399", "name": "Py Buyer"})
        self.assertEqual(status, 201)
        status, prod = self.admin("POST", "/products", {"code": "pyprod1", "seller_account_id": SELLER_ACCOUNT, "type": "saas",
                                                        "dimensions": [{"name": "seats", "unit": "Users", "price_per_unit": "0.05"}]})
        self.assertEqual(status, 201, prod)
        status, sub = self.admin("POST", "/subscriptions", {"account_id": "210987654399", "product_code": "pyprod1"})
        self.assertEqual(status, 201, sub)
        status, tok = self.admin("POST", "/registration-tokens", {"agreement_id": sub["agreement_id"]})
        self.assertEqual(status, 201, tok)
        status, key = self.admin("POST", "/access-keys", {"account_id": SELLER_ACCOUNT})
        self.assertEqual(status, 201, key)

        client = self.server.client(key=key["id"], secret=key["secret_access_key"])
        out = client.resolve_customer(RegistrationToken=tok["token"])
        self.assertEqual(out["CustomerIdentifier"], sub["customer_identifier"])
        self.assertEqual(out["ProductCode"], "pyprod1")

        status, revoked = self.admin("POST", "/access-keys/%s/revoke" % key["id"])
        self.assertEqual(status, 200, revoked)
        self.assertIn("revoked_at", revoked)
        with self.assertRaises(ClientError) as cm:
            client.resolve_customer(RegistrationToken=tok["token"])
        self.assertEqual(cm.exception.response["Error"]["Code"], "UnrecognizedClientException")

    def test_conflict_and_validation(self):
        status, acc = self.admin("GET", "/accounts/" + SELLER_ACCOUNT)
        self.assertEqual(status, 200)
        status, _ = self.admin("PATCH", "/accounts/" + SELLER_ACCOUNT, {"name": "First", "version": acc["version"]})
        self.assertEqual(status, 200)
        status, body = self.admin("PATCH", "/accounts/" + SELLER_ACCOUNT, {"name": "Lost", "version": acc["version"]})
        self.assertEqual((status, body["code"]), (409, "conflict"))
        status, body = self.admin("POST", "/accounts", {"id": "12"})
        self.assertEqual((status, body["code"]), (400, "validation_failed"))

    def test_export_seed(self):
        status, text = self.admin("GET", "/seed")
        self.assertEqual(status, 200)
        self.assertIn("accounts:", text)
        self.assertIn("agreement_id: agmt-", text)


class AdminAPIOffTest(unittest.TestCase):
    """Without --admin-token (and without --demo) every /admin/ path is 404."""

    def test_off(self):
        srv = Server(demo=False).start()
        try:
            req = urllib.request.Request(srv.endpoint + "/admin/v1/accounts")
            req.add_header("Authorization", "Bearer anything")
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(cm.exception.code, 404)
            self.assertEqual(json.loads(cm.exception.read())["code"], "not_found")
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
