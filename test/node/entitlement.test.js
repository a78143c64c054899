// The AWS Marketplace Entitlement Service (GetEntitlements) through the AWS
// SDK for JavaScript v3 in both of its wire protocols (its default awsJson
// 1.1, and Smithy RPC v2 CBOR, the model's first protocol, selected with
// the client's `protocol` option) and through the AWS SDK for JavaScript v2
// as the aws-samples SaaS integrations call it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import {
  MarketplaceEntitlementServiceClient, GetEntitlementsCommand, paginateGetEntitlements,
} from '@aws-sdk/client-marketplace-entitlement-service';
import { AwsSmithyRpcV2CborProtocol } from '@aws-sdk/core/protocols';

import { demo, startServer, rejectsWith } from './lib/harness.js';

const require = createRequire(import.meta.url);
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const AWS = require('aws-sdk'); // v2

const contract = Object.freeze({
  product: 'examplecontract1',
  customer: 'cust-contract-1',
  license: 'arn:aws:license-manager::444455556666:license/l-0c0a000000000001',
  expires: new Date('2030-01-01T00:00:00Z'),
});

// captureRequest records the path and headers of the last request sent.
function captureRequest(client) {
  const seen = {};
  client.middlewareStack.add((next) => async (args) => {
    seen.path = args.request.path;
    seen.headers = { ...args.request.headers };
    const result = await next(args);
    seen.responseHeaders = result.response.headers;
    return result;
  }, { step: 'finalizeRequest', priority: 'low', name: 'mpmeterCaptureRequest' });
  return seen;
}

// checkDemoContract checks the demo contract's four entitlements. JS v2's
// bundled model predates CustomerAWSAccountId and LicenseArn (oldModel): it
// drops them.
function checkDemoContract(entitlements, { oldModel = false } = {}) {
  const byDim = Object.fromEntries(entitlements.map((e) => [e.Dimension, e]));
  assert.deepEqual(Object.keys(byDim).sort(), ['premium_support', 'storage_tb', 'tier', 'users']);
  for (const e of entitlements) {
    assert.equal(e.ProductCode, contract.product);
    assert.equal(e.CustomerIdentifier, contract.customer);
    assert.equal(e.CustomerAWSAccountId, oldModel ? undefined : demo.buyerAccount);
    assert.equal(e.LicenseArn, oldModel ? undefined : contract.license);
  }
  assert.deepEqual(byDim.users.Value, { IntegerValue: 10 });
  assert.equal(byDim.users.ExpirationDate.getTime(), contract.expires.getTime());
  assert.deepEqual(byDim.storage_tb.Value, { DoubleValue: 2.5 });
  assert.deepEqual(byDim.premium_support.Value, { BooleanValue: true });
  assert.deepEqual(byDim.tier.Value, { StringValue: 'gold' });
  assert.equal(byDim.tier.ExpirationDate, undefined);
}

