"""Wire-level checks: replayed real captures (SigV4 skew and verification),
raw awsJson 1.1 requests signed with botocore's SigV4Auth, response headers."""

import datetime
import http.client
import json
import os
import subprocess
import time
import unittest

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mpmeter_server import (
    CUSTOMER, REGION, SAAS_PRODUCT, SELLER_KEY, SELLER_SECRET, SPEC, UUID_RE, Server, ServerTestCase, mpmeter_bin,
)

CAPTURES = os.path.join(SPEC, "captures", "sigv4-requests.jsonl")
JSON_11 = "application/x-amz-json-1.1"


def load_captures():
    with open(CAPTURES) as f:
        return [json.loads(line) for line in f if line.strip()]


def header(capture, name):
    for k, v in capture["headers"]:
        if k.lower() == name.lower():
            return v
    return None


def replay(server, capture, body=None):
    """Sends a captured request byte for byte (its own Host header included)
    on a new connection; returns (status, headers, decoded JSON body)."""
    body = (capture["body"] if body is None else body).encode("utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(capture["method"], capture["path"], skip_host=True, skip_accept_encoding=True)
        for k, v in capture["headers"]:
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        raw = r.read()
        return r.status, r.headers, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def raw_call(server, target, body, key=SELLER_KEY, secret=SELLER_SECRET, region=REGION, service="aws-marketplace",
             content_type=JSON_11, sign=True):
    """POSTs body to the server as an awsJson 1.1 call, signed by botocore."""
    url = server.endpoint + "/"
    headers = {"Content-Type": content_type, "X-Amz-Target": "AWSMPMeteringService." + target}
    req = AWSRequest(method="POST", url=url, data=body.encode("utf-8"), headers=headers)
    if sign:
        SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
    prepared = req.prepare()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/", body=prepared.body, headers=dict(prepared.headers.items()))
        r = conn.getresponse()
        raw = r.read()
        return r.status, r.headers, (json.loads(raw) if raw else None)
    finally:
        conn.close()


@unittest.skipUnless(os.path.exists(CAPTURES), "no captures at " + CAPTURES)
class CaptureReplayTest(ServerTestCase):
    """The captures were signed on 2026-11-24 with the seller's key."""

    def test_replays_are_rejected_as_expired(self):
        captures = load_captures()
        self.assertGreaterEqual(len(captures), 1)
        for cap in captures:
            amz_date = header(cap, "X-Amz-Date")
            signed = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
            age = datetime.datetime.now(datetime.timezone.utc) - signed
            with self.subTest(target=header(cap, "X-Amz-Target"), ua=header(cap, "User-Agent")[:40]):
                if abs(age) <= datetime.timedelta(minutes=15):
                    self.skipTest("the capture is within the 15-minute skew window of the wall clock")
                status, headers, body = replay(self.server, cap)
                self.assertEqual(status, 403, body)
                self.assertEqual(body["__type"], "InvalidSignatureException")
                self.assertNotIn("code", body)
                self.assertTrue(body["message"].startswith("Signature expired: " + amz_date + " is now earlier than"),
                                body["message"])
                self.assertRegex(headers.get("x-amzn-RequestId", ""), UUID_RE)
                self.assertTrue(headers.get("Content-Type", "").startswith(JSON_11))


@unittest.skipUnless(os.path.exists(CAPTURES), "no captures at " + CAPTURES)
class CaptureVerifyTest(ServerTestCase):
    """With a skew window (and usage window) wide enough to cover the capture
    date, the same captures pass signature verification end to end: proof
    that the rejection above is the clock check and that real clients'
    signatures verify, whatever headers they chose to sign."""

    SERVER_ARGS = ("--max-skew", "87600h", "--usage-window", "87600h")

    @classmethod
    def setUpClass(cls):
        # However wide the window, a month's usage closes at 06:00 UTC on the
        # first of the next month: the service clock is set to the capture
        # date, as a test of old usage does.
        unittest.TestCase.setUpClass()
        cls.server = Server(*cls.SERVER_ARGS)
        cls.addClassCleanup(cls.server.stop)
        signed = min(header(cap, "X-Amz-Date") for cap in load_captures())
        at = datetime.datetime.strptime(signed, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%dT%H:%M:%SZ")
        subprocess.run([mpmeter_bin(), "clock", "set", at, "--db", cls.server.db], check=True, capture_output=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("MPMETER_") or k == "MPMETER_BIN"})
        cls.server.start()

    EXPECT = {
        # The seller's key: BatchMeterUsage and ResolveCustomer succeed;
        # MeterUsage and RegisterUsage need a workload, which the seller is not.
        "AWSMPMeteringService.BatchMeterUsage": (200, None),
        "AWSMPMeteringService.ResolveCustomer": (200, None),
        "AWSMPMeteringService.MeterUsage": (400, "AccessDeniedException"),
        "AWSMPMeteringService.RegisterUsage": (400, "PlatformNotSupportedException"),
    }

    def test_captures_verify(self):
        for cap in load_captures():
            target = header(cap, "X-Amz-Target")
            with self.subTest(target=target, ua=header(cap, "User-Agent")[:40]):
                status, _, body = replay(self.server, cap)
                want_status, want_code = self.EXPECT[target]
                self.assertEqual(status, want_status, body)
                if want_code:
                    self.assertEqual(body["__type"], want_code, body)
                elif target.endswith("ResolveCustomer"):
                    self.assertEqual(body["CustomerIdentifier"], CUSTOMER)
                else:
                    self.assertIn(body["Results"][0]["Status"], ("Success", "DuplicateRecord"), body)

    def test_tampered_body_is_rejected(self):
        for cap in load_captures():
            with self.subTest(target=header(cap, "X-Amz-Target"), ua=header(cap, "User-Agent")[:40]):
                # Same length, one character changed.
                i = cap["body"].index("1")
                tampered = cap["body"][:i] + "2" + cap["body"][i + 1:]
                status, _, body = replay(self.server, cap, body=tampered)
                self.assertEqual(status, 403, body)
                self.assertEqual(body["__type"], "InvalidSignatureException")
                self.assertTrue(body["message"].startswith("The request signature we calculated does not match"),
                                body["message"])


class RawProtocolTest(ServerTestCase):

    def assertError(self, result, status, code, message=None):
        got_status, headers, body = result
        self.assertEqual((got_status, body.get("__type")), (status, code), body)
        self.assertNotIn("code", body)
        self.assertIsInstance(body.get("message"), str)
        self.assertRegex(headers.get("x-amzn-RequestId", ""), UUID_RE)
        self.assertTrue(headers.get("Content-Type", "").startswith(JSON_11), headers.get("Content-Type"))
        if message is not None:
            self.assertIn(message, body["message"])

    def test_unsigned(self):
        self.assertError(raw_call(self.server, "ResolveCustomer", "{}", sign=False), 403, "MissingAuthenticationTokenException")

    def test_wrong_service_in_scope(self):
        self.assertError(raw_call(self.server, "ResolveCustomer", '{"RegistrationToken":"demo-token-1"}', service="s3"),
                         403, "InvalidSignatureException", "Credential should be scoped to correct service: 'aws-marketplace'.")

    def test_unknown_operation(self):
        self.assertError(raw_call(self.server, "DescribeEverything", "{}"), 400, "UnknownOperationException")

    def test_malformed_json_and_wrong_types(self):
        for name, target, body in (
                ("truncated", "ResolveCustomer", '{"RegistrationToken":'),
                ("number for string", "ResolveCustomer", '{"RegistrationToken":42}'),
                ("timestamp as string", "BatchMeterUsage",
                 '{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"cust-example-1",'
                 '"Dimension":"users","Timestamp":"2026-11-25T00:00:00Z"}]}')):
            with self.subTest(name):
                self.assertError(raw_call(self.server, target, body), 400, "SerializationException")

    def test_empty_body_is_empty_object(self):
        self.assertError(raw_call(self.server, "ResolveCustomer", ""), 400, "ValidationException", "registrationToken")

    def test_charset_suffix_and_fractional_timestamp(self):
        # JS v3 / aws-sdk-go v1 send fractional epoch seconds.
        ts = time.time() - 3600.75
        body = json.dumps({"ProductCode": SAAS_PRODUCT, "UsageRecords": [
            {"CustomerIdentifier": CUSTOMER, "Dimension": "gigabytes", "Quantity": 2, "Timestamp": ts}]})
        status, headers, out = raw_call(self.server, "BatchMeterUsage", body, content_type=JSON_11 + "; charset=utf-8")
        self.assertEqual(status, 200, out)
        self.assertEqual(out["Results"][0]["Status"], "Success")
        echoed = out["Results"][0]["UsageRecord"]["Timestamp"]
        self.assertIsInstance(echoed, (int, float), "response timestamps must be JSON numbers")
        self.assertAlmostEqual(echoed, ts, delta=1)
        self.assertRegex(headers.get("x-amzn-RequestId", ""), UUID_RE)
        self.assertEqual(headers.get("Content-Type"), JSON_11)
        self.assertIsNotNone(headers.get("Date"))
        self.assertIsNotNone(headers.get("Content-Length"))

    def test_success_headers_through_boto3(self):
        out = self.seller().resolve_customer(RegistrationToken="demo-token-1")
        h = out["ResponseMetadata"]["HTTPHeaders"]
        self.assertEqual(h.get("content-type"), JSON_11)
        self.assertRegex(h.get("x-amzn-requestid", ""), UUID_RE)
        self.assertIn("date", h)
        self.assertIn("content-length", h)

    def test_healthz(self):
        status, _, body = self.server.get("/healthz")
        self.assertEqual(status, 200)
        health = json.loads(body)
        self.assertEqual(health["status"], "ok")
        # The binary's build, as `mpmeter version --json` prints it.
        build = json.loads(subprocess.run([mpmeter_bin(), "version", "--json"], check=True,
                                          capture_output=True).stdout)
        for k in ("version", "commit", "date"):
            self.assertEqual(health[k], build[k], k)


if __name__ == "__main__":
    unittest.main()
