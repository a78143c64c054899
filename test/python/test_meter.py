"""MeterUsage through boto3: the buyer's workload meters an AMI product."""

import os
import tempfile
import unittest

from botocore.exceptions import ClientError

from mpmeter_server import (
    AGENT_KEY, AGENT_SECRET, AMI_PRODUCT, BUYER_KEY, BUYER_SECRET, CANCELLED_EC2_KEY, CANCELLED_EC2_SECRET,
    CONTAINER_PRODUCT, EC2_KEY, EC2_SECRET,
    SAAS_PRODUCT, SELLER_KEY, SELLER_SECRET, ServerTestCase, UUID_RE, hours_ago,
)


class MeterUsageTest(ServerTestCase):
    """Each stateful test uses its own usage hour (deduplication is per
    workload, product, dimension and hour)."""

    def ec2(self, **kw):
        return self.server.client(EC2_KEY, EC2_SECRET, **kw)

    def test_success_retry_and_duplicate(self):
        c = self.ec2()
        req = dict(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(1), UsageDimension="vcpu_hours", UsageQuantity=5)
        first = self.assertOK(c.meter_usage(**req))
        rid = first["MeteringRecordId"]
        self.assertRegex(rid, UUID_RE)
        again = self.assertOK(c.meter_usage(**req))
        self.assertEqual(again["MeteringRecordId"], rid)
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(**dict(req, UsageQuantity=6))
        self.assertClientError(cm, "DuplicateRequestException", 400)
        # Another dimension in that hour is its own record.
        other = self.assertOK(c.meter_usage(**dict(req, UsageDimension="requests", UsageQuantity=6)))
        self.assertNotEqual(other["MeteringRecordId"], rid)

    def test_client_token(self):
        c = self.ec2()
        req = dict(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(2), UsageDimension="requests", UsageQuantity=1,
                   ClientToken="py-ct-1")
        first = self.assertOK(c.meter_usage(**req))
        again = self.assertOK(c.meter_usage(**req))
        self.assertEqual(again["MeteringRecordId"], first["MeteringRecordId"])
        # The same token with another hour: no dedup slot clash, only the token's.
        other_hour = hours_ago(3)
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(**dict(req, Timestamp=other_hour))
        self.assertClientError(cm, "IdempotencyConflictException", 400)
        # The conflicting request stored nothing: that hour is still free.
        free = self.assertOK(c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=other_hour, UsageDimension="requests",
                                           UsageQuantity=9))
        self.assertNotEqual(free["MeteringRecordId"], first["MeteringRecordId"])

    def test_dry_run(self):
        c = self.ec2()
        ts = hours_ago(4)
        req = dict(ProductCode=AMI_PRODUCT, Timestamp=ts, UsageDimension="vcpu_hours")
        # Would succeed: 200 with MeteringRecordId "DryRunOperation", nothing stored.
        resp = self.assertOK(c.meter_usage(**req, UsageQuantity=1, DryRun=True))
        self.assertEqual(resp["MeteringRecordId"], "DryRunOperation")
        # Nothing was stored: another quantity for that hour is accepted.
        real = self.assertOK(c.meter_usage(**req, UsageQuantity=2, ClientToken="dry-run-token"))
        self.assertRegex(real["MeteringRecordId"], UUID_RE)
        # The stored record again would succeed; another quantity would be a duplicate.
        self.assertEqual(self.assertOK(c.meter_usage(**req, UsageQuantity=2, DryRun=True))["MeteringRecordId"],
                         "DryRunOperation")
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(**req, UsageQuantity=3, DryRun=True)
        self.assertClientError(cm, "DuplicateRequestException", 400)
        # The stored ClientToken reused with other parameters.
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(5), UsageDimension="vcpu_hours", UsageQuantity=3,
                          ClientToken="dry-run-token", DryRun=True)
        self.assertClientError(cm, "IdempotencyConflictException", 400)
        # A dry run that would fail answers the failure.
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=ts, UsageDimension="nope", UsageQuantity=1, DryRun=True)
        self.assertClientError(cm, "InvalidUsageDimensionException", 400)

    def test_invalid_endpoint_region(self):
        with self.assertRaises(ClientError) as cm:
            self.ec2(region="us-west-2").meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(0),
                                                     UsageDimension="vcpu_hours", UsageQuantity=1)
        self.assertClientError(cm, "InvalidEndpointRegionException", 400)

    def test_invalid_product_code(self):
        for product in (SAAS_PRODUCT, "nosuchproduct"):
            with self.subTest(product):
                with self.assertRaises(ClientError) as cm:
                    self.ec2().meter_usage(ProductCode=product, Timestamp=hours_ago(0), UsageDimension="users", UsageQuantity=1)
                self.assertClientError(cm, "InvalidProductCodeException", 400)

    def test_invalid_usage_dimension(self):
        with self.assertRaises(ClientError) as cm:
            self.ec2().meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(0), UsageDimension="users", UsageQuantity=1)
        self.assertClientError(cm, "InvalidUsageDimensionException", 400)

    def test_timestamp_out_of_bounds(self):
        for name, ts in (("7 hours ago", hours_ago(7)), ("20 minutes ahead", hours_ago(0, minutes=-20))):
            with self.subTest(name):
                with self.assertRaises(ClientError) as cm:
                    self.ec2().meter_usage(ProductCode=AMI_PRODUCT, Timestamp=ts, UsageDimension="vcpu_hours", UsageQuantity=1)
                self.assertClientError(cm, "TimestampOutOfBoundsException", 400)

    def test_allocation_errors(self):
        ts = hours_ago(5)
        with self.assertRaises(ClientError) as cm:
            self.ec2().meter_usage(ProductCode=AMI_PRODUCT, Timestamp=ts, UsageDimension="vcpu_hours", UsageQuantity=3,
                                   UsageAllocations=[{"AllocatedUsageQuantity": 1}])
        self.assertClientError(cm, "InvalidUsageAllocationsException", 400)
        with self.assertRaises(ClientError) as cm:
            self.ec2().meter_usage(ProductCode=AMI_PRODUCT, Timestamp=ts, UsageDimension="vcpu_hours", UsageQuantity=1,
                                   UsageAllocations=[{"AllocatedUsageQuantity": 1, "Tags": [
                                       {"Key": "k", "Value": "a"}, {"Key": "k", "Value": "b"}]}])
        self.assertClientError(cm, "InvalidTagException", 400)

    def test_not_a_workload(self):
        # A seller's or buyer's plain key is no workload.
        for key, secret in ((SELLER_KEY, SELLER_SECRET), (BUYER_KEY, BUYER_SECRET)):
            with self.subTest(key):
                c = self.server.client(key, secret)
                with self.assertRaises(ClientError) as cm:
                    c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(0), UsageDimension="vcpu_hours", UsageQuantity=1)
                self.assertClientError(cm, "AccessDeniedException", 400)

    def test_agentcore_each_call_is_a_record(self):
        c = self.server.client(AGENT_KEY, AGENT_SECRET)
        req = dict(ProductCode=CONTAINER_PRODUCT, Timestamp=hours_ago(1), UsageDimension="requests", UsageQuantity=2)
        a = self.assertOK(c.meter_usage(**req))["MeteringRecordId"]
        b = self.assertOK(c.meter_usage(**req))["MeteringRecordId"]
        self.assertNotEqual(a, b)

    def test_customer_not_entitled(self):
        # The demo's cancelled buyer 123456789012 has an EC2 workload key
        # (AKIAEXAMPLECANCEL001); demos before it was added had no workload
        # without an active subscription.
        c = self.server.client(CANCELLED_EC2_KEY, CANCELLED_EC2_SECRET)
        try:
            c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(0), UsageDimension="vcpu_hours", UsageQuantity=1)
        except ClientError as e:
            if e.response["Error"]["Code"] == "UnrecognizedClientException":
                self.skipTest("this build's demo has no workload key for a buyer without an active subscription "
                              "(AKIAEXAMPLECANCEL001 is unknown); see SeedFileNotEntitledTest")
            self.assertClientError(e, "CustomerNotEntitledException", 400)
        else:
            self.fail("a cancelled buyer's workload metered usage")