for (const protocol of ['awsJson1_1', 'rpcv2Cbor']) {
  describe(`GetEntitlements, JS v3, ${protocol}`, () => {
    let srv;
    const client = (credentials = demo.seller, region = demo.region) => {
      const c = new MarketplaceEntitlementServiceClient({
        endpoint: srv.endpoint, region, credentials, maxAttempts: 1,
        ...(protocol === 'rpcv2Cbor' ? { protocol: AwsSmithyRpcV2CborProtocol } : {}),
      });
      return c;
    };
    before(async () => { srv = await startServer(); });
    after(() => srv?.stop());

    it('answers the demo contract, typed, on the wire protocol chosen', async () => {
      const c = client();
      const seen = captureRequest(c);
      const out = await c.send(new GetEntitlementsCommand({ ProductCode: contract.product }));
      assert.equal(out.NextToken, undefined);
      checkDemoContract(out.Entitlements);
      if (protocol === 'rpcv2Cbor') {
        assert.equal(seen.path, '/service/AWSMPEntitlementService/operation/GetEntitlements');
        assert.equal(seen.headers['smithy-protocol'], 'rpc-v2-cbor');
        assert.equal(seen.headers['content-type'], 'application/cbor');
        assert.equal(seen.headers['x-amz-target'], undefined);
        assert.equal(seen.responseHeaders['smithy-protocol'], 'rpc-v2-cbor');
        assert.equal(seen.responseHeaders['content-type'], 'application/cbor');
      } else {
        assert.equal(seen.path, '/');
        assert.equal(seen.headers['x-amz-target'], 'AWSMPEntitlementService.GetEntitlements');
        assert.equal(seen.headers['content-type'], 'application/x-amz-json-1.1');
      }
    });

    it('filters: values unioned, keys intersected; the cancelled contract is not answered', async () => {
      const get = (Filter) => client().send(new GetEntitlementsCommand({ ProductCode: contract.product, Filter }));
      let out = await get({ CUSTOMER_AWS_ACCOUNT_ID: [demo.buyerAccount, demo.cancelledAccount], DIMENSION: ['users', 'tier'] });
      assert.deepEqual(out.Entitlements.map((e) => e.Dimension), ['tier', 'users']);
      out = await get({ CUSTOMER_IDENTIFIER: ['cust-contract-cancelled'] });
      assert.deepEqual(out.Entitlements, []);
      out = await get({ LICENSE_ARN: [contract.license], DIMENSION: ['storage_tb'] });
      assert.deepEqual(out.Entitlements.map((e) => e.Value), [{ DoubleValue: 2.5 }]);
      const err = await rejectsWith(get({ DIMENSION: ['users'] }), 'InvalidParameterException', 400);
      assert.match(err.message, /Invalid filter combination/);
      await rejectsWith(get({ CUSTOMER_IDENTIFIER: [contract.customer], CUSTOMER_AWS_ACCOUNT_ID: [demo.buyerAccount] }), 'InvalidParameterException', 400);
    });

    it('the paginator walks NextToken, MaxResults at a time', async () => {
      const dims = [];
      let pages = 0;
      for await (const page of paginateGetEntitlements({ client: client(), pageSize: 1 }, { ProductCode: contract.product })) {
        pages++;
        assert.ok(page.Entitlements.length <= 1);
        dims.push(...page.Entitlements.map((e) => e.Dimension));
      }
      assert.deepEqual(dims, ['premium_support', 'storage_tb', 'tier', 'users']);
      assert.equal(pages, 4);
    });

    it("the server's own validation and rules (JS v3 sends what it is given)", async () => {
      const c = client();
      let err = await rejectsWith(c.send(new GetEntitlementsCommand({ ProductCode: contract.product, MaxResults: 26 })), 'InvalidParameterException', 400);
      assert.match(err.message, /Value '26' at 'maxResults' failed to satisfy constraint/);
      err = await rejectsWith(c.send(new GetEntitlementsCommand({ ProductCode: contract.product, NextToken: 'forged' })), 'InvalidParameterException', 400);
      assert.match(err.message, /NextToken/);
      await rejectsWith(client(demo.otherSeller).send(new GetEntitlementsCommand({ ProductCode: contract.product })), 'InvalidParameterException', 400);
      err = await rejectsWith(client(demo.seller, 'eu-west-1').send(new GetEntitlementsCommand({ ProductCode: contract.product })), 'DisabledApiException', 400);
      assert.match(err.message, /us-east-1 only/);
      await rejectsWith(client({ accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'x' }).send(new GetEntitlementsCommand({ ProductCode: contract.product })), 'UnrecognizedClientException', 403);
    });
  });
}

describe('GetEntitlements, JS v2 (as the aws-samples SaaS integration calls it)', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(() => srv?.stop());

  const v2 = (credentials = demo.seller) => new AWS.MarketplaceEntitlementService({
    endpoint: srv.endpoint, region: demo.region, maxRetries: 0,
    credentials: new AWS.Credentials(credentials.accessKeyId, credentials.secretAccessKey),
  });

  it("getEntitlements with the customer's identifier, as the subscription handler does", async () => {
    const out = await v2().getEntitlements({
      ProductCode: contract.product,
      Filter: { CUSTOMER_IDENTIFIER: [contract.customer] },
    }).promise();
    checkDemoContract(out.Entitlements, { oldModel: true });
  });

  it('errors are AWS errors with their codes', async () => {
    await assert.rejects(
      v2(demo.otherSeller).getEntitlements({ ProductCode: contract.product }).promise(),
      (err) => err.code === 'InvalidParameterException' && err.statusCode === 400,
    );
  });
});
