// A client created without `endpoint` finds the server through the
// environment variable AWS_ENDPOINT_URL_MARKETPLACE_METERING (the SDKs'
// service-specific endpoint setting), in a child process whose environment
// carries it, and the credentials and region the same way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer } from 'node:net';

import { demo, startServer, packageDir } from './lib/harness.js';

const run = promisify(execFile);

// closedEndpoint is an endpoint on a loopback port nothing listens on.
async function closedEndpoint() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const script = `
import { MarketplaceMeteringClient, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
const client = new MarketplaceMeteringClient({ maxAttempts: 1 });
try {
  const out = await client.send(new ResolveCustomerCommand({ RegistrationToken: process.argv[1] }));
  delete out.$metadata;
  console.log(JSON.stringify({ ok: out }));
} catch (err) {
  console.log(JSON.stringify({ err: { name: err.name, code: err.code, message: err.message, status: err.$metadata?.httpStatusCode } }));
}
`;

describe('AWS_ENDPOINT_URL_MARKETPLACE_METERING', () => {
  let srv;
  let home;
  before(async () => {
    srv = await startServer();
    home = mkdtempSync(join(tmpdir(), 'mpmeter-node-home-'));
  });
  after(async () => {
    await srv?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  // The child's environment: nothing AWS_* from ours, no shared config.
  function env(extra) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    return {
      ...base,
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: demo.seller.accessKeyId,
      AWS_SECRET_ACCESS_KEY: demo.seller.secretAccessKey,
      AWS_REGION: demo.region,
      ...extra,
    };
  }

  async function child(extraEnv, token = demo.token) {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, token], {
      cwd: packageDir, env: env(extraEnv), timeout: 30_000,
    });
    return JSON.parse(stdout.trim().split('\n').pop());
  }

  it('points a client without endpoint at the server', async () => {
    const res = await child({ AWS_ENDPOINT_URL_MARKETPLACE_METERING: srv.endpoint });
    assert.deepEqual(res, {
      ok: {
        CustomerIdentifier: demo.customer,
        CustomerAWSAccountId: demo.buyerAccount,
        ProductCode: demo.saasProduct,
        LicenseArn: demo.customerLicense,
      },
    });
  });

  it('an error from the server reaches the child the same way', async () => {
    const res = await child({ AWS_ENDPOINT_URL_MARKETPLACE_METERING: srv.endpoint }, demo.tokenExpired);
    assert.equal(res.err?.name, 'ExpiredTokenException', JSON.stringify(res));
    assert.equal(res.err.status, 400);
  });

  it('the variable is what is used: another port is refused', async () => {
    // Control: the same child with the variable pointing at a closed port
    // fails to connect instead of reaching the server or AWS.
    const closed = await closedEndpoint();
    const res = await child({ AWS_ENDPOINT_URL_MARKETPLACE_METERING: closed });
    assert.ok(res.err, JSON.stringify(res));
    assert.match(`${res.err.code} ${res.err.message}`, /ECONNREFUSED/);
  });

  it('the global AWS_ENDPOINT_URL works too, and the service variable wins', async () => {
    const viaGlobal = await child({ AWS_ENDPOINT_URL: srv.endpoint });
    assert.equal(viaGlobal.ok?.CustomerIdentifier, demo.customer, JSON.stringify(viaGlobal));
    const closed = await closedEndpoint();
    const both = await child({ AWS_ENDPOINT_URL: closed, AWS_ENDPOINT_URL_MARKETPLACE_METERING: srv.endpoint });
    assert.equal(both.ok?.CustomerIdentifier, demo.customer, JSON.stringify(both));
  });
});
