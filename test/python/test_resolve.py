"""ResolveCustomer through boto3."""

import unittest

from botocore.exceptions import ClientError

from mpmeter_server import (
    BUYER_ACCOUNT, CANCELLED_ACCOUNT, CANCELLED_CUSTOMER, CUSTOMER, CUSTOMER_LICENSE, OTHER_PRODUCT, OTHER_SELLER_KEY, OTHER_SELLER_SECRET,
    SAAS_PRODUCT, SELLER_KEY, SELLER_SECRET, TOKEN, TOKEN_CANCELLED, TOKEN_EXPIRED, TOKEN_OTHER, ServerTestCase,
    botocore_model, hours_ago,
)

HAS_LICENSE_ARN = "LicenseArn" in botocore_model().operation_model("ResolveCustomer").output_shape.members


def fields(out):
    return {k: v for k, v in out.items() if k != "ResponseMetadata"}


class ResolveCustomerTest(ServerTestCase):

    def test_resolve_and_again(self):
        c = self.seller()
        out = self.assertOK(c.resolve_customer(RegistrationToken=TOKEN))
        self.assertEqual(out["CustomerIdentifier"], CUSTOMER)
        self.assertEqual(out["CustomerAWSAccountId"], BUYER_ACCOUNT)
        self.assertEqual(out["ProductCode"], SAAS_PRODUCT)
        if HAS_LICENSE_ARN:
            self.assertEqual(out["LicenseArn"], CUSTOMER_LICENSE)
        again = self.assertOK(c.resolve_customer(RegistrationToken=TOKEN))
        self.assertEqual(fields(again), fields(out))
        self.assertNotEqual(again["ResponseMetadata"]["RequestId"], out["ResponseMetadata"]["RequestId"])

    @unittest.skipUnless(HAS_LICENSE_ARN, "the installed botocore model's ResolveCustomerResult has no LicenseArn")
    def test_license_arn_present(self):
        out = self.seller().resolve_customer(RegistrationToken=TOKEN)
        self.assertEqual(out["LicenseArn"], CUSTOMER_LICENSE)

    def test_unknown_token(self):
        with self.assertRaises(ClientError) as cm:
            self.seller().resolve_customer(RegistrationToken="no-such-token")
        self.assertClientError(cm, "InvalidTokenException", 400)

    def test_other_sellers_token(self):
        # demo-token-other is for otherprod1, sold by 777788889999: for
        # seller 111122223333 it is no token at all.
        with self.assertRaises(ClientError) as cm:
            self.seller().resolve_customer(RegistrationToken=TOKEN_OTHER)
        msg = self.assertClientError(cm, "InvalidTokenException", 400)
        with self.assertRaises(ClientError) as cm:
            self.seller().resolve_customer(RegistrationToken="no-such-token")
        self.assertEqual(self.assertClientError(cm, "InvalidTokenException", 400), msg,
                         "another seller's token is distinguishable from a made-up one")
        # The other seller resolves its own token, and not ours.
        other = self.server.client(OTHER_SELLER_KEY, OTHER_SELLER_SECRET)
        out = self.assertOK(other.resolve_customer(RegistrationToken=TOKEN_OTHER))
        self.assertEqual(out["ProductCode"], OTHER_PRODUCT)
        self.assertEqual(out["CustomerAWSAccountId"], BUYER_ACCOUNT)
        with self.assertRaises(ClientError) as cm:
            other.resolve_customer(RegistrationToken=TOKEN)
        self.assertClientError(cm, "InvalidTokenException", 400)

    def test_expired_token(self):
        with self.assertRaises(ClientError) as cm:
            self.seller().resolve_customer(RegistrationToken=TOKEN_EXPIRED)
        self.assertClientError(cm, "ExpiredTokenException", 400)

    def test_cancelled_buyers_token_resolves(self):
        # The seller learns who the buyer is, and then that it is not
        # subscribed: metering it answers CustomerNotSubscribed.
        out = self.assertOK(self.seller().resolve_customer(RegistrationToken=TOKEN_CANCELLED))
        self.assertEqual(out["CustomerIdentifier"], CANCELLED_CUSTOMER)
        self.assertEqual(out["CustomerAWSAccountId"], CANCELLED_ACCOUNT)
        self.assertEqual(out["ProductCode"], SAAS_PRODUCT)
        res = self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[{
            "CustomerIdentifier": out["CustomerIdentifier"], "Dimension": "users", "Quantity": 1,
            "Timestamp": hours_ago(0)}])
        self.assertEqual(res["Results"][0]["Status"], "CustomerNotSubscribed")

    def test_disabled_api_in_govcloud(self):
        c = self.server.client(SELLER_KEY, SELLER_SECRET, region="us-gov-west-1")
        with self.assertRaises(ClientError) as cm:
            c.resolve_customer(RegistrationToken=TOKEN)
        self.assertClientError(cm, "DisabledApiException", 400)

    def test_empty_token_server_validation(self):
        with self.assertRaises(ClientError) as cm:
            self.seller(validate=False).resolve_customer(RegistrationToken="")
        self.assertClientError(cm, "ValidationException", 400, "at 'registrationToken' failed to satisfy constraint")


if __name__ == "__main__":
    unittest.main()
