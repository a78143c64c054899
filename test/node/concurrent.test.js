// Concurrent Agreements products through the AWS SDK for JavaScript v3: the
// demo's exampleca1, whose buyer 444455556666 holds two agreements
// (seed/demo.yaml). Records name the customer by CustomerAWSAccountId +
// LicenseArn; ResolveCustomer answers no CustomerIdentifier.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { BatchMeterUsageCommand, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, wire, hoursAgo, uuidRe } from './lib/harness.js';

const ca = Object.freeze({
  product: 'exampleca1', // dimensions users, gigabytes
  license1: 'arn:aws:license-manager::444455556666:license/l-0ca1000000000001',
  license2: 'arn:aws:license-manager::444455556666:license/l-0ca2000000000002',
  token1: 'demo-token-ca-1',
  token2: 'demo-token-ca-2',
});

const caRec = (license, dimension, quantity, ts, account = demo.buyerAccount) => ({
  CustomerAWSAccountId: account, Dimension: dimension, Quantity: quantity, Timestamp: ts,
  ...(license ? { LicenseArn: license } : {}),
});

describe('Concurrent Agreements', () => {
  let srv;
  let seller;
  before(async () => {
    srv = await startServer();
    seller = srv.client(demo.seller);
  });
  after(() => srv?.stop());

  const meter = (input) => seller.send(new BatchMeterUsageCommand(input));

  it('ResolveCustomer answers the agreement the token names, without CustomerIdentifier', async () => {
    for (const [token, license] of [[ca.token1, ca.license1], [ca.token2, ca.license2]]) {
      const client = srv.client(demo.seller);
      const log = wire(client);
      const out = await client.send(new ResolveCustomerCommand({ RegistrationToken: token }));
      assert.equal(out.CustomerIdentifier, undefined);
      assert.ok(!('CustomerIdentifier' in JSON.parse(log.responseBody)), log.responseBody);
      assert.equal(out.CustomerAWSAccountId, demo.buyerAccount);
      assert.equal(out.LicenseArn, license);
      assert.equal(out.ProductCode, ca.product);
    }
  });

  it('two agreements of one account are two dedup slots; LicenseArn may stand in for ProductCode', async () => {
    const ts = hoursAgo(1);
    const out = await meter({ UsageRecords: [caRec(ca.license1, 'users', 3, ts), caRec(ca.license2, 'users', 5, ts)] });
    assert.deepEqual(out.Results.map((r) => r.Status), ['Success', 'Success']);
    assert.deepEqual(out.UnprocessedRecords, []);
    const ids = out.Results.map((r) => r.MeteringRecordId);
    ids.forEach((id) => assert.match(id, uuidRe));
    assert.notEqual(ids[0], ids[1]);

    const again = await meter({ ProductCode: ca.product, UsageRecords: [caRec(ca.license1, 'users', 3, ts), caRec(ca.license2, 'users', 4, ts)] });
    assert.equal(again.Results[0].Status, 'Success');
    assert.equal(again.Results[0].MeteringRecordId, ids[0]);
    assert.equal(again.Results[1].Status, 'DuplicateRecord');
    assert.equal(again.Results[1].MeteringRecordId, undefined);
  });

  it('a CustomerIdentifier: InvalidCustomerIdentifierException', async () => {
    const err = await rejectsWith(meter({ ProductCode: ca.product, UsageRecords: [
      { CustomerIdentifier: demo.customer, Dimension: 'users', Quantity: 1, Timestamp: hoursAgo(2) }] }),
    'InvalidCustomerIdentifierException', 400);
    assert.match(err.message, /concurrent agreements/);
  });

  it('a record without LicenseArn: InvalidLicenseException, and the batch stores nothing', async () => {
    const ts = hoursAgo(3);
    await rejectsWith(meter({ ProductCode: ca.product, UsageRecords: [caRec(ca.license1, 'users', 1, ts), caRec(undefined, 'users', 1, ts)] }),
      'InvalidLicenseException', 400);
    const out = await meter({ UsageRecords: [caRec(ca.license1, 'users', 7, ts)] });
    assert.equal(out.Results[0].Status, 'Success', 'the failed batch stored its good record');
  });

  it("another product's license or another account's agreement: InvalidLicenseException", async () => {
    const ts = hoursAgo(4);
    await rejectsWith(meter({ ProductCode: ca.product, UsageRecords: [caRec(demo.customerLicense, 'users', 1, ts)] }), 'InvalidLicenseException', 400);
    await rejectsWith(meter({ ProductCode: ca.product, UsageRecords: [caRec(ca.license2, 'users', 1, ts, demo.cancelledAccount)] }), 'InvalidLicenseException', 400);
  });
});
