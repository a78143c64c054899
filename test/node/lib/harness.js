// Shared harness of the Node.js end-to-end tests: the demo marketplace's
// names, a real `mpmeter serve --demo` child process per suite, AWS SDK for
// JavaScript v3 clients pointed at it, and helpers to see or change the bytes
// the SDK puts on the wire.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';

// The demo marketplace (mpmetertest/mpmetertest.go, seed/demo.yaml).
export const demo = Object.freeze({
  region: 'us-east-1',
  sellerAccount: '111122223333',
  seller: { accessKeyId: 'AKIAEXAMPLESELLER001', secretAccessKey: 'seller-secret' },
  otherSeller: { accessKeyId: 'AKIAEXAMPLEOTHER0001', secretAccessKey: 'other-secret' },
  buyerAccount: '444455556666',
  buyer: { accessKeyId: 'AKIAEXAMPLEBUYER0001', secretAccessKey: 'buyer-secret' },
  ec2: { accessKeyId: 'AKIAEXAMPLEEC2000001', secretAccessKey: 'ec2-secret' },
  ecs: { accessKeyId: 'AKIAEXAMPLEECS000001', secretAccessKey: 'ecs-secret' },
  eks: { accessKeyId: 'AKIAEXAMPLEEKS000001', secretAccessKey: 'eks-secret' },
  fargate: { accessKeyId: 'AKIAEXAMPLEFARGATE01', secretAccessKey: 'fargate-secret' },
  agent: { accessKeyId: 'AKIAEXAMPLEAGENT0001', secretAccessKey: 'agent-secret' },
  // Workloads of buyer 123456789012, whose subscriptions are cancelled.
  cancelledEc2: { accessKeyId: 'AKIAEXAMPLECANCEL001', secretAccessKey: 'cancelled-ec2-secret' },
  cancelledEcs: { accessKeyId: 'AKIAEXAMPLECANCEL002', secretAccessKey: 'cancelled-ecs-secret' },
  saasProduct: 'exampleprod1', // dimensions users, gigabytes
  amiProduct: 'exampleami1', // dimensions vcpu_hours, requests
  containerProduct: 'examplecontainer1', // dimensions pods, requests
  otherProduct: 'otherprod1', // Other Seller's SaaS product
  customer: 'cust-example-1',
  customerLicense: 'arn:aws:license-manager::444455556666:license/l-0123456789abcdef',
  cancelledCustomer: 'cust-cancelled-1',
  cancelledAccount: '123456789012',
  token: 'demo-token-1',
  tokenCancelled: 'demo-token-cancelled',
  tokenOther: 'demo-token-other',
  tokenExpired: 'demo-token-expired',
});

const here = dirname(fileURLToPath(import.meta.url));
export const packageDir = join(here, '..');

// The mpmeter binary: MPMETER_BIN, or where run.sh builds it.
export function binaryPath() {
  const bin = process.env.MPMETER_BIN || join(tmpdir(), 'mpmeter-node', 'mpmeter');
  if (!existsSync(bin)) {
    throw new Error(`mpmeter binary ${bin} not found: run ./run.sh, or build it and set MPMETER_BIN`);
  }
  return bin;
}

const READY = /^mpmeter: serving the AWS Marketplace Metering API at (http:\/\/127\.0\.0\.1:\d+)\s*$/m;

// startServer runs `mpmeter serve --demo` on a free port with a fresh SQLite
// file and resolves when it answers /healthz. extraArgs are added flags.
// Call stop() (in after()) to end it and remove its files.
export async function startServer(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'mpmeter-node-'));
  const db = join(dir, 'mpmeter.db');
  // The server reads flags from MPMETER_<FLAG> variables too: leave none of
  // the caller's in, so the flags below are all the configuration there is.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPMETER_')));
  const args = ['serve', '--demo', '--listen', '127.0.0.1:0', '--db', db, '--log-level', 'warn', ...extraArgs];
  const child = spawn(binaryPath(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  // Never leave a server behind, even when a test process dies before after().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  exited.then(() => process.off('exit', killOnExit));

  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('no "serving" line within 20s')), 20_000);
    function fail(err) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`mpmeter ${args.join(' ')}: ${err.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }
    const early = (code, signal) => fail(new Error(`exited early (code ${code}, signal ${signal})`));
    child.once('error', fail);
    child.once('exit', early);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = READY.exec(stdout);
      if (m) {
        clearTimeout(timer);
        child.off('exit', early);
        resolve(m[1]);
      }
    });
  });

  // Poll /healthz until it answers 200.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await fetch(`${endpoint}/healthz`);
      const text = await res.text();
      if (res.status === 200) {
        assert.equal(JSON.parse(text).status, 'ok'); // with the build: version, commit, date
        break;
      }
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mpmeter at ${endpoint}: /healthz never answered 200\nstderr:\n${stderr}`);
    }
    await sleep(50);
  }

  return {
    endpoint,
    db,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    // client makes a JS v3 client for this server, retries off so each test
    // sees the first answer.
    client(credentials, region = demo.region) {
      return new MarketplaceMeteringClient({ endpoint, region, credentials, maxAttempts: 1 });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// rejectsWith awaits promise, asserts it fails with the AWS error name and
// HTTP status, that the SDK saw a request id, and returns the error.
export async function rejectsWith(promise, name, status = 400) {
  let err;
  try {
    const out = await promise;
    assert.fail(`expected ${name}, got success: ${JSON.stringify(out)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.equal(err.name, name, `error name (message: ${err.message})`);
  assert.equal(err.$metadata?.httpStatusCode, status, `${name}: HTTP status`);
  assert.match(err.$metadata?.requestId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${name}: request id`);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, `${name}: empty message`);
  return err;
}

// wire adds middleware to client that records what crossed the wire (the
// request body the SDK signed, the response status, headers and body) and,
// when rewrite is given, replaces the serialized request body before it is
// signed. It returns the log, which holds the last exchange.
export function wire(client, rewrite) {
  const log = { requestBody: undefined, status: undefined, headers: undefined, responseBody: undefined };
  client.middlewareStack.add(
    (next) => async (args) => {
      // The serializer leaves a string or bytes; the signer signs either.
      let body = args.request.body;
      if (body instanceof Uint8Array) body = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
      if (rewrite) {
        body = rewrite(body);
        args.request.body = body;
        args.request.headers['content-length'] = String(Buffer.byteLength(body));
      }
      log.requestBody = body;
      return next(args);
    },
    { step: 'build', priority: 'high', name: 'mpmeterRewriteBody' },
  );
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const res = result.response;
      const chunks = [];
      for await (const c of res.body) chunks.push(Buffer.from(c));
      const bytes = Buffer.concat(chunks);
      res.body = new Uint8Array(bytes);
      log.status = res.statusCode;
      log.headers = res.headers;
      log.responseBody = bytes.toString('utf8');
      return result;
    },
    { step: 'deserialize', priority: 'low', name: 'mpmeterCaptureResponse' },
  );
  return log;
}

// hoursAgo is a usage timestamp n hours before now, minus a little so that
// it is never in the future; distinct n are distinct dedup hours.
export function hoursAgo(n, extraMs = 1500) {
  return new Date(Date.now() - n * 3_600_000 - extraMs);
}

export const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
