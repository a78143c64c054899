"""--quotas aws: AWS's request quotas per account and region, through boto3."""

import concurrent.futures
import time
import unittest

from botocore.exceptions import ClientError

from mpmeter_server import (AMI_PRODUCT, EC2_KEY, EC2_SECRET, SAAS_PRODUCT, ServerTestCase, now)


class AWSQuotasTest(ServerTestCase):
    """BatchMeterUsage 10/s (burst 10, AWS's); MeterUsage overridden to a burst of 2 that never refills."""

    SERVER_ARGS = ("--quotas", "aws", "--quota", "MeterUsage=0.001:2")

    def test_batch_throttled_beyond_ten_a_second(self):
        # botocore with retries off (the client helper's max_attempts 1) sees
        # the ThrottlingException itself: 60 calls from 6 threads at once
        # cannot all fit in 10 per second plus the refill.
        def calls(_):
            c = self.seller()
            ok, throttled = 0, []
            for _ in range(10):
                try:
                    c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[])
                    ok += 1
                except ClientError as e:
                    throttled.append(e)
            return ok, throttled
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(calls, range(6)))
        elapsed = time.monotonic() - start
        ok = sum(r[0] for r in results)
        throttled = [e for r in results for e in r[1]]
        self.assertGreaterEqual(ok, 10)
        self.assertLessEqual(ok, 10 + 10 * elapsed + 1, f"{ok} granted in {elapsed:.2f}s")
        self.assertTrue(throttled, f"60 calls in {elapsed:.2f}s, none throttled")
        c = self.seller()
        for e in throttled:
            self.assertEqual(e.response["Error"]["Code"], "ThrottlingException")
            self.assertEqual(e.response["Error"]["Message"], "Rate exceeded")
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        # Per region: the same account in another region has its own budget
        # (DisabledApiException would mean the region is not offered; it is).
        west = self.server.client(region="us-west-2")
        west.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=[])
        # ResolveCustomer has no AWS quota.
        for _ in range(15):
            c.resolve_customer(RegistrationToken="demo-token-1")

    def test_dry_runs_count(self):
        c = self.server.client(EC2_KEY, EC2_SECRET)
        req = dict(ProductCode=AMI_PRODUCT, Timestamp=now().replace(microsecond=0), UsageDimension="vcpu_hours", UsageQuantity=1)
        for _ in range(2):
            self.assertEqual(c.meter_usage(**req, DryRun=True)["MeteringRecordId"], "DryRunOperation")
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(**req)
        self.assertClientError(cm, "ThrottlingException", 400)


if __name__ == "__main__":
    unittest.main()
