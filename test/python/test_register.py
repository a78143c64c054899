"""RegisterUsage through boto3: a paid container's launch check, and the JWT."""

import base64
import json
import time
import unittest
import uuid

from botocore.exceptions import ClientError

from mpmeter_server import (
    AMI_PRODUCT, CONTAINER_PRODUCT, EC2_KEY, EC2_SECRET, ECS_KEY, ECS_SECRET, EKS_KEY, EKS_SECRET,
    FARGATE_KEY, FARGATE_SECRET, CANCELLED_ECS_KEY, CANCELLED_ECS_SECRET, AGENT_KEY, AGENT_SECRET, SELLER_KEY, SELLER_SECRET,
    ServerTestCase,
)

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAVE_CRYPTOGRAPHY = False


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError("JWT %r does not have three parts" % token)
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), b64url_decode(parts[2]), parts


class RegisterUsageTest(ServerTestCase):

    def ecs(self, **kw):
        return self.server.client(ECS_KEY, ECS_SECRET, **kw)

    def register(self, client=None, nonce=None, version=1, product=CONTAINER_PRODUCT):
        kw = dict(ProductCode=product, PublicKeyVersion=version)
        if nonce is not None:
            kw["Nonce"] = nonce
        return (client or self.ecs()).register_usage(**kw)

    def test_signature_claims(self):
        nonce = str(uuid.uuid4())
        before = int(time.time())
        out = self.assertOK(self.register(nonce=nonce))
        after = int(time.time())
        self.assertNotIn("PublicKeyRotationTimestamp", out, "the current key version has no rotation timestamp")
        header, claims, sig, _ = jwt_parts(out["Signature"])
        self.assertEqual(header.get("alg"), "PS256")
        self.assertEqual(header.get("typ"), "JWT")
        self.assertEqual(claims["productCode"], CONTAINER_PRODUCT)
        self.assertIs(type(claims["publicKeyVersion"]), int)  # a JSON number, not "1"
        self.assertEqual(claims["publicKeyVersion"], 1)
        self.assertEqual(claims["nonce"], nonce)
        self.assertIsInstance(claims["iat"], int)
        self.assertTrue(before - 5 <= claims["iat"] <= after + 5, "iat %s not within [%s, %s]" % (claims["iat"], before, after))
        self.assertGreaterEqual(len(sig), 256, "an RSA signature of at least 2048 bits")

    def test_without_nonce(self):
        _, claims, _, _ = jwt_parts(self.register()["Signature"])
        self.assertNotIn("nonce", claims)
        self.assertEqual(claims["productCode"], CONTAINER_PRODUCT)

    def test_other_container_platforms(self):
        for key, secret in ((EKS_KEY, EKS_SECRET), (FARGATE_KEY, FARGATE_SECRET)):
            with self.subTest(key):
                out = self.assertOK(self.register(client=self.server.client(key, secret), nonce="n"))
                self.assertEqual(jwt_parts(out["Signature"])[1]["nonce"], "n")

    @unittest.skipUnless(HAVE_CRYPTOGRAPHY, "the cryptography package is not installed")
    def test_signature_verifies_with_public_key(self):
        status, headers, pem = self.server.get("/keys/public/1")
        self.assertEqual(status, 200)
        self.assertIn(b"-----BEGIN PUBLIC KEY-----", pem)
        key = serialization.load_pem_public_key(pem)
        self.assertIsInstance(key, rsa.RSAPublicKey)
        # The .pem spelling answers the same key.
        status, _, pem2 = self.server.get("/keys/public/1.pem")
        self.assertEqual((status, pem2), (200, pem))

        token = self.register(nonce="verify-me")["Signature"]
        _, _, sig, parts = jwt_parts(token)
        signed = (parts[0] + "." + parts[1]).encode("ascii")
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        key.verify(sig, signed, pss, hashes.SHA256())  # raises InvalidSignature on failure
        self.assertEqual(len(sig) * 8, key.key_size)

        # A changed payload must not verify (the check above is not vacuous).
        claims = json.loads(b64url_decode(parts[1]))
        claims["productCode"] = "someoneelse"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        with self.assertRaises(InvalidSignature):
            key.verify(sig, (parts[0] + "." + forged).encode(), pss, hashes.SHA256())

    def test_unknown_public_key_document(self):
        status, _, _ = self.server.get("/keys/public/99")
        self.assertEqual(status, 404)

    def test_platform_not_supported(self):
        for name, key, secret in (("EC2 workload", EC2_KEY, EC2_SECRET), ("AgentCore workload", AGENT_KEY, AGENT_SECRET),
                                  ("seller key, no workload", SELLER_KEY, SELLER_SECRET)):
            with self.subTest(name):
                with self.assertRaises(ClientError) as cm:
                    self.register(client=self.server.client(key, secret))
                self.assertClientError(cm, "PlatformNotSupportedException", 400)

    def test_invalid_region(self):
        with self.assertRaises(ClientError) as cm:
            self.register(client=self.ecs(region="us-west-2"))
        self.assertClientError(cm, "InvalidRegionException", 400)

    def test_invalid_product_code(self):
        for product in (AMI_PRODUCT, "nosuchproduct"):
            with self.subTest(product):
                with self.assertRaises(ClientError) as cm:
                    self.register(product=product)
                self.assertClientError(cm, "InvalidProductCodeException", 400)

    def test_invalid_public_key_version(self):
        with self.assertRaises(ClientError) as cm:
            self.register(version=99)
        self.assertClientError(cm, "InvalidPublicKeyVersionException", 400)

    def test_customer_not_entitled(self):
        # The demo's cancelled buyer has an ECS workload key (AKIAEXAMPLECANCEL002).
        try:
            self.register(client=self.server.client(CANCELLED_ECS_KEY, CANCELLED_ECS_SECRET))
        except ClientError as e:
            if e.response["Error"]["Code"] == "UnrecognizedClientException":
                self.skipTest("this build's demo has no ECS workload key for a buyer without an active subscription "
                              "(AKIAEXAMPLECANCEL002 is unknown); see test_meter.SeedFileNotEntitledTest")
            self.assertClientError(e, "CustomerNotEntitledException", 400)
        else:
            self.fail("a cancelled buyer's task registered")

    def test_disabled_region(self):
        # RegisterUsage is not offered in GovCloud.
        with self.assertRaises(ClientError) as cm:
            self.register(client=self.ecs(region="us-gov-west-1"))
        self.assertClientError(cm, "DisabledApiException", 400)


if __name__ == "__main__":
    unittest.main()
