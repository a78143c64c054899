// Fault injection against the AWS SDK for JavaScript v3's default retry
// strategy (standard, 3 attempts): every error fault kind is retried, the
// call succeeds on the third attempt, the server saw three attempts and
// stored one record (docs/retries.md).
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

import { MarketplaceMeteringClient, MeterUsageCommand, BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, hoursAgo } from './lib/harness.js';

const adminToken = 'node-faults-token';

describe('fault injection', () => {
  let srv;
  before(async () => { srv = await startServer(['--admin-token', adminToken, '--metrics-on-api']); });
  after(() => srv?.stop());

  const admin = async (method, path, body) => {
    const res = await fetch(`${srv.endpoint}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  // metric sums the series of name whose labels include labels.
  const metric = async (name, labels) => {
    const text = await (await fetch(`${srv.endpoint}/metrics`)).text();
    let total = 0;
    for (const line of text.split('\n')) {
      const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      if (Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) total += Number(m[3]);
    }
    return total;
  };
  // The AgentCore runtime's MeterUsage: every call is its own record, so a
  // faulted attempt that stored anything would be counted twice.
  const meter = (client) => client.send(new MeterUsageCommand({
    ProductCode: demo.containerProduct, Timestamp: hoursAgo(0), UsageDimension: 'requests', UsageQuantity: 1,
  }));
  const defaultClient = () => new MarketplaceMeteringClient({ endpoint: srv.endpoint, region: demo.region, credentials: demo.agent });

  beforeEach(async () => { assert.equal((await admin('DELETE', '/faults')).status, 200); });

  for (const kind of ['throttling', 'internal_error', 'service_unavailable', 'drop_connection']) {
    it(`default retry strategy rides out two ${kind} faults, storing once`, async () => {
      const created = await admin('POST', '/faults', { operation: 'MeterUsage', kind, count: 2 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const attemptsBefore = await metric('mpmeter_requests_total', { operation: 'MeterUsage' });
      const storedBefore = await metric('mpmeter_records_total', { operation: 'MeterUsage', outcome: 'accepted' });
      const out = await meter(defaultClient());
      assert.equal(out.$metadata.attempts, 3, 'SDK attempts');
      assert.equal(await metric('mpmeter_requests_total', { operation: 'MeterUsage' }) - attemptsBefore, 3, 'attempts the server saw');
      assert.equal(await metric('mpmeter_records_total', { operation: 'MeterUsage', outcome: 'accepted' }) - storedBefore, 1, 'records stored');
      const rule = await admin('GET', `/faults/${created.body.id}`);
      assert.equal(rule.body.remaining, 0);
    });
  }

  it('gives up after three attempts with the fault\'s error', async () => {
    await admin('POST', '/faults', { operation: 'MeterUsage', kind: 'throttling', count: 3 });
    const err = await rejectsWith(meter(defaultClient()), 'ThrottlingException', 400);
    assert.equal(err.$metadata.attempts, 3);
  });

  it('UnprocessedRecords come back and are resent', async () => {
    await admin('POST', '/faults', { operation: 'BatchMeterUsage', kind: 'unprocessed_records', count: 1 });
    const seller = new MarketplaceMeteringClient({ endpoint: srv.endpoint, region: demo.region, credentials: demo.seller });
    const recs = [
      { CustomerIdentifier: demo.customer, Dimension: 'users', Quantity: 4, Timestamp: hoursAgo(3) },
      { CustomerIdentifier: demo.customer, Dimension: 'gigabytes', Quantity: 5, Timestamp: hoursAgo(3) },
    ];
    const out = await seller.send(new BatchMeterUsageCommand({ ProductCode: demo.saasProduct, UsageRecords: recs }));
    assert.equal(out.Results.length, 1);
    assert.equal(out.UnprocessedRecords.length, 1);
    assert.equal(out.UnprocessedRecords[0].Quantity, 4);
    const again = await seller.send(new BatchMeterUsageCommand({ ProductCode: demo.saasProduct, UsageRecords: out.UnprocessedRecords }));
    assert.deepEqual(again.Results.map((r) => r.Status), ['Success']);
    assert.equal(again.UnprocessedRecords.length, 0);
  });
});
