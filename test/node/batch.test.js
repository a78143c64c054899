// BatchMeterUsage through the AWS SDK for JavaScript v3. JS v3 does not
// validate input, so everything reaches the server: this is where the
// server's own validation is tested.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, wire, hoursAgo, uuidRe } from './lib/harness.js';

const rec = (customer, dimension, quantity, ts, extra = {}) => ({
  CustomerIdentifier: customer, Dimension: dimension, Quantity: quantity, Timestamp: ts, ...extra,
});

describe('BatchMeterUsage', () => {
  let srv;
  let seller;
  before(async () => {
    srv = await startServer();
    seller = srv.client(demo.seller);
  });
  after(() => srv?.stop());

  const meter = (input, client = seller) => client.send(new BatchMeterUsageCommand({ ProductCode: demo.saasProduct, ...input }));

  it('meters records, answers a retry with the same ids, and DuplicateRecord for another quantity', async () => {
    // A fractional timestamp: JS v3 sends Dates as fractional epoch seconds.
    const ts = new Date(hoursAgo(1).getTime() - 123);
    assert.notEqual(ts.getTime() % 1000, 0);
    const client = srv.client(demo.seller);
    const log = wire(client);
    const input = { UsageRecords: [rec(demo.customer, 'users', 3, ts), rec(demo.customer, 'gigabytes', 10, ts)] };
    const out = await meter(input, client);

    // What JS v3 put on the wire: epoch seconds as a JSON number with a fraction.
    const sent = JSON.parse(log.requestBody);
    assert.equal(typeof sent.UsageRecords[0].Timestamp, 'number');
    assert.equal(sent.UsageRecords[0].Timestamp, ts.getTime() / 1000);
    assert.ok(!Number.isInteger(sent.UsageRecords[0].Timestamp), 'JS v3 sent an integer timestamp');

    assert.equal(out.$metadata.httpStatusCode, 200);
    assert.match(out.$metadata.requestId, uuidRe);
    assert.ok(Array.isArray(out.UnprocessedRecords), 'UnprocessedRecords is not an array');
    assert.equal(out.UnprocessedRecords.length, 0);
    assert.equal(out.Results.length, 2);
    for (const [i, r] of out.Results.entries()) {
      assert.equal(r.Status, 'Success', `result ${i}`);
      assert.match(r.MeteringRecordId, uuidRe);
      assert.equal(r.UsageRecord.CustomerIdentifier, demo.customer);
      assert.equal(r.UsageRecord.Dimension, input.UsageRecords[i].Dimension);
      assert.equal(r.UsageRecord.Quantity, input.UsageRecords[i].Quantity);
      // The echoed timestamp is a number on the wire (JS v3 fails on strings)
      // and keeps the millisecond.
      assert.ok(r.UsageRecord.Timestamp instanceof Date);
      assert.equal(r.UsageRecord.Timestamp.getTime(), ts.getTime());
    }
    assert.notEqual(out.Results[0].MeteringRecordId, out.Results[1].MeteringRecordId);

    // Response headers and body of the protocol.
    assert.equal(log.status, 200);
    assert.equal(log.headers['content-type'], 'application/x-amz-json-1.1');
    assert.match(log.headers['x-amzn-requestid'], uuidRe);
    assert.equal(log.headers['x-amzn-requestid'], out.$metadata.requestId);
    assert.equal(Number(log.headers['content-length']), Buffer.byteLength(log.responseBody));
    assert.ok(log.headers.date, 'no Date header');
    const body = JSON.parse(log.responseBody);
    assert.equal(typeof body.Results[0].UsageRecord.Timestamp, 'number');
    assert.deepEqual(body.UnprocessedRecords, []);

    // The identical request again: Success with the original ids.
    const again = await meter(input);
    assert.deepEqual(again.Results.map((r) => [r.Status, r.MeteringRecordId]), out.Results.map((r) => ['Success', r.MeteringRecordId]));
    assert.deepEqual(again.UnprocessedRecords, []);

    // The same quantity at another moment of the same hour: the same record.
    const hourStart = new Date(Math.floor(ts.getTime() / 3_600_000) * 3_600_000);
    const sameHour = await meter({ UsageRecords: [rec(demo.customer, 'users', 3, hourStart)] });
    assert.equal(sameHour.Results[0].Status, 'Success');
    assert.equal(sameHour.Results[0].MeteringRecordId, out.Results[0].MeteringRecordId);

    // Another quantity for that customer, dimension and hour: DuplicateRecord, no id.
    const dup = await meter({ UsageRecords: [rec(demo.customer, 'users', 4, ts)] });
    assert.equal(dup.Results.length, 1);
    assert.equal(dup.Results[0].Status, 'DuplicateRecord');
    assert.equal(dup.Results[0].MeteringRecordId, undefined);
    assert.equal(dup.Results[0].UsageRecord.Quantity, 4);
    assert.deepEqual(dup.UnprocessedRecords, []);
  });

  it('answers CustomerNotSubscribed per record without failing the batch', async () => {
    const ts = hoursAgo(2);
    const out = await meter({
      UsageRecords: [
        rec(demo.cancelledCustomer, 'users', 1, ts),
        rec(demo.customer, 'users', 1, ts),
        { CustomerAWSAccountId: '999999999999', Dimension: 'users', Quantity: 1, Timestamp: ts },
        { CustomerAWSAccountId: demo.cancelledAccount, Dimension: 'gigabytes', Quantity: 1, Timestamp: ts },
      ],
    });
    assert.deepEqual(out.Results.map((r) => r.Status), ['CustomerNotSubscribed', 'Success', 'CustomerNotSubscribed', 'CustomerNotSubscribed']);
    assert.equal(out.Results[0].MeteringRecordId, undefined);
    assert.match(out.Results[1].MeteringRecordId, uuidRe);
    assert.equal(out.Results[2].MeteringRecordId, undefined);
    assert.equal(out.Results[0].UsageRecord.CustomerIdentifier, demo.cancelledCustomer);
    assert.equal(out.Results[2].UsageRecord.CustomerAWSAccountId, '999999999999');
    assert.ok(Array.isArray(out.UnprocessedRecords));
    assert.equal(out.UnprocessedRecords.length, 0);
  });

  it('takes the customer as CustomerAWSAccountId: the same agreement as its CustomerIdentifier', async () => {
    const ts = hoursAgo(3);
    const byID = await meter({ UsageRecords: [rec(demo.customer, 'users', 7, ts)] });
    assert.equal(byID.Results[0].Status, 'Success');
    const byAccount = await meter({
      UsageRecords: [{ CustomerAWSAccountId: demo.buyerAccount, Dimension: 'users', Quantity: 7, Timestamp: ts }],
    });
    assert.equal(byAccount.Results[0].Status, 'Success');
    assert.equal(byAccount.Results[0].UsageRecord.CustomerAWSAccountId, demo.buyerAccount);
    assert.equal(byAccount.Results[0].UsageRecord.CustomerIdentifier, undefined);
    assert.equal(byAccount.Results[0].MeteringRecordId, byID.Results[0].MeteringRecordId);
    // Another quantity through the account id hits the same slot.
    const dup = await meter({
      UsageRecords: [{ CustomerAWSAccountId: demo.buyerAccount, Dimension: 'users', Quantity: 8, Timestamp: ts }],
    });
    assert.equal(dup.Results[0].Status, 'DuplicateRecord');
  });

  it('takes LicenseArn without ProductCode', async () => {
    const ts = hoursAgo(3);
    const out = await seller.send(new BatchMeterUsageCommand({
      UsageRecords: [{
        CustomerAWSAccountId: demo.buyerAccount, LicenseArn: demo.customerLicense, Dimension: 'gigabytes', Quantity: 5, Timestamp: ts,
      }],
    }));
    assert.equal(out.Results.length, 1);
    assert.equal(out.Results[0].Status, 'Success');
    assert.match(out.Results[0].MeteringRecordId, uuidRe);
    assert.equal(out.Results[0].UsageRecord.LicenseArn, demo.customerLicense);
    assert.deepEqual(out.UnprocessedRecords, []);
    // The license names the product: with ProductCode it is the same record.
    const withCode = await meter({
      UsageRecords: [{ CustomerIdentifier: demo.customer, LicenseArn: demo.customerLicense, Dimension: 'gigabytes', Quantity: 5, Timestamp: ts }],
    });
    assert.equal(withCode.Results[0].MeteringRecordId, out.Results[0].MeteringRecordId);
  });

  it('meters an empty batch to empty results', async () => {
    const out = await meter({ UsageRecords: [] });
    assert.deepEqual(out.Results, []);
    assert.deepEqual(out.UnprocessedRecords, []);
  });

  describe('whole-request errors store nothing', () => {
    // Each bad batch starts with this good record; afterwards the slot must
    // still be free (another quantity is Success, not DuplicateRecord).
    const goodTs = hoursAgo(4);
    const good = rec(demo.customer, 'users', 1, goodTs);
    const now = () => new Date(Date.now() - 1000);
    const cases = [
      ['unknown product', { ProductCode: 'nosuchproduct' }, rec(demo.customer, 'users', 1, now()), 'InvalidProductCodeException'],
      ["another seller's product", { ProductCode: demo.otherProduct }, rec(demo.customer, 'users', 1, now()), 'InvalidProductCodeException'],
      ['an AMI product', { ProductCode: demo.amiProduct }, rec(demo.customer, 'users', 1, now()), 'InvalidProductCodeException'],
      ['unknown dimension', {}, rec(demo.customer, 'cpus', 1, now()), 'InvalidUsageDimensionException'],
      ['unknown customer', {}, rec('cust-nobody', 'users', 1, now()), 'InvalidCustomerIdentifierException'],
      ['older than 6 hours', {}, rec(demo.customer, 'users', 1, hoursAgo(6, 60_000)), 'TimestampOutOfBoundsException'],
      ['20 minutes ahead', {}, rec(demo.customer, 'users', 1, new Date(Date.now() + 1_200_000)), 'TimestampOutOfBoundsException'],
      ['allocations that do not sum', {}, rec(demo.customer, 'users', 5, now(), {
        UsageAllocations: [
          { AllocatedUsageQuantity: 2 },
          { AllocatedUsageQuantity: 2, Tags: [{ Key: 'team', Value: 'a' }] },
        ],
      }), 'InvalidUsageAllocationsException'],
      ['the same tag set twice', {}, rec(demo.customer, 'users', 4, now(), {
        UsageAllocations: [
          { AllocatedUsageQuantity: 2, Tags: [{ Key: 'team', Value: 'a' }] },
          { AllocatedUsageQuantity: 2, Tags: [{ Key: 'team', Value: 'a' }] },
        ],
      }), 'InvalidUsageAllocationsException'],
      ['a duplicate tag key', {}, rec(demo.customer, 'users', 2, now(), {
        UsageAllocations: [{ AllocatedUsageQuantity: 2, Tags: [{ Key: 'team', Value: 'a' }, { Key: 'team', Value: 'b' }] }],
      }), 'InvalidTagException'],
      ['an unknown license', {}, {
        CustomerAWSAccountId: demo.buyerAccount, LicenseArn: 'arn:aws:license-manager::444455556666:license/l-ffffffffffffffff', Dimension: 'users', Quantity: 1, Timestamp: now(),
      }, 'InvalidLicenseException'],
      ["another account's license", {}, {
        CustomerAWSAccountId: demo.cancelledAccount, LicenseArn: demo.customerLicense, Dimension: 'users', Quantity: 1, Timestamp: now(),
      }, 'InvalidLicenseException'],
      ["another customer's license", {}, {
        CustomerIdentifier: demo.cancelledCustomer, LicenseArn: demo.customerLicense, Dimension: 'users', Quantity: 1, Timestamp: now(),
      }, 'InvalidLicenseException'],
    ];
    for (const [name, input, bad, code] of cases) {
      it(`${name}: ${code}`, async () => {
        const err = await rejectsWith(meter({ ...input, UsageRecords: [good, bad] }), code, 400);
        if (code === 'TimestampOutOfBoundsException') assert.match(err.message, /out of the allowed range/);
        if (code === 'InvalidUsageDimensionException') assert.match(err.message, /cpus/);
        if (code === 'InvalidCustomerIdentifierException') assert.match(err.message, /cust-nobody/);
      });
    }

    it('a buyer key metering the SaaS product: InvalidProductCodeException', async () => {
      await rejectsWith(meter({ UsageRecords: [good] }, srv.client(demo.buyer)), 'InvalidProductCodeException', 400);
    });

    it('no ProductCode and a record without LicenseArn: ValidationException', async () => {
      const err = await rejectsWith(seller.send(new BatchMeterUsageCommand({ UsageRecords: [good] })), 'ValidationException', 400);
      assert.match(err.message, /productCode/);
    });

    it('left the good record unstored', async () => {
      const out = await meter({ UsageRecords: [rec(demo.customer, 'users', 2, goodTs)] });
      assert.equal(out.Results[0].Status, 'Success', 'a failed batch stored its good record');
    });
  });

  describe('ValidationException in the AWS message format', () => {
    const ts = () => new Date(Date.now() - 1000);

    it('an empty Dimension', async () => {
      const err = await rejectsWith(meter({ UsageRecords: [rec(demo.customer, '', 1, ts())] }), 'ValidationException', 400);
      assert.match(err.message, /^\d+ validation errors? detected: /);
      assert.ok(err.message.includes("Value '' at 'usageRecords.1.member.dimension' failed to satisfy constraint: Member must have length greater than or equal to 1"), err.message);
    });

    it('26 records', async () => {
      const records = Array.from({ length: 26 }, (_, i) => rec(`c${i}`, 'users', 1, ts()));
      const err = await rejectsWith(meter({ UsageRecords: records }), 'ValidationException', 400);
      assert.match(err.message, /^1 validation error detected: Value '.*' at 'usageRecords' failed to satisfy constraint: Member must have length less than or equal to 25$/s);
    });

    it('25 records pass validation', async () => {
      // 25 unknown customers: past validation, the first fails the customer check.
      const records = Array.from({ length: 25 }, (_, i) => rec(`c${i}`, 'users', 1, ts()));
      await rejectsWith(meter({ UsageRecords: records }), 'InvalidCustomerIdentifierException', 400);
    });

    it('both customer fields', async () => {
      const err = await rejectsWith(meter({
        UsageRecords: [rec(demo.customer, 'users', 1, ts()), rec(demo.customer, 'users', 1, ts(), { CustomerAWSAccountId: demo.buyerAccount })],
      }), 'ValidationException', 400);
      assert.match(err.message, /^1 validation error detected: /);
      assert.ok(err.message.includes("Value '444455556666' at 'usageRecords.2.member.customerAWSAccountId'"), err.message);
      assert.match(err.message, /CustomerIdentifier/);
      assert.match(err.message, /CustomerAWSAccountId/);
    });

    it('neither customer field', async () => {
      const err = await rejectsWith(meter({ UsageRecords: [{ Dimension: 'users', Quantity: 1, Timestamp: ts() }] }), 'ValidationException', 400);
      assert.ok(err.message.includes("Value null at 'usageRecords.1.member.customerIdentifier'"), err.message);
    });

    it('several violations are counted and joined by "; "', async () => {
      const err = await rejectsWith(seller.send(new BatchMeterUsageCommand({
        ProductCode: 'bad code!',
        UsageRecords: [{ CustomerIdentifier: 'c', Dimension: 'users', Quantity: -1 }],
      })), 'ValidationException', 400);
      assert.equal(err.message,
        '3 validation errors detected: '
        + "Value null at 'usageRecords.1.member.timestamp' failed to satisfy constraint: Member must not be null; "
        + "Value '-1' at 'usageRecords.1.member.quantity' failed to satisfy constraint: Member must have value greater than or equal to 0; "
        + "Value 'bad code!' at 'productCode' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[-a-zA-Z0-9/=:_.@]*$");
    });

    it('a quantity above the 32-bit maximum', async () => {
      const err = await rejectsWith(meter({ UsageRecords: [rec(demo.customer, 'users', 2147483648, ts())] }), 'ValidationException', 400);
      assert.ok(err.message.includes("Value '2147483648' at 'usageRecords.1.member.quantity' failed to satisfy constraint: Member must have value less than or equal to 2147483647"), err.message);
    });

    it('a malformed CustomerAWSAccountId and tag value', async () => {
      const err = await rejectsWith(meter({
        UsageRecords: [{
          CustomerAWSAccountId: '12ab', Dimension: 'users', Quantity: 1, Timestamp: ts(),
          UsageAllocations: [{ AllocatedUsageQuantity: 1, Tags: [{ Key: 'k', Value: 'v~' }] }],
        }],
      }), 'ValidationException', 400);
      assert.match(err.message, /^2 validation errors detected: /);
      assert.ok(err.message.includes("Value '12ab' at 'usageRecords.1.member.customerAWSAccountId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+$"), err.message);
      assert.ok(err.message.includes("Value 'v~' at 'usageRecords.1.member.usageAllocations.1.member.tags.1.member.value' failed to satisfy constraint"), err.message);
    });

    it('a timestamp sent as a string: SerializationException', async () => {
      const client = srv.client(demo.seller);
      // Rewrite the serialized body before it is signed.
      const log = wire(client, (body) => body.replace(/"Timestamp":[0-9.e+]+/, '"Timestamp":"2026-01-01T00:00:00Z"'));
      await rejectsWith(client.send(new BatchMeterUsageCommand({
        ProductCode: demo.saasProduct, UsageRecords: [rec(demo.customer, 'users', 1, ts())],
      })), 'SerializationException', 400);
      assert.match(log.requestBody, /"Timestamp":"2026-01-01T00:00:00Z"/);
      const body = JSON.parse(log.responseBody);
      assert.equal(body.__type, 'SerializationException');
      assert.equal(typeof body.message, 'string');
      assert.equal(body.code, undefined);
    });

    it('an integer timestamp (as botocore sends) is accepted', async () => {
      const client = srv.client(demo.seller);
      const secs = Math.floor(hoursAgo(5).getTime() / 1000);
      const log = wire(client, (body) => body.replace(/"Timestamp":[0-9.e+]+/, `"Timestamp":${secs}`));
      const out = await client.send(new BatchMeterUsageCommand({
        ProductCode: demo.saasProduct, UsageRecords: [rec(demo.customer, 'gigabytes', 1, hoursAgo(5))],
      }));
      assert.match(log.requestBody, new RegExp(`"Timestamp":${secs}[,}]`));
      assert.equal(out.Results[0].Status, 'Success');
      assert.equal(out.Results[0].UsageRecord.Timestamp.getTime(), secs * 1000);
    });
  });

  describe('callers and regions', () => {
    const input = () => ({ ProductCode: demo.saasProduct, UsageRecords: [rec(demo.customer, 'users', 1, new Date(Date.now() - 1000))] });

    it('a region without BatchMeterUsage: DisabledApiException', async () => {
      const err = await rejectsWith(srv.client(demo.seller, 'us-gov-west-1').send(new BatchMeterUsageCommand(input())), 'DisabledApiException', 400);
      assert.match(err.message, /us-gov-west-1/);
      await rejectsWith(srv.client(demo.seller, 'eu-future-1').send(new BatchMeterUsageCommand(input())), 'DisabledApiException', 400);
    });

    it("the SDKs' endpoint data regions: eusc-de-east-1 and us-isob-east-1", async () => {
      for (const region of ['eusc-de-east-1', 'us-isob-east-1']) {
        // Any answer but DisabledApiException: the usage hour may be taken
        // by another test of this file.
        const out = await srv.client(demo.seller, region).send(new BatchMeterUsageCommand(input()));
        assert.equal(out.$metadata.httpStatusCode, 200, region);
        assert.equal(out.Results.length, 1, region);
      }
    });

    it('--regions offers more', async () => {
      const extended = await startServer(['--regions', 'eu-future-1']);
      try {
        const out = await extended.client(demo.seller, 'eu-future-1').send(new BatchMeterUsageCommand(input()));
        assert.equal(out.Results[0].Status, 'Success');
      } finally {
        await extended.stop();
      }
    });

    it('an unknown access key: UnrecognizedClientException', async () => {
      const err = await rejectsWith(
        srv.client({ accessKeyId: 'AKIANOSUCHKEY0000001', secretAccessKey: 'x' }).send(new BatchMeterUsageCommand(input())),
        'UnrecognizedClientException', 403);
      assert.equal(err.message, 'The security token included in the request is invalid.');
    });

    it('a wrong secret: InvalidSignatureException', async () => {
      const err = await rejectsWith(
        srv.client({ accessKeyId: demo.seller.accessKeyId, secretAccessKey: 'wrong-secret' }).send(new BatchMeterUsageCommand(input())),
        'InvalidSignatureException', 403);
      assert.ok(err.message.startsWith('The request signature we calculated does not match the signature you provided.'), err.message);
    });
  });
});
