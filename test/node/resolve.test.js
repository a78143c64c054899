// ResolveCustomer through the AWS SDK for JavaScript v3.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, uuidRe } from './lib/harness.js';

describe('ResolveCustomer', () => {
  let srv;
  let seller;
  before(async () => {
    srv = await startServer();
    seller = srv.client(demo.seller);
  });
  after(() => srv?.stop());

  const resolve = (token, client = seller) => client.send(new ResolveCustomerCommand({ RegistrationToken: token }));

  it('resolves demo-token-1 to the agreement, the same every time', async () => {
    const out = await resolve(demo.token);
    assert.equal(out.$metadata.httpStatusCode, 200);
    assert.match(out.$metadata.requestId, uuidRe);
    assert.equal(out.CustomerIdentifier, 'cust-example-1');
    assert.equal(out.CustomerAWSAccountId, '444455556666');
    assert.equal(out.ProductCode, 'exampleprod1');
    assert.equal(out.LicenseArn, 'arn:aws:license-manager::444455556666:license/l-0123456789abcdef');
    const again = await resolve(demo.token);
    const { $metadata: m1, ...first } = out;
    const { $metadata: m2, ...second } = again;
    assert.deepEqual(second, first);
    assert.notEqual(m2.requestId, m1.requestId, 'two requests with one request id');
  });

  it('an unknown token: InvalidTokenException', async () => {
    await rejectsWith(resolve('no-such-token'), 'InvalidTokenException', 400);
  });

  it("another seller's token: InvalidTokenException, and the other seller resolves it", async () => {
    await rejectsWith(resolve(demo.tokenOther), 'InvalidTokenException', 400);
    await rejectsWith(resolve(demo.token, srv.client(demo.otherSeller)), 'InvalidTokenException', 400);
    const out = await resolve(demo.tokenOther, srv.client(demo.otherSeller));
    assert.equal(out.ProductCode, demo.otherProduct);
    assert.equal(out.CustomerAWSAccountId, demo.buyerAccount);
  });

  it('an expired token: ExpiredTokenException', async () => {
    const err = await rejectsWith(resolve(demo.tokenExpired), 'ExpiredTokenException', 400);
    assert.match(err.message, /expired/);
  });

  it('an empty token: ValidationException', async () => {
    const err = await rejectsWith(resolve(''), 'ValidationException', 400);
    assert.ok(err.message.includes("Value '' at 'registrationToken' failed to satisfy constraint"), err.message);
  });

  it('no token at all: ValidationException naming the member', async () => {
    const err = await rejectsWith(seller.send(new ResolveCustomerCommand({})), 'ValidationException', 400);
    assert.equal(err.message, "1 validation error detected: Value null at 'registrationToken' failed to satisfy constraint: Member must not be null");
  });

  it('a region without ResolveCustomer: DisabledApiException', async () => {
    await rejectsWith(resolve(demo.token, srv.client(demo.seller, 'us-gov-west-1')), 'DisabledApiException', 400);
  });

  it('an unknown key and a wrong secret: 403s', async () => {
    await rejectsWith(resolve(demo.token, srv.client({ accessKeyId: 'AKIANOSUCHKEY0000001', secretAccessKey: 'x' })), 'UnrecognizedClientException', 403);
    await rejectsWith(resolve(demo.token, srv.client({ accessKeyId: demo.seller.accessKeyId, secretAccessKey: 'nope' })), 'InvalidSignatureException', 403);
  });
});

describe('ThrottlingException (--rate-limit 0.001 --rate-burst 1)', () => {
  let srv;
  before(async () => {
    srv = await startServer(['--rate-limit', '0.001', '--rate-burst', '1']);
  });
  after(() => srv?.stop());

  it('throttles the second call of one account and operation, not others', async () => {
    const seller = srv.client(demo.seller);
    const out = await seller.send(new ResolveCustomerCommand({ RegistrationToken: demo.token }));
    assert.equal(out.CustomerIdentifier, demo.customer);
    const err = await rejectsWith(seller.send(new ResolveCustomerCommand({ RegistrationToken: demo.token })), 'ThrottlingException', 400);
    assert.match(err.message, /Rate exceeded/);
    // maxAttempts 1: the SDK made one attempt and reported it.
    assert.equal(err.$metadata.attempts, 1);
    // Another account is not throttled by the seller's calls.
    const other = await srv.client(demo.otherSeller).send(new ResolveCustomerCommand({ RegistrationToken: demo.tokenOther }));
    assert.equal(other.ProductCode, demo.otherProduct);
  });

  it('lets the SDK retry a ThrottlingException (it is retryable)', async () => {
    // With retries on, the SDK tries again after a throttle: every attempt
    // is throttled here (the bucket refills once in 1000 s), and the SDK
    // reports that it made more than one.
    const { MarketplaceMeteringClient } = await import('@aws-sdk/client-marketplace-metering');
    const client = new MarketplaceMeteringClient({ endpoint: srv.endpoint, region: demo.region, credentials: demo.seller, maxAttempts: 2 });
    const err = await rejectsWith(client.send(new ResolveCustomerCommand({ RegistrationToken: demo.token })), 'ThrottlingException', 400);
    assert.equal(err.$metadata.attempts, 2);
  });
});
