// SNS notifications checked by AWS's own JavaScript validator, sns-validator
// (github.com/aws/aws-js-sns-message-validator), pointed at mpmeter's
// certificate host with its hostPattern argument: the SubscriptionConfirmation
// handshake and a subscribe-success Notification, for SignatureVersion 1 and
// 2, against a real `mpmeter serve` over HTTPS (the validator fetches the
// SigningCertURL over https only).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import MessageValidator from 'sns-validator';

import { binaryPath, demo } from './lib/harness.js';

const adminToken = 'node-sns-admin-token';
const dir = mkdtempSync(join(tmpdir(), 'mpmeter-node-sns-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A certificate for 127.0.0.1: mpmeter serves HTTPS with it, and this
// process trusts it (the validator uses https.get).
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
  '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
const ca = readFileSync(join(dir, 'cert.pem'));
https.globalAgent.options.ca = ca;

// The seller's SNS endpoint: every body it is POSTed, in order.
function snsEndpoint() {
  const bodies = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      bodies.push({ headers: req.headers, body });
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, bodies, url: `http://127.0.0.1:${server.address().port}/sns` })));
}

async function startTLSServer(signatureVersion) {
  const args = ['serve', '--demo', '--listen', '127.0.0.1:0', '--db', join(dir, `sv${signatureVersion}.db`), '--log-level', 'warn',
    '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'), '--admin-token', adminToken,
    '--sns-signature-version', signatureVersion];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPMETER_')));
  const child = spawn(binaryPath(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/serving the AWS Marketplace Metering API at (https:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`mpmeter exited ${code}: ${out}`)));
  });
  after(() => child.kill('SIGKILL'));
  return url;
}

async function admin(base, method, path, body) {
  const res = await fetchTLS(base + '/admin/v1' + path, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text || '{}');
}

// fetchTLS is an https request trusting the test certificate (fetch has no
// per-call CA).
function fetchTLS(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(what, cond) {
  for (let i = 0; i < 300; i++) {
    const v = cond();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The validator, told to trust mpmeter's host instead of sns.<region>.amazonaws.com.
const validator = new MessageValidator(/^127\.0\.0\.1:\d+$/);
const validate = (body) => new Promise((resolve, reject) => validator.validate(body, (err, msg) => (err ? reject(err) : resolve(msg))));

for (const signatureVersion of ['1', '2']) {
  test(`SNS SignatureVersion ${signatureVersion}: confirmation and subscribe-success pass sns-validator`, async () => {
    const endpoint = await snsEndpoint();
    after(() => endpoint.server.close());
    const base = await startTLSServer(signatureVersion);

    await admin(base, 'POST', '/sns-subscriptions', { product_code: demo.saasProduct, topic: 'subscription', protocol: 'http', endpoint: endpoint.url });
    const confirmation = await waitFor('the SubscriptionConfirmation', () => endpoint.bodies[0]);
    assert.equal(confirmation.headers['x-amz-sns-message-type'], 'SubscriptionConfirmation');
    assert.equal(confirmation.headers['content-type'], 'text/plain; charset=UTF-8');
    const conf = await validate(confirmation.body);
    assert.equal(conf.SignatureVersion, signatureVersion);
    assert.match(conf.SigningCertURL, /^https:\/\/127\.0\.0\.1:\d+\/sns\/SimpleNotificationService-[0-9a-f]{32}\.pem$/);
    const visited = await fetchTLS(conf.SubscribeURL);
    assert.equal(visited.status, 200);
    assert.match(visited.text, /<ConfirmSubscriptionResponse xmlns="http:\/\/sns.amazonaws.com\/doc\/2010-03-31\/">/);

    await admin(base, 'POST', '/accounts', { id: '210987654321' });
    const sub = await admin(base, 'POST', '/subscriptions', { account_id: '210987654321', product_code: demo.saasProduct, free_trial: true });
    const note = await waitFor('subscribe-success', () => endpoint.bodies[1]);
    assert.equal(note.headers['x-amz-sns-message-type'], 'Notification');
    assert.match(note.headers['x-amz-sns-subscription-arn'], /^arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-exampleprod1:[0-9a-f-]{36}$/);
    const msg = await validate(note.body);
    assert.deepEqual(JSON.parse(msg.Message), {
      action: 'subscribe-success', 'customer-identifier': sub.customer_identifier, 'product-code': demo.saasProduct, isFreeTrialTermPresent: 'true',
    });

    // A message changed on the way fails the same validator.
    const tampered = JSON.parse(note.body);
    tampered.Message = tampered.Message.replace('subscribe-success', 'unsubscribe-success');
    await assert.rejects(validate(tampered), /signature is invalid/);
  });
}
