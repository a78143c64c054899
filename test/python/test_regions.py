"""Regions through boto3: the operations' regions (the API reference's lists
and today's SDK endpoint data), DisabledApiException outside them, and
--regions for regions that appear later."""

import unittest

from botocore.exceptions import ClientError

from mpmeter_server import (
    CUSTOMER, SAAS_PRODUCT, SELLER_KEY, SELLER_SECRET, TOKEN, ServerTestCase, hours_ago, record,
)


def batch(client, ts):
    return client.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 1, ts)])


class RegionsTest(ServerTestCase):

    def test_endpoint_data_regions(self):
        # Listed for the service by botocore's endpoints.json, not by the
        # April 2024 API reference: the sovereign-cloud SaaS sample's region.
        for region in ("eusc-de-east-1", "us-isob-east-1", "cn-northwest-1"):
            with self.subTest(region):
                c = self.server.client(SELLER_KEY, SELLER_SECRET, region=region)
                self.assertEqual(self.assertOK(c.resolve_customer(RegistrationToken=TOKEN))["CustomerIdentifier"], CUSTOMER)
                self.assertEqual(self.assertOK(batch(c, hours_ago(1)))["Results"][0]["Status"], "Success")

    def test_disabled(self):
        for region in ("us-gov-west-1", "us-isob-west-1", "eu-future-1"):
            with self.subTest(region):
                with self.assertRaises(ClientError) as cm:
                    batch(self.server.client(SELLER_KEY, SELLER_SECRET, region=region), hours_ago(1))
                self.assertClientError(cm, "DisabledApiException", 400)


class ExtraRegionsTest(ServerTestCase):
    SERVER_ARGS = ("--regions", "eu-future-1,ResolveCustomer=eu-later-2")

    def test_added_regions(self):
        c = self.server.client(SELLER_KEY, SELLER_SECRET, region="eu-future-1")
        self.assertEqual(self.assertOK(batch(c, hours_ago(2)))["Results"][0]["Status"], "Success")
        later = self.server.client(SELLER_KEY, SELLER_SECRET, region="eu-later-2")
        self.assertOK(later.resolve_customer(RegistrationToken=TOKEN))
        # Only ResolveCustomer was added there.
        with self.assertRaises(ClientError) as cm:
            batch(later, hours_ago(2))
        self.assertClientError(cm, "DisabledApiException", 400)


if __name__ == "__main__":
    unittest.main()
