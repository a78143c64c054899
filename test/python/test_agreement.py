"""The AWS Marketplace Agreement Service's read side through boto3.

boto3's marketplace-agreement client (botocore 1.43) sends awsJson 1.0:
X-Amz-Target AWSMPCommerceService_v20200301.<Operation> with Content-Type
application/x-amz-json-1.0. The agreements are the demo marketplace's
subscriptions; their ids are the admin API's agreement_id.
"""

import json
import os
import subprocess
import unittest
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from mpmeter_server import (
    BUYER_ACCOUNT, OTHER_SELLER_KEY, OTHER_SELLER_SECRET, REGION, SELLER_KEY, SELLER_SECRET, ServerTestCase,
)

SERVICE = "marketplace-agreement"
ADMIN_TOKEN = "agreement-test-admin-token"
SELLER_ACCOUNT = "111122223333"


class AgreementTest(ServerTestCase):
    SERVER_ARGS = ("--admin-token", ADMIN_TOKEN)

    def client(self, key=SELLER_KEY, secret=SELLER_SECRET, region=REGION, validate=True):
        cfg = Config(retries={"max_attempts": 1}, parameter_validation=validate)
        return boto3.client(SERVICE, endpoint_url=self.server.endpoint, region_name=region,
                            aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)

    def admin_subscriptions(self, **query):
        qs = "&".join("%s=%s" % kv for kv in query.items())
        req = urllib.request.Request(self.server.endpoint + "/admin/v1/subscriptions?" + qs)
        req.add_header("Authorization", "Bearer " + ADMIN_TOKEN)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["items"]

    def agreement_id(self, account, product):
        items = self.admin_subscriptions(account_id=account, product_code=product)
        self.assertEqual(len(items), 1, items)
        return items[0]["agreement_id"]

    def test_describe_agreement_is_the_admin_apis_subscription(self):
        agmt = self.agreement_id(BUYER_ACCOUNT, "examplecontract1")
        out = self.client().describe_agreement(agreementId=agmt)
        self.assertEqual(out["agreementId"], agmt)
        self.assertEqual(out["acceptor"], {"accountId": BUYER_ACCOUNT})
        self.assertEqual(out["proposer"], {"accountId": SELLER_ACCOUNT})
        self.assertEqual(out["status"], "ACTIVE")
        self.assertEqual(out["agreementType"], "PurchaseAgreement")
        self.assertEqual(out["endTime"].year, 2030)  # the contract's end
        self.assertEqual(out["startTime"], out["acceptanceTime"])
        res = out["proposalSummary"]["resources"]
        self.assertEqual(len(res), 1)
        self.assertRegex(res[0]["id"], r"^prod-[a-v0-9]{13}$")
        self.assertEqual(res[0]["type"], "SaaSProduct")
        self.assertRegex(out["proposalSummary"]["offerId"], r"^offer-")
        self.assertEqual(out["estimatedCharges"]["currencyCode"], "USD")

    def test_describe_another_sellers_agreement(self):
        agmt = self.agreement_id(BUYER_ACCOUNT, "exampleprod1")
        with self.assertRaises(ClientError) as cm:
            self.client(OTHER_SELLER_KEY, OTHER_SELLER_SECRET).describe_agreement(agreementId=agmt)
        self.assertClientError(cm, "ResourceNotFoundException", message=agmt)
        err = cm.exception.response
        self.assertEqual(err["resourceId"], agmt)
        self.assertEqual(err["resourceType"], "Agreement")

    def test_get_agreement_terms_of_a_contract(self):
        agmt = self.agreement_id(BUYER_ACCOUNT, "examplecontract1")
        out = self.client().get_agreement_terms(agreementId=agmt)
        kinds = [next(iter(t)) for t in out["acceptedTerms"]]
        self.assertEqual(kinds, ["configurableUpfrontPricingTerm", "validityTerm"])
        upfront = out["acceptedTerms"][0]["configurableUpfrontPricingTerm"]
        self.assertEqual(upfront["type"], "ConfigurableUpfrontPricingTerm")
        self.assertRegex(upfront["id"], r"^term-[0-9a-f]{32}$")
        keys = {d["dimensionKey"]: d["dimensionValue"] for d in upfront["configuration"]["dimensions"]}
        self.assertEqual(keys, {"users": 10, "premium_support": 1})  # 2.5 TB and "gold" have no unit count
        self.assertEqual(len(upfront["rateCards"][0]["rateCard"]), 4)

        # Paginated by botocore's paginator: the same terms, one a page.
        pages = self.client().get_paginator("get_agreement_terms").paginate(
            agreementId=agmt, PaginationConfig={"PageSize": 1})
        self.assertEqual([next(iter(t)) for p in pages for t in p["acceptedTerms"]], kinds)

    def test_get_agreement_terms_pay_as_you_go(self):
        agmt = self.agreement_id(BUYER_ACCOUNT, "exampleprod1")
        out = self.client().get_agreement_terms(agreementId=agmt)
        usage = out["acceptedTerms"][0]["usageBasedPricingTerm"]
        self.assertEqual([r["dimensionKey"] for r in usage["rateCards"][0]["rateCard"]], ["users", "gigabytes"])

    def test_search_agreements(self):
        c = self.client()
        out = c.search_agreements(catalog="AWSMarketplace", filters=[
            {"name": "PartyType", "values": ["Proposer"]},
            {"name": "AgreementType", "values": ["PurchaseAgreement"]},
            {"name": "ResourceIdentifier", "values": ["exampleprod1"]},
        ])
        ids = {s["agreementId"]: s for s in out["agreementViewSummaries"]}
        active = self.agreement_id(BUYER_ACCOUNT, "exampleprod1")
        cancelled = self.agreement_id("123456789012", "exampleprod1")
        self.assertEqual(set(ids), {active, cancelled})
        self.assertEqual(ids[cancelled]["status"], "CANCELLED")
        self.assertIn("endTime", ids[cancelled])
        self.assertNotIn("endTime", ids[active])
        # Every agreement of the seller, a page at a time, equals one page of all.
        flt = [{"name": "PartyType", "values": ["Proposer"]}]
        whole = [s["agreementId"] for s in c.search_agreements(filters=flt)["agreementViewSummaries"]]
        paged = [s["agreementId"] for p in c.get_paginator("search_agreements").paginate(
            filters=flt, PaginationConfig={"PageSize": 2}) for s in p["agreementViewSummaries"]]
        self.assertEqual(paged, whole)
        self.assertEqual(len(whole), len(self.admin_subscriptions(limit=1000)) - self.other_sellers_subscriptions())

    def other_sellers_subscriptions(self):
        return len(self.admin_subscriptions(product_code="otherprod1"))

    def test_search_needs_party_type(self):
        with self.assertRaises(ClientError) as cm:
            self.client().search_agreements(filters=[{"name": "AgreementType", "values": ["PurchaseAgreement"]}])
        self.assertClientError(cm, "ValidationException")
        self.assertEqual(cm.exception.response["reason"], "MISSING_PARTY_TYPE")

    def test_model_validation_unvalidated_client(self):
        with self.assertRaises(ClientError) as cm:
            self.client(validate=False).get_agreement_terms(agreementId="agmt-x", maxResults=51)
        self.assertClientError(cm, "ValidationException", message="maxResults")
        self.assertEqual(cm.exception.response["reason"], "INVALID_MAX_RESULTS")
        self.assertEqual(cm.exception.response["fields"][0]["name"], "maxResults")

    def test_region(self):
        with self.assertRaises(ClientError) as cm:
            self.client(region="eu-west-1").search_agreements(filters=[{"name": "PartyType", "values": ["Proposer"]}])
        self.assertClientError(cm, "DisabledApiException")

    def test_endpoint_from_environment(self):
        """AWS_ENDPOINT_URL_MARKETPLACE_AGREEMENT points an unchanged client at mpmeter."""
        env = dict(os.environ, AWS_ENDPOINT_URL_MARKETPLACE_AGREEMENT=self.server.endpoint,
                   AWS_ACCESS_KEY_ID=SELLER_KEY, AWS_SECRET_ACCESS_KEY=SELLER_SECRET, AWS_DEFAULT_REGION=REGION)
        env.pop("AWS_ENDPOINT_URL", None)
        code = ("import boto3; c = boto3.client('marketplace-agreement'); "
                "print(len(c.search_agreements(filters=[{'name': 'PartyType', 'values': ['Proposer']}])['agreementViewSummaries']))")
        out = subprocess.run(["python3", "-c", code], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertGreater(int(out.stdout.strip()), 0)


if __name__ == "__main__":
    unittest.main()
