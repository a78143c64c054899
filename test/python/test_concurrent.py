"""Concurrent Agreements products through boto3: the demo's exampleca1, whose
buyer 444455556666 holds two agreements (seed/demo.yaml). Records name the
customer by CustomerAWSAccountId + LicenseArn; ResolveCustomer answers no
CustomerIdentifier."""

import unittest

from botocore.exceptions import ClientError

from mpmeter_server import (
    BUYER_ACCOUNT, CUSTOMER, CUSTOMER_LICENSE, SAAS_PRODUCT, ServerTestCase, UUID_RE, hours_ago, model_has_members,
)

CA_PRODUCT = "exampleca1"
CA_LICENSE_1 = "arn:aws:license-manager::444455556666:license/l-0ca1000000000001"
CA_LICENSE_2 = "arn:aws:license-manager::444455556666:license/l-0ca2000000000002"
TOKEN_CA_1, TOKEN_CA_2 = "demo-token-ca-1", "demo-token-ca-2"

HAS_NEW_MEMBERS = model_has_members("UsageRecord", "CustomerAWSAccountId", "LicenseArn")


def ca_record(license_arn, dimension, quantity, ts, account=BUYER_ACCOUNT):
    r = {"CustomerAWSAccountId": account, "Dimension": dimension, "Quantity": quantity, "Timestamp": ts}
    if license_arn:
        r["LicenseArn"] = license_arn
    return r


@unittest.skipUnless(HAS_NEW_MEMBERS, "the installed botocore model's UsageRecord lacks CustomerAWSAccountId/LicenseArn")
class ConcurrentAgreementsTest(ServerTestCase):
    """Each test meters its own usage hour: the class shares one server."""

    def test_resolve_customer_names_one_agreement(self):
        for token, license_arn in ((TOKEN_CA_1, CA_LICENSE_1), (TOKEN_CA_2, CA_LICENSE_2)):
            out = self.assertOK(self.seller().resolve_customer(RegistrationToken=token))
            self.assertNotIn("CustomerIdentifier", out, "CustomerIdentifier is not populated for concurrent agreements")
            self.assertEqual(out["CustomerAWSAccountId"], BUYER_ACCOUNT)
            self.assertEqual(out["LicenseArn"], license_arn)
            self.assertEqual(out["ProductCode"], CA_PRODUCT)
        # An existing product keeps its CustomerIdentifier.
        out = self.seller().resolve_customer(RegistrationToken="demo-token-1")
        self.assertEqual(out["CustomerIdentifier"], CUSTOMER)

    def test_two_agreements_are_two_slots(self):
        c = self.seller()
        ts = hours_ago(1)
        # LicenseArn instead of ProductCode, as AWS's new integration meters.
        recs = [ca_record(CA_LICENSE_1, "users", 3, ts), ca_record(CA_LICENSE_2, "users", 5, ts)]
        out = self.assertOK(c.batch_meter_usage(UsageRecords=recs))
        self.assertEqual(out["UnprocessedRecords"], [])
        statuses = [r["Status"] for r in out["Results"]]
        self.assertEqual(statuses, ["Success", "Success"])
        ids = [r["MeteringRecordId"] for r in out["Results"]]
        for i in ids:
            self.assertRegex(i, UUID_RE)
        self.assertNotEqual(ids[0], ids[1], "two agreements share a dedup slot")
        self.assertEqual([r["UsageRecord"]["LicenseArn"] for r in out["Results"]], [CA_LICENSE_1, CA_LICENSE_2])

        # With ProductCode too it is the same slot: the same records answer
        # the original ids; another quantity on one agreement is a duplicate
        # there only.
        again = c.batch_meter_usage(ProductCode=CA_PRODUCT, UsageRecords=[
            ca_record(CA_LICENSE_1, "users", 3, ts), ca_record(CA_LICENSE_2, "users", 6, ts)])
        self.assertEqual(again["Results"][0]["Status"], "Success")
        self.assertEqual(again["Results"][0]["MeteringRecordId"], ids[0])
        self.assertEqual(again["Results"][1]["Status"], "DuplicateRecord")
        self.assertNotIn("MeteringRecordId", again["Results"][1])

    def test_customer_identifier_is_invalid(self):
        with self.assertRaises(ClientError) as cm:
            self.seller().batch_meter_usage(ProductCode=CA_PRODUCT, UsageRecords=[
                {"CustomerIdentifier": CUSTOMER, "Dimension": "users", "Quantity": 1, "Timestamp": hours_ago(2)}])
        self.assertClientError(cm, "InvalidCustomerIdentifierException", 400, message="concurrent agreements")

    def test_record_without_license_arn_is_invalid(self):
        ts = hours_ago(3)
        with self.assertRaises(ClientError) as cm:
            self.seller().batch_meter_usage(ProductCode=CA_PRODUCT, UsageRecords=[
                ca_record(CA_LICENSE_1, "users", 1, ts), ca_record(None, "gigabytes", 1, ts)])
        self.assertClientError(cm, "InvalidLicenseException", 400)
        # The whole batch failed: the good record is still unmetered, so
        # another quantity for it is accepted.
        out = self.seller().batch_meter_usage(UsageRecords=[ca_record(CA_LICENSE_1, "users", 2, ts)])
        self.assertEqual(out["Results"][0]["Status"], "Success")

    def test_license_of_another_product_or_account(self):
        ts = hours_ago(4)
        for rec in (ca_record(CUSTOMER_LICENSE, "users", 1, ts), ca_record(CA_LICENSE_1, "users", 1, ts, account="123456789012")):
            with self.assertRaises(ClientError) as cm:
                self.seller().batch_meter_usage(ProductCode=CA_PRODUCT, UsageRecords=[rec])
            self.assertClientError(cm, "InvalidLicenseException", 400)

    def test_existing_product_keeps_its_rules(self):
        # exampleprod1 has no concurrent agreements: an account id without a
        # LicenseArn is still its buyer's agreement.
        out = self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[ca_record(None, "users", 1, hours_ago(5))])
        self.assertEqual(out["Results"][0]["Status"], "Success")


if __name__ == "__main__":
    unittest.main()
