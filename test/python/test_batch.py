"""BatchMeterUsage through boto3: the seller meters its SaaS product."""

import re
import unittest

from botocore.exceptions import ClientError, ParamValidationError

from mpmeter_server import (
    BUYER_ACCOUNT, BUYER_KEY, BUYER_SECRET, CANCELLED_ACCOUNT, CANCELLED_CUSTOMER, CUSTOMER,
    CUSTOMER_LICENSE, AMI_PRODUCT, OTHER_PRODUCT, OTHER_SELLER_KEY, OTHER_SELLER_SECRET, SAAS_PRODUCT,
    SELLER_KEY, SELLER_SECRET, ServerTestCase, hours_ago, model_has_members, now, record, UUID_RE,
)

HAS_ACCOUNT_ID = model_has_members("UsageRecord", "CustomerAWSAccountId")
HAS_LICENSE_ARN = model_has_members("UsageRecord", "LicenseArn")
NO_ACCOUNT_ID = "the installed botocore model's UsageRecord has no CustomerAWSAccountId"
NO_LICENSE_ARN = "the installed botocore model's UsageRecord has no LicenseArn"


def assertValidationFormat(test, msg):
    """AWS JSON services' format: "N validation error(s) detected: " and N
    messages joined by "; ", each about a camelCase member path."""
    m = re.match(r"^(\d+) validation errors? detected: (.*)$", msg, re.S)
    test.assertIsNotNone(m, msg)
    n, parts = int(m.group(1)), m.group(2).split("; Value ")
    test.assertEqual(len(parts), n, msg)
    test.assertEqual("errors" if n > 1 else "error", msg.split()[2])
    for p in parts:
        test.assertRegex(p, r"at '[a-z][A-Za-z0-9.]*' failed to satisfy constraint: Member must", msg)