SEED_EC2_KEY, SEED_EC2_SECRET = "AKIACANCELLEDEC20001", "seed-ec2-secret"
SEED_ECS_KEY, SEED_ECS_SECRET = "AKIACANCELLEDECS0001", "seed-ecs-secret"

NOT_ENTITLED_SEED = """
accounts:
  - id: "111122223333"
    name: Example Seller
    access_keys:
      - {id: AKIAEXAMPLESELLER001, secret: seller-secret}
  - id: "123456789012"
    name: Cancelled Buyer
    access_keys:
      - id: %s
        secret: %s
        workload: {id: i-0fedcba9876543210, platform: ec2, region: us-east-1}
      - id: %s
        secret: %s
        workload: {id: "arn:aws:ecs:us-east-1:123456789012:task/demo/cancelled", platform: ecs, region: us-east-1}
products:
  - {code: exampleami1, seller: "111122223333", type: ami, dimensions: [vcpu_hours, requests]}
  - {code: examplecontainer1, seller: "111122223333", type: container, dimensions: [pods, requests]}
subscriptions:
  - {account: "123456789012", product: exampleami1, status: cancelled}
  - {account: "123456789012", product: examplecontainer1, status: expired}
""" % (SEED_EC2_KEY, SEED_EC2_SECRET, SEED_ECS_KEY, SEED_ECS_SECRET)


class SeedFileNotEntitledTest(ServerTestCase):
    """A seed file (--seed, not --demo) whose buyer has workloads but only a
    cancelled (AMI) or expired (container) subscription."""

    SERVER_DEMO = False

    @classmethod
    def setUpClass(cls):
        fd, cls.seed_path = tempfile.mkstemp(prefix="mpmeter-seed-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(NOT_ENTITLED_SEED)
        cls.SERVER_ARGS = ("--seed", cls.seed_path)
        try:
            super().setUpClass()
        finally:
            os.unlink(cls.seed_path)

    def test_meter_usage_customer_not_entitled(self):
        c = self.server.client(SEED_EC2_KEY, SEED_EC2_SECRET)
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(0), UsageDimension="vcpu_hours", UsageQuantity=1)
        self.assertClientError(cm, "CustomerNotEntitledException", 400)
        # DryRun checks entitlement too.
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(ProductCode=AMI_PRODUCT, Timestamp=hours_ago(0), UsageDimension="vcpu_hours", UsageQuantity=1,
                          DryRun=True)
        self.assertClientError(cm, "CustomerNotEntitledException", 400)

    def test_register_usage_customer_not_entitled(self):
        c = self.server.client(SEED_ECS_KEY, SEED_ECS_SECRET)
        with self.assertRaises(ClientError) as cm:
            c.register_usage(ProductCode=CONTAINER_PRODUCT, PublicKeyVersion=1)
        self.assertClientError(cm, "CustomerNotEntitledException", 400)


if __name__ == "__main__":
    unittest.main()
