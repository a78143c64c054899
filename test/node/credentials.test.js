// Temporary credentials through the AWS SDK for JavaScript v3: a workload's
// unchanged code (a client built without credentials) finds them with the
// default provider chain through the container credentials endpoint, with
// only environment variables set; long-term keys refuse a session token,
// temporary keys need theirs and expire.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RegisterUsageCommand, MeterUsageCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, packageDir, rejectsWith } from './lib/harness.js';

const run = promisify(execFile);

const ecsWorkload = 'arn:aws:ecs:us-east-1:444455556666:task/demo/0123456789abcdef';
const ecsCredentialsToken = 'demo-ecs-credentials-token';
const eksWorkload = 'demo/metering-agent-7d4b9c6f5-x2k8p';
const eksCredentialsToken = 'demo-eks-credentials-token';
const ecsTemporary = { accessKeyId: 'ASIAEXAMPLEECS000001', secretAccessKey: 'ecs-temporary-secret', sessionToken: 'demo-ecs-session-token' };
const expired = { accessKeyId: 'ASIAEXAMPLEEXPIRED01', secretAccessKey: 'expired-secret', sessionToken: 'demo-expired-session-token' };

// The workload's code: no endpoint, no region, no credentials.
const script = `
import { MarketplaceMeteringClient, RegisterUsageCommand } from '@aws-sdk/client-marketplace-metering';
const client = new MarketplaceMeteringClient({ maxAttempts: 1 });
try {
  const out = await client.send(new RegisterUsageCommand({ ProductCode: process.argv[1], PublicKeyVersion: 1 }));
  const creds = await client.config.credentials();
  console.log(JSON.stringify({ ok: Boolean(out.Signature), accessKeyId: creds.accessKeyId,
    hasToken: Boolean(creds.sessionToken), expiration: creds.expiration }));
} catch (err) {
  console.log(JSON.stringify({ err: { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode } }));
}
`;

describe('temporary credentials', () => {
  let srv;
  let home;
  before(async () => {
    srv = await startServer();
    home = mkdtempSync(join(tmpdir(), 'mpmeter-node-creds-'));
  });
  after(async () => {
    await srv?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  // The environment of a container pointed at mpmeter: nothing AWS_* of
  // ours, no shared config, no keys.
  function env(workload, extra) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    return {
      ...base,
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_REGION: demo.region,
      AWS_ENDPOINT_URL_MARKETPLACE_METERING: srv.endpoint,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${srv.endpoint}/credentials/workloads/${workload}`,
      ...extra,
    };
  }

  async function child(workload, extra) {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, demo.containerProduct], {
      cwd: packageDir, env: env(workload, extra), timeout: 60_000,
    });
    return JSON.parse(stdout.trim().split('\n').pop());
  }

  it('the default chain reads the container credentials endpoint', async () => {
    const res = await child(ecsWorkload, { AWS_CONTAINER_AUTHORIZATION_TOKEN: ecsCredentialsToken });
    assert.equal(res.ok, true, JSON.stringify(res));
    assert.match(res.accessKeyId, /^ASIA[A-Z2-7]{16}$/);
    assert.equal(res.hasToken, true);
    const inMs = Date.parse(res.expiration) - Date.now();
    assert.ok(inMs > 55 * 60_000 && inMs <= 60 * 60_000, `expires in ${inMs} ms`);
  });

  it('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE works too (an EKS pod)', async () => {
    const file = join(home, 'eks-token');
    writeFileSync(file, eksCredentialsToken);
    const res = await child(eksWorkload, { AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file });
    assert.equal(res.ok, true, JSON.stringify(res));
    assert.match(res.accessKeyId, /^ASIA/);
  });

  it('another workload\'s token gets no credentials', async () => {
    const res = await child(ecsWorkload, { AWS_CONTAINER_AUTHORIZATION_TOKEN: eksCredentialsToken });
    assert.ok(res.err, JSON.stringify(res));
    assert.match(res.err.message, /403|Could not load credentials/);
  });

  it('temporary credentials with their token', async () => {
    const out = await srv.client(ecsTemporary).send(new RegisterUsageCommand({ ProductCode: demo.containerProduct, PublicKeyVersion: 1 }));
    assert.ok(out.Signature);
  });

  it('a bogus session token on a long-term key', async () => {
    const err = await rejectsWith(
      srv.client({ ...demo.ecs, sessionToken: 'bogus' }).send(new RegisterUsageCommand({ ProductCode: demo.containerProduct, PublicKeyVersion: 1 })),
      'UnrecognizedClientException', 403);
    assert.equal(err.message, 'The security token included in the request is invalid.');
  });

  it('temporary credentials without their token', async () => {
    const { sessionToken, ...noToken } = ecsTemporary;
    await rejectsWith(
      srv.client(noToken).send(new RegisterUsageCommand({ ProductCode: demo.containerProduct, PublicKeyVersion: 1 })),
      'UnrecognizedClientException', 403);
  });

  it('expired temporary credentials', async () => {
    const err = await rejectsWith(
      srv.client(expired).send(new MeterUsageCommand({
        ProductCode: demo.amiProduct, UsageDimension: 'vcpu_hours', UsageQuantity: 1, Timestamp: new Date(),
      })),
      'ExpiredTokenException', 403);
    assert.equal(err.message, 'The security token included in the request is expired');
  });
});