class BatchMeterUsageTest(ServerTestCase):
    """Success, idempotent retry, DuplicateRecord, CustomerNotSubscribed and the
    newer record forms. Each test uses its own usage hour so that they do not
    share deduplication slots on the class's server."""

    def test_success_retry_and_duplicate(self):
        c = self.seller()
        ts = hours_ago(1)
        req = dict(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 3, ts),
                                                          record(CUSTOMER, "gigabytes", 10, ts)])
        out = self.assertOK(c.batch_meter_usage(**req))
        self.assertEqual(out["UnprocessedRecords"], [])
        self.assertEqual(len(out["Results"]), 2)
        ids = []
        for sent, res in zip(req["UsageRecords"], out["Results"]):
            self.assertEqual(res["Status"], "Success")
            self.assertRegex(res["MeteringRecordId"], UUID_RE)
            echo = res["UsageRecord"]
            self.assertEqual(echo["CustomerIdentifier"], CUSTOMER)
            self.assertEqual(echo["Dimension"], sent["Dimension"])
            self.assertEqual(echo["Quantity"], sent["Quantity"])
            self.assertEqual(echo["Timestamp"], ts)  # parsed back from epoch seconds
            ids.append(res["MeteringRecordId"])
        self.assertNotEqual(ids[0], ids[1], "two records got one id")

        # The identical request again: Success with the original ids.
        again = self.assertOK(c.batch_meter_usage(**req))
        self.assertEqual([r["Status"] for r in again["Results"]], ["Success", "Success"])
        self.assertEqual([r["MeteringRecordId"] for r in again["Results"]], ids)

        # The same quantity later in the same hour is still the same record.
        same_hour = ts.replace(minute=59, second=0)
        if same_hour > now():
            same_hour = ts.replace(minute=0, second=0)
        later = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 3, same_hour)])
        self.assertEqual(later["Results"][0]["Status"], "Success")
        self.assertEqual(later["Results"][0]["MeteringRecordId"], ids[0])

        # Another quantity for that customer, dimension and hour.
        dup = self.assertOK(c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 4, ts)]))
        self.assertEqual(dup["Results"][0]["Status"], "DuplicateRecord")
        self.assertNotIn("MeteringRecordId", dup["Results"][0])
        self.assertEqual(dup["UnprocessedRecords"], [])

    def test_customer_not_subscribed(self):
        ts = hours_ago(2)
        out = self.assertOK(self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[
            record(CANCELLED_CUSTOMER, "users", 1, ts),
            record(CUSTOMER, "users", 1, ts),
        ]))
        res = out["Results"]
        self.assertEqual([r["Status"] for r in res], ["CustomerNotSubscribed", "Success"])
        self.assertNotIn("MeteringRecordId", res[0])
        self.assertEqual(res[0]["UsageRecord"]["CustomerIdentifier"], CANCELLED_CUSTOMER)
        self.assertRegex(res[1]["MeteringRecordId"], UUID_RE)

    @unittest.skipUnless(HAS_ACCOUNT_ID, NO_ACCOUNT_ID)
    def test_customer_aws_account_id_form(self):
        c = self.seller()
        ts = hours_ago(3)
        by_id = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 7, ts)])
        self.assertEqual(by_id["Results"][0]["Status"], "Success")
        by_account = self.assertOK(c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[
            {"CustomerAWSAccountId": BUYER_ACCOUNT, "Dimension": "users", "Quantity": 7, "Timestamp": ts}]))
        res = by_account["Results"][0]
        self.assertEqual(res["Status"], "Success")
        self.assertEqual(res["UsageRecord"]["CustomerAWSAccountId"], BUYER_ACCOUNT)
        self.assertNotIn("CustomerIdentifier", res["UsageRecord"])
        # Named by account, it is the same agreement and so the same slot.
        self.assertEqual(res["MeteringRecordId"], by_id["Results"][0]["MeteringRecordId"])
        # The cancelled buyer by account id: not subscribed, not an error.
        cancelled = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[
            {"CustomerAWSAccountId": CANCELLED_ACCOUNT, "Dimension": "users", "Quantity": 1, "Timestamp": ts}])
        self.assertEqual(cancelled["Results"][0]["Status"], "CustomerNotSubscribed")

    @unittest.skipUnless(HAS_ACCOUNT_ID and HAS_LICENSE_ARN, NO_LICENSE_ARN + " or CustomerAWSAccountId")
    def test_license_arn_form_without_product_code(self):
        ts = hours_ago(4)
        out = self.assertOK(self.seller().batch_meter_usage(UsageRecords=[{
            "CustomerAWSAccountId": BUYER_ACCOUNT, "LicenseArn": CUSTOMER_LICENSE,
            "Dimension": "gigabytes", "Quantity": 5, "Timestamp": ts}]))
        res = out["Results"][0]
        self.assertEqual(res["Status"], "Success")
        self.assertRegex(res["MeteringRecordId"], UUID_RE)
        self.assertEqual(res["UsageRecord"]["LicenseArn"], CUSTOMER_LICENSE)
        self.assertEqual(res["UsageRecord"]["CustomerAWSAccountId"], BUYER_ACCOUNT)

    def test_empty_batch(self):
        out = self.assertOK(self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[]))
        self.assertEqual(out["Results"], [])
        self.assertEqual(out["UnprocessedRecords"], [])


