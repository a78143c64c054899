// The awsJson 1.1 protocol and SigV4 as JS v3 speaks them, and what the
// server answers when the bytes or the signature are not what they should be.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MarketplaceMeteringClient, ResolveCustomerCommand, BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, wire, uuidRe } from './lib/harness.js';

// setHeader makes client send header name: value (set before signing).
function setHeader(client, name, value) {
  client.middlewareStack.add(
    (next) => async (args) => {
      args.request.headers[name] = value;
      return next(args);
    },
    { step: 'build', name: `mpmeterSet-${name}` },
  );
}

describe('protocol', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv?.stop());

  const resolve = (client, token = demo.token) => client.send(new ResolveCustomerCommand({ RegistrationToken: token }));

  it('JS v3 sends POST / with the awsJson 1.1 headers', async () => {
    const client = srv.client(demo.seller);
    const seen = {};
    client.middlewareStack.add((next) => async (args) => {
      Object.assign(seen, { method: args.request.method, path: args.request.path, headers: { ...args.request.headers } });
      return next(args);
    }, { step: 'finalizeRequest', priority: 'low', name: 'mpmeterSeeRequest' });
    const out = await resolve(client);
    assert.equal(out.CustomerIdentifier, demo.customer);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/');
    assert.equal(seen.headers['content-type'], 'application/x-amz-json-1.1');
    assert.equal(seen.headers['x-amz-target'], 'AWSMPMeteringService.ResolveCustomer');
    assert.match(seen.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIAEXAMPLESELLER001\/\d{8}\/us-east-1\/aws-marketplace\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
  });

  it('an unknown X-Amz-Target: UnknownOperationException', async () => {
    const client = srv.client(demo.seller);
    setHeader(client, 'x-amz-target', 'AWSMPMeteringService.DescribeEverything');
    const err = await rejectsWith(resolve(client), 'UnknownOperationException', 400);
    assert.match(err.message, /DescribeEverything/);
  });

  it('Content-Type with a charset is accepted', async () => {
    const client = srv.client(demo.seller);
    setHeader(client, 'content-type', 'application/x-amz-json-1.1; charset=utf-8');
    const out = await resolve(client);
    assert.equal(out.CustomerIdentifier, demo.customer);
  });

  it('malformed JSON and wrong member types: SerializationException', async () => {
    for (const body of ['{"RegistrationToken":', '["demo-token-1"]', '{"RegistrationToken":42}']) {
      const client = srv.client(demo.seller);
      const log = wire(client, () => body);
      await rejectsWith(resolve(client), 'SerializationException', 400);
      assert.equal(log.requestBody, body);
      const envelope = JSON.parse(log.responseBody);
      assert.deepEqual(Object.keys(envelope).sort(), ['__type', 'message']);
      assert.equal(envelope.__type, 'SerializationException');
    }
  });

  // wire sets content-length: 0 before signing, and JS v3 signs it.
  it('an empty body means {}: ValidationException for the missing token', async () => {
    const client = srv.client(demo.seller);
    wire(client, () => '');
    const seen = {};
    client.middlewareStack.add((next) => async (args) => {
      Object.assign(seen, args.request.headers);
      return next(args);
    }, { step: 'finalizeRequest', priority: 'low', name: 'mpmeterSeeRequest' });
    const err = await rejectsWith(resolve(client), 'ValidationException', 400);
    assert.match(err.message, /'registrationToken' failed to satisfy constraint: Member must not be null/);
    assert.equal(seen['content-length'], '0');
    assert.match(seen.authorization, /SignedHeaders=[a-z0-9;-]*\bcontent-length;/);
  });

  it('JSON null members are absent', async () => {
    const client = srv.client(demo.seller);
    const ts = Date.now() / 1000 - 60;
    // Were null CustomerAWSAccountId present, the record would name two
    // customers (ValidationException).
    wire(client, () => JSON.stringify({
      ProductCode: 'exampleprod1',
      UsageRecords: [{
        CustomerIdentifier: demo.customer, CustomerAWSAccountId: null, LicenseArn: null, UsageAllocations: null,
        Dimension: 'users', Quantity: 1, Timestamp: ts,
      }],
    }));
    const out = await client.send(new BatchMeterUsageCommand({ ProductCode: demo.saasProduct, UsageRecords: [] }));
    assert.equal(out.Results.length, 1);
    assert.equal(out.Results[0].Status, 'Success');
    assert.equal(out.Results[0].UsageRecord.CustomerAWSAccountId, undefined);
  });

  it('errors carry the envelope, the request id header and the protocol headers', async () => {
    const client = srv.client(demo.seller);
    const log = wire(client);
    const err = await rejectsWith(resolve(client, 'no-such-token'), 'InvalidTokenException', 400);
    assert.equal(log.status, 400);
    assert.equal(log.headers['content-type'], 'application/x-amz-json-1.1');
    assert.match(log.headers['x-amzn-requestid'], uuidRe);
    assert.equal(err.$metadata.requestId, log.headers['x-amzn-requestid']);
    const envelope = JSON.parse(log.responseBody);
    assert.deepEqual(envelope, { __type: 'InvalidTokenException', message: err.message });
  });

  it('an unsigned request: 403 MissingAuthenticationTokenException', async () => {
    const res = await fetch(`${srv.endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSMPMeteringService.ResolveCustomer' },
      body: JSON.stringify({ RegistrationToken: demo.token }),
    });
    assert.equal(res.status, 403);
    assert.match(res.headers.get('x-amzn-requestid'), uuidRe);
    const body = await res.json();
    assert.equal(body.__type, 'MissingAuthenticationTokenException');
    assert.equal(typeof body.message, 'string');
  });

  it('a clock an hour behind: InvalidSignatureException (signature expired)', async () => {
    const client = new MarketplaceMeteringClient({
      endpoint: srv.endpoint, region: demo.region, credentials: demo.seller, maxAttempts: 1, systemClockOffset: -3_600_000,
    });
    const err = await rejectsWith(resolve(client), 'InvalidSignatureException', 403);
    assert.match(err.message, /Signature expired/);
  });

  it('a clock five minutes behind is within the 15-minute window', async () => {
    const client = new MarketplaceMeteringClient({
      endpoint: srv.endpoint, region: demo.region, credentials: demo.seller, maxAttempts: 1, systemClockOffset: -300_000,
    });
    const out = await resolve(client);
    assert.equal(out.CustomerIdentifier, demo.customer);
  });

  it('a signed body changed in transit: InvalidSignatureException', async () => {
    const client = srv.client(demo.seller);
    // After signing: the signature no longer covers the body.
    client.middlewareStack.add((next) => async (args) => {
      args.request.body = JSON.stringify({ RegistrationToken: demo.tokenOther });
      args.request.headers['content-length'] = String(Buffer.byteLength(args.request.body));
      return next(args);
    }, { step: 'finalizeRequest', priority: 'low', name: 'mpmeterTamper' });
    await rejectsWith(resolve(client), 'InvalidSignatureException', 403);
  });
});
