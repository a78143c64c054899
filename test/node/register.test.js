// RegisterUsage through the AWS SDK for JavaScript v3, called as a paid
// container at launch does, and the seller's side: verifying the returned
// JWT with the public key the server publishes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify, constants } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { RegisterUsageCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, wire, binaryPath } from './lib/harness.js';

const b64url = (s) => Buffer.from(s, 'base64url');
const decodePart = (s) => JSON.parse(b64url(s).toString('utf8'));

// verifyJWT checks a PS256 JWT's signature with a PEM public key the way a
// seller's container does: RSASSA-PSS, SHA-256, salt length 32.
function verifyJWT(jwt, pem) {
  const [h, p, s] = jwt.split('.');
  return verify('sha256', Buffer.from(`${h}.${p}`), {
    key: createPublicKey(pem),
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  }, b64url(s));
}

// publicKeyPEM fetches a public key version from the server, as a seller
// would to verify tokens.
async function publicKeyPEM(endpoint, version) {
  const res = await fetch(`${endpoint}/keys/public/${version}`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /keys/public/${version}: ${text}`);
  assert.equal(res.headers.get('content-type'), 'application/x-pem-file');
  return text;
}

describe('RegisterUsage', () => {
  let srv;
  let ecs;
  let pem;
  before(async () => {
    srv = await startServer();
    ecs = srv.client(demo.ecs);
    pem = await publicKeyPEM(srv.endpoint, 1);
  });
  after(() => srv?.stop());

  const register = (input, client = ecs) => client.send(new RegisterUsageCommand({ ProductCode: demo.containerProduct, PublicKeyVersion: 1, ...input }));

  it('publishes public key version 1 as PEM', async () => {
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/);
    const key = createPublicKey(pem);
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.ok(key.asymmetricKeyDetails.modulusLength >= 2048, `modulus ${key.asymmetricKeyDetails.modulusLength}`);
    const withExt = await fetch(`${srv.endpoint}/keys/public/1.pem`);
    assert.equal(withExt.status, 200);
    assert.equal(await withExt.text(), pem);
    const missing = await fetch(`${srv.endpoint}/keys/public/99`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const bad = await fetch(`${srv.endpoint}/keys/public/zero`);
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  it('answers a PS256 JWT that echoes the request and verifies with the published key', async () => {
    const nonce = `nonce-${process.pid}-${Date.now()}`;
    const client = srv.client(demo.ecs);
    const log = wire(client);
    const before = Math.floor(Date.now() / 1000);
    const out = await register({ Nonce: nonce }, client);
    const afterSec = Math.ceil(Date.now() / 1000);
    assert.equal(out.$metadata.httpStatusCode, 200);

    const parts = out.Signature.split('.');
    assert.equal(parts.length, 3, out.Signature);
    for (const p of parts) assert.match(p, /^[A-Za-z0-9_-]+$/, 'JWT parts are unpadded base64url');
    assert.deepEqual(decodePart(parts[0]), { alg: 'PS256', typ: 'JWT' });
    const claims = decodePart(parts[1]);
    assert.equal(claims.productCode, demo.containerProduct);
    assert.equal(claims.publicKeyVersion, 1); // strictly the number 1
    assert.equal(claims.nonce, nonce);
    assert.equal(typeof claims.iat, 'number');
    assert.ok(Number.isInteger(claims.iat));
    assert.ok(claims.iat >= before - 1 && claims.iat <= afterSec + 1, `iat ${claims.iat} not within [${before}, ${afterSec}]`);

    assert.equal(verifyJWT(out.Signature, pem), true, 'signature does not verify with /keys/public/1');
    // Verification can fail: a changed claim or signature does not verify.
    const forged = Buffer.from(JSON.stringify({ ...claims, nonce: 'other' })).toString('base64url');
    assert.equal(verifyJWT(`${parts[0]}.${forged}.${parts[2]}`, pem), false);
    const sig = b64url(parts[2]);
    sig[10] ^= 1;
    assert.equal(verifyJWT(`${parts[0]}.${parts[1]}.${sig.toString('base64url')}`, pem), false);

    // Timestamps in the response are JSON numbers (JS v3 fails on strings):
    // PublicKeyRotationTimestamp, when present, parsed into a Date.
    const body = JSON.parse(log.responseBody);
    assert.equal(body.Signature, out.Signature);
    if ('PublicKeyRotationTimestamp' in body) {
      assert.equal(typeof body.PublicKeyRotationTimestamp, 'number');
      assert.ok(out.PublicKeyRotationTimestamp instanceof Date);
    } else {
      // Version 1 is the current key of a fresh server: it has not rotated.
      assert.equal(out.PublicKeyRotationTimestamp, undefined);
    }
  });

  it('registers again (a restarted container) and without a Nonce', async () => {
    const first = await register({});
    const claims = decodePart(first.Signature.split('.')[1]);
    assert.equal(claims.productCode, demo.containerProduct);
    assert.equal(claims.publicKeyVersion, 1);
    assert.equal(claims.nonce, undefined);
    assert.equal(verifyJWT(first.Signature, pem), true);
    const second = await register({ Nonce: 'n2' });
    assert.equal(decodePart(second.Signature.split('.')[1]).nonce, 'n2');
    assert.equal(verifyJWT(second.Signature, pem), true);
  });

  it('EKS and Fargate workloads register too', async () => {
    for (const creds of [demo.eks, demo.fargate]) {
      const out = await register({ Nonce: 'x' }, srv.client(creds));
      assert.equal(verifyJWT(out.Signature, pem), true);
    }
  });

  it('an EC2 or AgentCore workload, or a plain key: PlatformNotSupportedException', async () => {
    for (const creds of [demo.ec2, demo.agent, demo.seller]) {
      const err = await rejectsWith(register({}, srv.client(creds)), 'PlatformNotSupportedException', 400);
      assert.match(err.message, /ECS|EKS|Fargate/);
    }
  });

  it('another region than the task: InvalidRegionException', async () => {
    const err = await rejectsWith(register({}, srv.client(demo.ecs, 'us-west-2')), 'InvalidRegionException', 400);
    assert.match(err.message, /us-west-2/);
  });

  it('a region without RegisterUsage: DisabledApiException', async () => {
    await rejectsWith(register({}, srv.client(demo.ecs, 'ap-south-2')), 'DisabledApiException', 400);
  });

  it('an unknown public key version: InvalidPublicKeyVersionException', async () => {
    const err = await rejectsWith(register({ PublicKeyVersion: 99 }), 'InvalidPublicKeyVersionException', 400);
    assert.match(err.message, /99/);
  });

  it('public key version 0: ValidationException', async () => {
    const err = await rejectsWith(register({ PublicKeyVersion: 0 }), 'ValidationException', 400);
    assert.ok(err.message.includes("Value '0' at 'publicKeyVersion' failed to satisfy constraint: Member must have value greater than or equal to 1"), err.message);
  });

  it('a product that is not a container product: InvalidProductCodeException', async () => {
    for (const code of [demo.amiProduct, demo.saasProduct, 'nosuchproduct']) {
      await rejectsWith(register({ ProductCode: code }), 'InvalidProductCodeException', 400);
    }
  });

  it('CustomerNotEntitledException for a buyer whose subscription is cancelled', async () => {
    await rejectsWith(register({}, srv.client(demo.cancelledEcs)), 'CustomerNotEntitledException', 400);
  });
});

describe('RegisterUsage after a key rotation (mpmeter keys rotate)', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv?.stop());

  it('signs with the version asked for and dates the rotation of the old one with a number', async () => {
    const ecs = srv.client(demo.ecs);
    const v1 = await publicKeyPEM(srv.endpoint, 1);
    const beforeRotate = Date.now();
    // Rotate with the CLI on the server's database, as an operator would.
    const { stdout } = await promisify(execFile)(binaryPath(), ['keys', 'rotate', '--db', srv.db], { timeout: 30_000 });
    assert.match(stdout, /created signing key version 2/);
    const afterRotate = Date.now();

    const out2 = await ecs.send(new RegisterUsageCommand({ ProductCode: demo.containerProduct, PublicKeyVersion: 2, Nonce: 'v2' }));
    const v2 = await publicKeyPEM(srv.endpoint, 2);
    assert.notEqual(v2, v1);
    const claims2 = decodePart(out2.Signature.split('.')[1]);
    assert.equal(claims2.publicKeyVersion, 2);
    assert.equal(verifyJWT(out2.Signature, v2), true);
    assert.equal(verifyJWT(out2.Signature, v1), false, 'a version 2 token verifies with the version 1 key');
    assert.equal(out2.PublicKeyRotationTimestamp, undefined, 'the current version has a rotation timestamp');

    // Version 1 still signs, and says since when it is no longer current.
    const client = srv.client(demo.ecs);
    const log = wire(client);
    const out1 = await client.send(new RegisterUsageCommand({ ProductCode: demo.containerProduct, PublicKeyVersion: 1, Nonce: 'v1' }));
    assert.equal(verifyJWT(out1.Signature, v1), true);
    const body = JSON.parse(log.responseBody);
    assert.equal(typeof body.PublicKeyRotationTimestamp, 'number', log.responseBody);
    assert.ok(out1.PublicKeyRotationTimestamp instanceof Date);
    const rotated = out1.PublicKeyRotationTimestamp.getTime();
    assert.ok(rotated >= beforeRotate - 1000 && rotated <= afterRotate + 1000,
      `rotation at ${out1.PublicKeyRotationTimestamp.toISOString()}, rotate ran ${new Date(beforeRotate).toISOString()}..${new Date(afterRotate).toISOString()}`);
  });
});
