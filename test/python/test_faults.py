"""Fault injection against botocore's real retry modes (docs/retries.md).

A rule added through the admin API faults the next calls; botocore's
standard, adaptive and legacy modes retry them, and the server counts every
attempt (mpmeter_requests_total) and every record stored
(mpmeter_records_total{outcome="accepted"}). The calls are MeterUsage from
the demo's AgentCore runtime, whose every call is its own record (no hourly
dedup): a faulted attempt that stored anything would show up as a second
record.
"""

import json
import re
import time
import unittest
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from mpmeter_server import (AGENT_KEY, AGENT_SECRET, CONTAINER_PRODUCT, CUSTOMER, SAAS_PRODUCT, SERVICE,
                            ServerTestCase, hours_ago, record)

ADMIN_TOKEN = "python-faults-token"
METRIC_LINE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


class FaultsTest(ServerTestCase):

    SERVER_ARGS = ("--admin-token", ADMIN_TOKEN, "--metrics-on-api")

    # --- helpers ------------------------------------------------------------

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server.endpoint + "/admin/v1" + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + ADMIN_TOKEN)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        return status, (json.loads(raw) if raw else None)

    def add_fault(self, **rule):
        status, body = self.admin("POST", "/faults", rule)
        self.assertEqual(status, 201, body)
        return body

    def metric(self, name, **labels):
        """The sum of the series of name whose labels include labels."""
        status, _, body = self.server.get("/metrics")
        self.assertEqual(status, 200)
        total = 0.0
        for line in body.decode().splitlines():
            m = METRIC_LINE.match(line)
            if not m or m.group(1) != name:
                continue
            have = dict(kv.split("=", 1) for kv in re.findall(r'\w+="[^"]*"', m.group(2)))
            if all(have.get(k) == '"%s"' % v for k, v in labels.items()):
                total += float(m.group(3))
        return total

    def attempts_seen(self):
        return self.metric("mpmeter_requests_total", operation="MeterUsage")

    def accepted(self):
        return self.metric("mpmeter_records_total", operation="MeterUsage", outcome="accepted")

    def agent(self, mode, total_max_attempts=None):
        # botocore's retries "max_attempts" counts retries (1 is two
        # attempts); "total_max_attempts" counts attempts.
        retries = {"mode": mode}
        if total_max_attempts is not None:
            retries["total_max_attempts"] = total_max_attempts
        return boto3.client(SERVICE, endpoint_url=self.server.endpoint, region_name="us-east-1",
                            aws_access_key_id=AGENT_KEY, aws_secret_access_key=AGENT_SECRET,
                            config=Config(retries=retries))

    def meter(self, client):
        return client.meter_usage(ProductCode=CONTAINER_PRODUCT, Timestamp=hours_ago(0), UsageDimension="requests", UsageQuantity=1)

    def setUp(self):
        self.assertEqual(self.admin("DELETE", "/faults")[0], 200)

    # --- retry modes --------------------------------------------------------

    def run_case(self, mode, kind, count):
        """Faults the next count MeterUsage calls with kind and meters once
        with the mode; returns (client attempts, server attempts, records
        stored, the error or None)."""
        rule = self.add_fault(operation="MeterUsage", kind=kind, count=count)
        before_attempts, before_records = self.attempts_seen(), self.accepted()
        err, client_attempts = None, None
        try:
            resp = self.meter(self.agent(mode))
            client_attempts = resp["ResponseMetadata"]["RetryAttempts"] + 1
        except ClientError as e:
            err = e
            client_attempts = e.response["ResponseMetadata"].get("RetryAttempts", 0) + 1
        server_attempts = self.attempts_seen() - before_attempts
        stored = self.accepted() - before_records
        status, got = self.admin("GET", "/faults/" + rule["id"])
        self.assertEqual(status, 200)
        return client_attempts, server_attempts, stored, err, count - got["remaining"]

    def test_standard_and_adaptive_ride_out_two_faults(self):
        # Both modes: 3 attempts in all (max_attempts' default), throttling
        # and transient errors (500, 503, connection errors) retried.
        for mode in ("standard", "adaptive"):
            for kind in ("throttling", "internal_error", "service_unavailable", "drop_connection"):
                with self.subTest(mode=mode, kind=kind):
                    client, server, stored, err, faulted = self.run_case(mode, kind, 2)
                    self.assertIsNone(err)
                    self.assertEqual(faulted, 2)
                    self.assertEqual(client, 3)
                    self.assertEqual(server, 3)
                    self.assertEqual(stored, 1, "the record must be stored exactly once")
                    self.admin("DELETE", "/faults")

    def test_standard_gives_up_after_three_attempts(self):
        client, server, stored, err, faulted = self.run_case("standard", "throttling", 3)
        self.assertIsNotNone(err)
        self.assertClientError(err, "ThrottlingException", 400, "Rate exceeded")
        self.assertEqual((client, server, stored, faulted), (3, 3, 0, 3))
        # The next call, the count spent, goes through once.
        before = self.accepted()
        self.meter(self.agent("standard"))
        self.assertEqual(self.accepted() - before, 1)

    def test_legacy_retries_up_to_five_attempts(self):
        # Legacy mode: 5 attempts by default; ThrottlingException with HTTP
        # 400 is in its retry table, as are 500 and 503. Its backoff doubles
        # from up to 1 s, so fewer cases here.
        for kind in ("internal_error", "service_unavailable"):
            with self.subTest(kind=kind):
                client, server, stored, err, faulted = self.run_case("legacy", kind, 2)
                self.assertIsNone(err)
                self.assertEqual((client, server, stored, faulted), (3, 3, 1, 2))
                self.admin("DELETE", "/faults")
        client, server, stored, err, faulted = self.run_case("legacy", "throttling", 4)
        self.assertIsNone(err)
        self.assertEqual((client, server, stored, faulted), (5, 5, 1, 4))

    def test_max_attempts_one_sees_the_fault(self):
        self.add_fault(operation="MeterUsage", kind="service_unavailable", count=1)
        before = self.metric("mpmeter_faults_injected_total", kind="service_unavailable", operation="MeterUsage")
        with self.assertRaises(ClientError) as cm:
            self.meter(self.agent("standard", total_max_attempts=1))
        self.assertClientError(cm, "ServiceUnavailable", 503)
        self.assertEqual(self.metric("mpmeter_faults_injected_total", kind="service_unavailable", operation="MeterUsage") - before, 1)

    # --- unprocessed records, dry runs --------------------------------------

    def test_unprocessed_records_resent(self):
        self.add_fault(product_code=SAAS_PRODUCT, kind="unprocessed_records", count=2)
        c = self.seller()
        recs = [record(CUSTOMER, dim, q, hours_ago(h)) for q, (dim, h) in enumerate(
            [("users", 1), ("users", 2), ("gigabytes", 1), ("gigabytes", 2)], start=1)]
        out = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=recs)
        self.assertEqual(len(out["Results"]), 2)
        self.assertEqual([r["Quantity"] for r in out["UnprocessedRecords"]], [1, 2])
        again = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=out["UnprocessedRecords"])
        self.assertEqual(again["UnprocessedRecords"], [])
        self.assertEqual([r["Status"] for r in again["Results"]], ["Success", "Success"])
        # All four once: sending the whole batch again is four identical records.
        before = self.metric("mpmeter_records_total", operation="BatchMeterUsage", outcome="identical")
        final = c.batch_meter_usage(ProductCode=SAAS_PRODUCT, UsageRecords=recs)
        self.assertEqual(len(final["Results"]), 4)
        self.assertEqual(self.metric("mpmeter_records_total", operation="BatchMeterUsage", outcome="identical") - before, 4)

    def test_dry_run_is_faulted(self):
        self.add_fault(operation="MeterUsage", kind="throttling", count=1)
        c = self.agent("standard", total_max_attempts=1)
        with self.assertRaises(ClientError) as cm:
            c.meter_usage(ProductCode=CONTAINER_PRODUCT, Timestamp=hours_ago(0), UsageDimension="requests",
                          UsageQuantity=1, DryRun=True)
        self.assertClientError(cm, "ThrottlingException", 400)


if __name__ == "__main__":
    unittest.main()
