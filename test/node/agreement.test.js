// The AWS Marketplace Agreement Service's read side (DescribeAgreement,
// GetAgreementTerms, SearchAgreements) through the AWS SDK for JavaScript
// v3 in both protocols it speaks: its default awsJson 1.0 and Smithy RPC v2
// CBOR (the `protocol` option), on the demo marketplace's subscriptions.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  MarketplaceAgreementClient, DescribeAgreementCommand, GetAgreementTermsCommand, SearchAgreementsCommand,
  paginateSearchAgreements,
} from '@aws-sdk/client-marketplace-agreement';
import { AwsSmithyRpcV2CborProtocol } from '@aws-sdk/core/protocols';

import { demo, startServer, rejectsWith } from './lib/harness.js';

const proposer = [{ name: 'PartyType', values: ['Proposer'] }];

for (const protocol of ['awsJson1_0', 'rpcv2Cbor']) {
  describe(`Agreement Service, JS v3, ${protocol}`, () => {
    let srv;
    const client = (credentials = demo.seller, region = demo.region) => new MarketplaceAgreementClient({
      endpoint: srv.endpoint, region, credentials, maxAttempts: 1,
      ...(protocol === 'rpcv2Cbor' ? { protocol: AwsSmithyRpcV2CborProtocol } : {}),
    });
    before(async () => { srv = await startServer(); });
    after(() => srv?.stop());

    // The seller's agreement for the demo SaaS product, found by search.
    const paygAgreement = async () => {
      const out = await client().send(new SearchAgreementsCommand({
        filters: [...proposer, { name: 'ResourceIdentifier', values: [demo.saasProduct] }, { name: 'Status', values: ['ACTIVE'] }],
      }));
      assert.equal(out.agreementViewSummaries.length, 1);
      return out.agreementViewSummaries[0];
    };

    it('searches the seller\'s agreements and describes one, on the wire protocol chosen', async () => {
      const c = client();
      let seen;
      c.middlewareStack.add((next) => async (args) => {
        seen = { path: args.request.path, headers: { ...args.request.headers } };
        return next(args);
      }, { step: 'finalizeRequest', priority: 'low', name: 'mpmeterCapture' });
      const summary = await paygAgreement();
      assert.match(summary.agreementId, /^agmt-[0-9a-v]{25}$/);
      assert.equal(summary.acceptor.accountId, demo.buyerAccount);
      assert.equal(summary.proposer.accountId, demo.sellerAccount);
      assert.equal(summary.status, 'ACTIVE');
      assert.equal(summary.endTime, undefined);
      const out = await c.send(new DescribeAgreementCommand({ agreementId: summary.agreementId }));
      assert.equal(out.agreementId, summary.agreementId);
      assert.equal(out.agreementType, 'PurchaseAgreement');
      assert.ok(out.startTime instanceof Date);
      assert.equal(out.proposalSummary.resources[0].type, 'SaaSProduct');
      assert.deepEqual(out.estimatedCharges, { currencyCode: 'USD', agreementValue: '0' });
      if (protocol === 'rpcv2Cbor') {
        assert.equal(seen.path, '/service/AWSMPCommerceService_v20200301/operation/DescribeAgreement');
        assert.equal(seen.headers['content-type'], 'application/cbor');
      } else {
        assert.equal(seen.headers['x-amz-target'], 'AWSMPCommerceService_v20200301.DescribeAgreement');
        assert.equal(seen.headers['content-type'], 'application/x-amz-json-1.0');
      }
    });

    it('answers the terms: usage-based pricing with the product\'s dimensions', async () => {
      const { agreementId } = await paygAgreement();
      const out = await client().send(new GetAgreementTermsCommand({ agreementId }));
      const usage = out.acceptedTerms[0].usageBasedPricingTerm;
      assert.equal(usage.type, 'UsageBasedPricingTerm');
      assert.deepEqual(usage.rateCards[0].rateCard.map((r) => r.dimensionKey), ['users', 'gigabytes']);
      assert.ok(out.acceptedTerms[1].validityTerm.agreementStartDate instanceof Date);
    });

    it('pages with the paginator, in EndTime order, the same as one page', async () => {
      const whole = (await client().send(new SearchAgreementsCommand({ filters: proposer }))).agreementViewSummaries.map((s) => s.agreementId);
      const paged = [];
      for await (const page of paginateSearchAgreements({ client: client(), pageSize: 2 }, { filters: proposer })) {
        assert.ok(page.agreementViewSummaries.length <= 2);
        paged.push(...page.agreementViewSummaries.map((s) => s.agreementId));
      }
      assert.deepEqual(paged, whole);
      assert.ok(whole.length >= 5);
    });

    it('errors: not a party, PartyType missing, model constraints, region', async () => {
      const { agreementId } = await paygAgreement();
      let err = await rejectsWith(client(demo.otherSeller).send(new DescribeAgreementCommand({ agreementId })), 'ResourceNotFoundException', 400);
      assert.equal(err.resourceId, agreementId);
      assert.equal(err.resourceType, 'Agreement');
      err = await rejectsWith(client().send(new SearchAgreementsCommand({ filters: [{ name: 'AgreementType', values: ['PurchaseAgreement'] }] })), 'ValidationException', 400);
      assert.equal(err.reason, 'MISSING_PARTY_TYPE');
      err = await rejectsWith(client().send(new SearchAgreementsCommand({ filters: proposer, maxResults: 0 })), 'ValidationException', 400);
      assert.equal(err.reason, 'INVALID_MAX_RESULTS');
      assert.equal(err.fields[0].name, 'maxResults');
      await rejectsWith(client(demo.seller, 'eu-west-1').send(new SearchAgreementsCommand({ filters: proposer })), 'DisabledApiException', 400);
    });
  });
}