class BatchMeterUsageErrorsTest(ServerTestCase):
    """Whole-request errors. Every failing batch starts with a good record; at
    the end that record is metered with another quantity and must succeed,
    which shows that no failed batch stored it."""

    def test_whole_request_errors_store_nothing(self):
        c = self.seller()
        buyer = self.server.client(BUYER_KEY, BUYER_SECRET)
        ts = hours_ago(1)
        good = record(CUSTOMER, "users", 1, ts)
        cases = [
            ("unknown product", c, "nosuchproduct", good, "InvalidProductCodeException"),
            ("another seller's product", c, OTHER_PRODUCT, good, "InvalidProductCodeException"),
            ("not a SaaS product", c, AMI_PRODUCT, good, "InvalidProductCodeException"),
            ("the buyer meters", buyer, SAAS_PRODUCT, good, "InvalidProductCodeException"),
            ("unknown dimension", c, SAAS_PRODUCT, record(CUSTOMER, "cpus", 1, ts), "InvalidUsageDimensionException"),
            ("unknown customer", c, SAAS_PRODUCT, record("cust-nobody", "users", 1, ts), "InvalidCustomerIdentifierException"),
            ("7 hours ago", c, SAAS_PRODUCT, record(CUSTOMER, "users", 1, hours_ago(7)), "TimestampOutOfBoundsException"),
            ("20 minutes ahead", c, SAAS_PRODUCT, record(CUSTOMER, "users", 1, hours_ago(0, minutes=-20)), "TimestampOutOfBoundsException"),
            ("allocations do not sum", c, SAAS_PRODUCT, record(CUSTOMER, "users", 5, ts, UsageAllocations=[
                {"AllocatedUsageQuantity": 2},
                {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "team", "Value": "a"}]}]), "InvalidUsageAllocationsException"),
            ("same tag set twice", c, SAAS_PRODUCT, record(CUSTOMER, "users", 4, ts, UsageAllocations=[
                {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "team", "Value": "a"}]},
                {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "team", "Value": "a"}]}]), "InvalidUsageAllocationsException"),
            ("duplicate tag key in one allocation", c, SAAS_PRODUCT, record(CUSTOMER, "users", 2, ts, UsageAllocations=[
                {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "b"}]}]),
             "InvalidTagException"),
        ]
        if HAS_ACCOUNT_ID:
            cases.append(("both CustomerIdentifier and CustomerAWSAccountId", c, SAAS_PRODUCT,
                          record(CUSTOMER, "users", 1, ts, CustomerAWSAccountId=BUYER_ACCOUNT), "ValidationException"))
        if HAS_ACCOUNT_ID and HAS_LICENSE_ARN:
            cases += [
                ("unknown license", c, SAAS_PRODUCT, {"CustomerAWSAccountId": BUYER_ACCOUNT, "Dimension": "users", "Quantity": 1,
                                                      "Timestamp": ts, "LicenseArn": "arn:aws:license-manager::444455556666:license/l-ffffffffffffffff"},
                 "InvalidLicenseException"),
                ("license of another account", c, SAAS_PRODUCT, {"CustomerAWSAccountId": CANCELLED_ACCOUNT, "Dimension": "users",
                                                                 "Quantity": 1, "Timestamp": ts, "LicenseArn": CUSTOMER_LICENSE},
                 "InvalidLicenseException"),
                ("license of another customer identifier", c, SAAS_PRODUCT,
                 record(CANCELLED_CUSTOMER, "users", 1, ts, LicenseArn=CUSTOMER_LICENSE), "InvalidLicenseException"),
            ]
        for name, client, product, bad, code in cases:
            with self.subTest(name):
                with self.assertRaises(ClientError) as cm:
                    client.batch_meter_usage(ProductCode=product, UsageRecords=[good, bad])
                self.assertClientError(cm, code, 400)

        out = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 2, ts)])
        self.assertEqual(out["Results"][0]["Status"], "Success",
                         "a failed batch stored its good record (the slot is taken)")

    def test_product_error_message(self):
        with self.assertRaises(ClientError) as cm:
            self.seller().batch_meter_usage(ProductCode=OTHER_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 1, hours_ago(0))])
        # Another seller's product must look exactly like an unknown one.
        msg = self.assertClientError(cm, "InvalidProductCodeException")
        with self.assertRaises(ClientError) as cm2:
            self.seller().batch_meter_usage(ProductCode="nosuchproduct", UsageRecords=[record(CUSTOMER, "users", 1, hours_ago(0))])
        self.assertEqual(self.assertClientError(cm2, "InvalidProductCodeException"), msg)

    def test_timestamp_message(self):
        with self.assertRaises(ClientError) as cm:
            self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 1, hours_ago(7))])
        self.assertClientError(cm, "TimestampOutOfBoundsException", 400, "out of the allowed range")

    def test_validation_26_records(self):
        ts = hours_ago(0)
        recs = [record(CUSTOMER, "users", i, ts) for i in range(26)]
        # Note: botocore 1.43 does not enforce list maximums client-side (only
        # minimums), so even a validating client sends all 26; the server has
        # to refuse them. Both clients are checked.
        for validate in (False, True):
            with self.subTest(parameter_validation=validate):
                with self.assertRaises(ClientError) as cm:
                    self.seller(validate=validate).batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=recs)
                msg = self.assertClientError(cm, "ValidationException", 400,
                                             "at 'usageRecords' failed to satisfy constraint: "
                                             "Member must have length less than or equal to 25")
                self.assertTrue(msg.startswith("1 validation error detected: Value '"), msg)

    def test_validation_empty_dimension(self):
        # botocore refuses an empty Dimension itself (min length 1)...
        with self.assertRaises(ParamValidationError):
            self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "", 1, hours_ago(0))])
        # ...so send it unvalidated.
        with self.assertRaises(ClientError) as cm:
            self.seller(validate=False).batch_meter_usage(
                ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "", 1, hours_ago(0))])
        msg = self.assertClientError(cm, "ValidationException", 400)
        self.assertIn("Value '' at 'usageRecords.1.member.dimension' failed to satisfy constraint: "
                      "Member must have length greater than or equal to 1", msg)
        assertValidationFormat(self, msg)

    def test_validation_negative_quantity_and_missing_records(self):
        with self.assertRaises(ClientError) as cm:
            self.seller(validate=False).batch_meter_usage(
                ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", -1, hours_ago(0))])
        self.assertClientError(cm, "ValidationException", 400,
                               "Value '-1' at 'usageRecords.1.member.quantity' failed to satisfy constraint: "
                               "Member must have value greater than or equal to 0")
        with self.assertRaises(ClientError) as cm:
            self.seller(validate=False).batch_meter_usage(ProductCode=SAAS_PRODUCT)
        self.assertClientError(cm, "ValidationException", 400,
                               "Value null at 'usageRecords' failed to satisfy constraint: Member must not be null")

    @unittest.skipUnless(HAS_ACCOUNT_ID, NO_ACCOUNT_ID)
    def test_validation_no_customer(self):
        with self.assertRaises(ClientError) as cm:
            self.seller().batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[
                {"Dimension": "users", "Quantity": 1, "Timestamp": hours_ago(0)}])
        self.assertClientError(cm, "ValidationException", 400, "usageRecords.1.member")

    def test_disabled_api_in_govcloud(self):
        c = self.server.client(SELLER_KEY, SELLER_SECRET, region="us-gov-west-1")
        with self.assertRaises(ClientError) as cm:
            c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[record(CUSTOMER, "users", 1, hours_ago(0))])
        self.assertClientError(cm, "DisabledApiException", 400)

    def test_unknown_access_key(self):
        c = self.server.client("AKIANOSUCHKEY0000001", "whatever")
        with self.assertRaises(ClientError) as cm:
            c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[])
        msg = self.assertClientError(cm, "UnrecognizedClientException", 403)
        self.assertEqual(msg, "The security token included in the request is invalid.")

    def test_wrong_secret(self):
        c = self.server.client(SELLER_KEY, "not-the-seller-secret")
        with self.assertRaises(ClientError) as cm:
            c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[])
        msg = self.assertClientError(cm, "InvalidSignatureException", 403)
        self.assertTrue(msg.startswith("The request signature we calculated does not match the signature you provided."), msg)


class ThrottlingTest(ServerTestCase):
    """--rate-limit 0.001 --rate-burst 1: one call per account and operation."""

    SERVER_ARGS = ("--rate-limit", "0.001", "--rate-burst", "1")

    def test_throttling(self):
        c = self.seller()
        self.assertOK(c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[]))
        with self.assertRaises(ClientError) as cm:
            c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[])
        self.assertClientError(cm, "ThrottlingException", 400)
        # Per operation: ResolveCustomer still has its own budget...
        out = self.assertOK(c.resolve_customer(RegistrationToken="demo-token-1"))
        self.assertEqual(out["CustomerIdentifier"], CUSTOMER)
        with self.assertRaises(ClientError) as cm:
            c.resolve_customer(RegistrationToken="demo-token-1")
        self.assertClientError(cm, "ThrottlingException", 400)
        # ...and per account: the other seller is not throttled by this one.
        other = self.server.client(OTHER_SELLER_KEY, OTHER_SELLER_SECRET)
        self.assertOK(other.batch_meter_usage(ProductCode=OTHER_PRODUCT, UsageRecords=[]))


if __name__ == "__main__":
    unittest.main()
