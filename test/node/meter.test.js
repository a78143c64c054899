// MeterUsage through the AWS SDK for JavaScript v3, called as the buyer's
// workloads (EC2 instance, ECS task, AgentCore runtime) do.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MeterUsageCommand } from '@aws-sdk/client-marketplace-metering';

import { demo, startServer, rejectsWith, wire, hoursAgo, uuidRe } from './lib/harness.js';

describe('MeterUsage', () => {
  let srv;
  let ec2;
  before(async () => {
    srv = await startServer();
    ec2 = srv.client(demo.ec2);
  });
  after(() => srv?.stop());

  const meter = (input, client = ec2) => client.send(new MeterUsageCommand({ ProductCode: demo.amiProduct, ...input }));

  it('meters, answers a retry with the same id, and DuplicateRequestException for another quantity', async () => {
    const ts = new Date(hoursAgo(1).getTime() - 7);
    const client = srv.client(demo.ec2);
    const log = wire(client);
    const input = { Timestamp: ts, UsageDimension: 'vcpu_hours', UsageQuantity: 4 };
    const out = await meter(input, client);
    assert.equal(out.$metadata.httpStatusCode, 200);
    assert.match(out.MeteringRecordId, uuidRe);
    const sent = JSON.parse(log.requestBody);
    assert.equal(sent.Timestamp, ts.getTime() / 1000);
    assert.ok(!Number.isInteger(sent.Timestamp));
    assert.deepEqual(Object.keys(JSON.parse(log.responseBody)), ['MeteringRecordId']);

    const again = await meter(input);
    assert.equal(again.MeteringRecordId, out.MeteringRecordId);

    const err = await rejectsWith(meter({ ...input, UsageQuantity: 5 }), 'DuplicateRequestException', 400);
    assert.match(err.message, /vcpu_hours/);

    // The other dimension of the same hour is its own record.
    const other = await meter({ ...input, UsageDimension: 'requests' });
    assert.match(other.MeteringRecordId, uuidRe);
    assert.notEqual(other.MeteringRecordId, out.MeteringRecordId);
  });

  it('ClientToken: a retry answers the first answer; other parameters are IdempotencyConflictException', async () => {
    const ts = hoursAgo(2);
    const token = `token-${process.pid}-${Date.now()}`;
    const input = { Timestamp: ts, UsageDimension: 'requests', UsageQuantity: 5, ClientToken: token };
    const out = await meter(input);
    assert.match(out.MeteringRecordId, uuidRe);
    const again = await meter(input);
    assert.equal(again.MeteringRecordId, out.MeteringRecordId);
    const err = await rejectsWith(meter({ ...input, UsageQuantity: 6 }), 'IdempotencyConflictException', 400);
    assert.ok(err.message.includes(token), err.message);
    await rejectsWith(meter({ ...input, Timestamp: hoursAgo(3) }), 'IdempotencyConflictException', 400);
  });

  it('DryRun: 200 MeteringRecordId "DryRunOperation" when the call would succeed, and nothing is stored', async () => {
    const ts = hoursAgo(4);
    const client = srv.client(demo.ec2);
    const log = wire(client);
    const dry = await meter({ Timestamp: ts, UsageDimension: 'vcpu_hours', UsageQuantity: 1, DryRun: true }, client);
    assert.equal(dry.$metadata.httpStatusCode, 200);
    assert.equal(dry.MeteringRecordId, 'DryRunOperation');
    assert.deepEqual(JSON.parse(log.responseBody), { MeteringRecordId: 'DryRunOperation' });
    // Nothing was stored: another quantity in that hour succeeds.
    const token = `dry-${process.pid}-${Date.now()}`;
    const out = await meter({ Timestamp: ts, UsageDimension: 'vcpu_hours', UsageQuantity: 2, ClientToken: token });
    assert.match(out.MeteringRecordId, uuidRe);
    // DryRun=false is a real call: the same request again answers the same id.
    const real = await meter({ Timestamp: ts, UsageDimension: 'vcpu_hours', UsageQuantity: 2, DryRun: false });
    assert.equal(real.MeteringRecordId, out.MeteringRecordId);
    // The stored hour and token: a DryRun answers what the real call would.
    const again = await meter({ Timestamp: ts, UsageDimension: 'vcpu_hours', UsageQuantity: 2, DryRun: true });
    assert.equal(again.MeteringRecordId, 'DryRunOperation');
    await rejectsWith(meter({ Timestamp: ts, UsageDimension: 'vcpu_hours', UsageQuantity: 3, DryRun: true }), 'DuplicateRequestException', 400);
    await rejectsWith(meter({ Timestamp: hoursAgo(5), UsageDimension: 'vcpu_hours', UsageQuantity: 3, ClientToken: token, DryRun: true }), 'IdempotencyConflictException', 400);
  });

  it('DryRun does not hide errors', async () => {
    await rejectsWith(meter({ ProductCode: 'nosuchproduct', Timestamp: new Date(), UsageDimension: 'vcpu_hours', UsageQuantity: 1, DryRun: true }), 'InvalidProductCodeException', 400);
    await rejectsWith(meter({ Timestamp: new Date(), UsageDimension: 'cpus', UsageQuantity: 1, DryRun: true }), 'InvalidUsageDimensionException', 400);
    await rejectsWith(meter({ Timestamp: hoursAgo(7), UsageDimension: 'vcpu_hours', UsageQuantity: 1, DryRun: true }), 'TimestampOutOfBoundsException', 400);
    await rejectsWith(meter({ Timestamp: new Date(), UsageDimension: 'vcpu_hours', UsageQuantity: 1, DryRun: true }, srv.client(demo.cancelledEc2)), 'CustomerNotEntitledException', 400);
  });

  it('an endpoint in another region than the workload: InvalidEndpointRegionException', async () => {
    const err = await rejectsWith(meter({ Timestamp: new Date(Date.now() - 1000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }, srv.client(demo.ec2, 'us-west-2')),
      'InvalidEndpointRegionException', 400);
    assert.match(err.message, /us-west-2/);
  });

  it('GovCloud offers MeterUsage (not DisabledApi), but not for a us-east-1 workload', async () => {
    await rejectsWith(meter({ Timestamp: new Date(Date.now() - 1000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }, srv.client(demo.ec2, 'us-gov-west-1')),
      'InvalidEndpointRegionException', 400);
  });

  it('a region without MeterUsage: DisabledApiException', async () => {
    await rejectsWith(meter({ Timestamp: new Date(Date.now() - 1000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }, srv.client(demo.ec2, 'cn-northwest-1')),
      'DisabledApiException', 400);
  });

  it('CustomerNotEntitledException for a buyer whose subscription is cancelled', async () => {
    const err = await rejectsWith(meter({ Timestamp: new Date(Date.now() - 1000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }, srv.client(demo.cancelledEc2)),
      'CustomerNotEntitledException', 400);
    assert.match(err.message, /123456789012/);
  });

  it('errors of the request', async () => {
    const now = () => new Date(Date.now() - 1000);
    await rejectsWith(meter({ ProductCode: demo.saasProduct, Timestamp: now(), UsageDimension: 'users', UsageQuantity: 1 }), 'InvalidProductCodeException', 400);
    await rejectsWith(meter({ ProductCode: 'nosuchproduct', Timestamp: now(), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }), 'InvalidProductCodeException', 400);
    await rejectsWith(meter({ Timestamp: now(), UsageDimension: 'pods', UsageQuantity: 1 }), 'InvalidUsageDimensionException', 400);
    await rejectsWith(meter({ Timestamp: hoursAgo(6, 60_000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }), 'TimestampOutOfBoundsException', 400);
    await rejectsWith(meter({ Timestamp: new Date(Date.now() + 1_200_000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }), 'TimestampOutOfBoundsException', 400);
    await rejectsWith(meter({
      Timestamp: now(), UsageDimension: 'vcpu_hours', UsageQuantity: 3,
      UsageAllocations: [{ AllocatedUsageQuantity: 1, Tags: [{ Key: 'team', Value: 'a' }] }],
    }), 'InvalidUsageAllocationsException', 400);
    await rejectsWith(meter({
      Timestamp: now(), UsageDimension: 'vcpu_hours', UsageQuantity: 3,
      UsageAllocations: [{ AllocatedUsageQuantity: 3, Tags: [{ Key: 'team', Value: 'a' }, { Key: 'team', Value: 'b' }] }],
    }), 'InvalidTagException', 400);
  });

  it('validation in the AWS message format', async () => {
    let err = await rejectsWith(meter({ UsageDimension: '', UsageQuantity: -1 }), 'ValidationException', 400);
    assert.match(err.message, /^\d+ validation errors detected: /);
    assert.ok(err.message.includes("Value null at 'timestamp' failed to satisfy constraint: Member must not be null"), err.message);
    assert.ok(err.message.includes("Value '' at 'usageDimension' failed to satisfy constraint: Member must have length greater than or equal to 1"), err.message);
    assert.ok(err.message.includes("Value '-1' at 'usageQuantity' failed to satisfy constraint: Member must have value greater than or equal to 0"), err.message);
    err = await rejectsWith(meter({ Timestamp: new Date(), UsageDimension: 'vcpu_hours', ClientToken: 'x'.repeat(65) }), 'ValidationException', 400);
    assert.ok(err.message.includes("at 'clientToken' failed to satisfy constraint: Member must have length less than or equal to 64"), err.message);
    err = await rejectsWith(meter({ Timestamp: new Date(), UsageDimension: 'vcpu_hours', UsageQuantity: 1, UsageAllocations: [] }), 'ValidationException', 400);
    assert.ok(err.message.includes("at 'usageAllocations' failed to satisfy constraint: Member must have length greater than or equal to 1"), err.message);
  });

  it('a key that belongs to no workload: AccessDeniedException', async () => {
    for (const creds of [demo.seller, demo.buyer]) {
      const err = await rejectsWith(meter({ Timestamp: new Date(Date.now() - 1000), UsageDimension: 'vcpu_hours', UsageQuantity: 1 }, srv.client(creds)), 'AccessDeniedException', 400);
      assert.ok(err.message.includes(creds.accessKeyId), err.message);
    }
  });

  it('an ECS task meters its container product', async () => {
    const ecs = srv.client(demo.ecs);
    const ts = hoursAgo(1);
    const out = await ecs.send(new MeterUsageCommand({ ProductCode: demo.containerProduct, Timestamp: ts, UsageDimension: 'pods', UsageQuantity: 3 }));
    assert.match(out.MeteringRecordId, uuidRe);
    // Hourly dedup is per workload: the EKS pod's record for the same hour is its own.
    const eks = await srv.client(demo.eks).send(new MeterUsageCommand({ ProductCode: demo.containerProduct, Timestamp: ts, UsageDimension: 'pods', UsageQuantity: 9 }));
    assert.match(eks.MeteringRecordId, uuidRe);
    assert.notEqual(eks.MeteringRecordId, out.MeteringRecordId);
    await rejectsWith(ecs.send(new MeterUsageCommand({ ProductCode: demo.containerProduct, Timestamp: ts, UsageDimension: 'pods', UsageQuantity: 4 })), 'DuplicateRequestException', 400);
  });

  it('an AgentCore runtime may meter many times an hour: distinct ids', async () => {
    const agent = srv.client(demo.agent);
    const ts = hoursAgo(1);
    const ids = [];
    for (const q of [1, 2, 3]) {
      const out = await agent.send(new MeterUsageCommand({ ProductCode: demo.amiProduct, Timestamp: new Date(ts.getTime() + q), UsageDimension: 'requests', UsageQuantity: q }));
      assert.match(out.MeteringRecordId, uuidRe);
      ids.push(out.MeteringRecordId);
    }
    assert.equal(new Set(ids).size, 3, `ids ${ids}`);
    // With a ClientToken, a retry is still one record.
    const input = { ProductCode: demo.amiProduct, Timestamp: ts, UsageDimension: 'requests', UsageQuantity: 10, ClientToken: `agent-${Date.now()}` };
    const first = await agent.send(new MeterUsageCommand(input));
    const retry = await agent.send(new MeterUsageCommand(input));
    assert.equal(retry.MeteringRecordId, first.MeteringRecordId);
    assert.ok(!ids.includes(first.MeteringRecordId));
  });
});
