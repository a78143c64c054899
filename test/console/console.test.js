// The web console in a real browser (issue 15): playwright-core drives
// Debian's chromium against a real `mpmeter serve`, through the whole buyer
// loop — log in, create a buyer and subscribe it in the buyer simulator, the
// registration token reaches a landing server on localhost (when the server
// sends fulfillment POSTs) or is issued on the page, ResolveCustomer and
// BatchMeterUsage through the AWS CLI, the usage chart and the call log show
// them, cancel, and the notifications arrive (when the server sends them).
// Every page is checked with axe-core (no serious or critical violation)
// and saved as a screenshot into $CONSOLE_SCREENSHOTS (or a new temporary
// directory, printed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const TOKEN = 'console-test-admin-token';
const SELLER = { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLESELLER001', AWS_SECRET_ACCESS_KEY: 'seller-secret', AWS_DEFAULT_REGION: 'us-east-1' };
const BUYER = '210987654321';
const PRODUCT = 'consoleprod1';

const shots = process.env.CONSOLE_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'mpmeter-console-shots-'));
mkdirSync(shots, { recursive: true });

let dir, server, endpoint, landing, landingURL, browser, page;
const received = []; // what the landing server got: {path, headers, body}
let features = { fulfillment: false, notifications: false };

// waitFor polls fn until it returns something truthy (bounded).
async function waitFor(what, fn, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function adminAPI(method, path, body) {
  const res = await fetch(`${endpoint}/admin/v1${path}`, {
    method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function aws(...args) {
  const { stdout } = await run('aws', ['meteringmarketplace', ...args, '--endpoint-url', endpoint, '--output', 'json'],
    { env: { ...process.env, ...SELLER, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' } });
  return JSON.parse(stdout);
}

// check runs axe on the page (no serious or critical violation) and saves
// its screenshot.
async function check(name) {
  // Evaluated through the DevTools protocol: the console's CSP allows no
  // injected script tag, and the test keeps the CSP on.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), [], `axe on ${name}`);
}

const h1 = () => page.locator('h1').innerText();

// open follows a link of the console's navigation and waits until the new
// page has loaded. A click only starts the navigation: a reload or a
// locator issued while it is in flight races it ("Not attached to an active
// page" from page.reload, seen in CI).
async function open(name) {
  const link = page.getByRole('link', { name, exact: true });
  const href = new URL(await link.getAttribute('href'), page.url()).href;
  await link.click();
  await page.waitForURL(href);
}

before(async () => {
  // The seller's landing page and SNS endpoint.
  landing = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
      received.push({ path: req.url, method: req.method, headers: req.headers, body });
      if (req.headers['x-amz-sns-message-type'] === 'SubscriptionConfirmation') {
        await fetch(JSON.parse(body).SubscribeURL); // confirm, as a seller's endpoint does
      }
      if (req.url.startsWith('/landing')) {
        res.writeHead(302, { Location: '/welcome' });
        return res.end();
      }
      res.end('ok');
    });
  });
  await new Promise((resolve) => landing.listen(0, '127.0.0.1', resolve));
  landingURL = `http://127.0.0.1:${landing.address().port}`;

  dir = mkdtempSync(join(tmpdir(), 'mpmeter-console-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPMETER_')));
  const bin = process.env.MPMETER_BIN;
  assert.ok(bin, 'MPMETER_BIN is the mpmeter binary (run.sh builds it)');
  server = spawn(bin, ['serve', '--demo', '--listen', '127.0.0.1:0', '--db', join(dir, 'mpmeter.db'), '--admin-token', TOKEN, '--log-level', 'warn'],
    { env, stdio: ['ignore', 'pipe', 'inherit'] });
  process.once('exit', () => server.kill('SIGKILL'));
  endpoint = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no serving line: ${out}`)), 20_000);
    server.stdout.setEncoding('utf8');
    server.stdout.on('data', (d) => {
      out += d;
      const m = /serving the AWS Marketplace Metering API at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  await waitFor('/healthz', async () => (await fetch(`${endpoint}/healthz`).catch(() => ({}))).status === 200);

  // What this server can do: fulfillment POSTs and notifications arrived
  // with the notifications work (issue 15); the test asserts them when the
  // admin API offers them.
  const openapi = await (await fetch(`${endpoint}/admin/v1/openapi.json`, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
  features = { fulfillment: openapi.includes('fulfillment_url'), notifications: openapi.includes('/sns-subscriptions') };
  console.log(`# server features: ${JSON.stringify(features)}`);

  const product = { code: PRODUCT, seller_account_id: '111122223333', type: 'saas', dimensions: [{ name: 'users', unit: 'Users', price_per_unit: '0.05' }] };
  if (features.fulfillment) product.fulfillment_url = `${landingURL}/landing`;
  await adminAPI('POST', '/products', product);
  if (features.notifications) {
    await adminAPI('POST', '/sns-subscriptions', { product_code: PRODUCT, topic: 'subscription', protocol: 'http', endpoint: `${landingURL}/sns` });
    await waitFor('the SNS subscription confirmed', async () =>
      (await adminAPI('GET', `/sns-subscriptions?product_code=${PRODUCT}`)).items.every((s) => s.confirmed_at));
  }

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } }); // a laptop screen
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (err) => { throw err; });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  landing?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`# screenshots: ${shots}`);
});

test('the console without a login is the login page, and the login takes the admin token by keyboard', async () => {
  await page.goto(`${endpoint}/console/`);
  assert.equal(await h1(), 'Log in');
  await check('01-login');
  await page.keyboard.type('not-the-token'); // the token field has the focus
  await page.keyboard.press('Enter');
  await page.waitForSelector('.error');
  assert.match(await page.locator('.error').innerText(), /not the admin token/);
  await page.locator('#token').fill(TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${endpoint}/console/`);
  assert.equal(await h1(), 'Overview');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'mpmeter_console');
  assert.ok(cookie.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(cookie.sameSite, 'Strict');
});

test('a form post without the CSRF token is refused', async () => {
  const status = await page.evaluate(async () =>
    (await fetch('/console/keys', { method: 'POST', body: new URLSearchParams({ action: 'rotate' }) })).status);
  assert.equal(status, 403);
});

let agreement, customer, token;

test('the buyer simulator creates a buyer and subscribes it with a free trial', async () => {
  await open('Customers & subscriptions');
  await page.locator('#acct-id').fill(BUYER);
  await page.locator('#acct-name').fill('Console Buyer');
  await page.getByRole('button', { name: 'Create account' }).click();
  assert.match(await page.locator('.flash').innerText(), new RegExp(`Account ${BUYER} created`));

  await page.locator('#sub-account').selectOption(BUYER);
  await page.locator('#sub-product').selectOption(PRODUCT);
  await page.locator('#sub-trial').check();
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  assert.match(await page.locator('.flash').innerText(), new RegExp(`Buyer ${BUYER} subscribed to ${PRODUCT}`));
  const row = page.locator(`tr[data-account="${BUYER}"][data-product="${PRODUCT}"]`);
  agreement = await row.getAttribute('data-agreement');
  assert.match(agreement, /^agmt-/);
  assert.equal(await row.locator('.status').innerText(), 'active');
  assert.match(await row.innerText(), /free trial/);
  // "Open landing page" only where the product has a fulfillment URL: this
  // product's (when the server has them), never the demo's (none has one).
  assert.equal(await row.getByRole('button', { name: `Open landing page for ${agreement}` }).count(), features.fulfillment ? 1 : 0);
  const demoRow = page.locator('tr[data-product="exampleprod1"]').filter({ has: page.locator('.status.active') }).first();
  assert.equal(await demoRow.getByRole('button', { name: 'Cancel', exact: false }).count(), 1);
  assert.equal(await demoRow.getByRole('button', { name: /^Open landing page/ }).count(), 0);
  await check('03-subscriptions');
});

test('the registration token reaches the landing page (or is issued on the page)', async () => {
  if (features.fulfillment) {
    // What the buyer's browser does on AWS: an HTML form POST to the
    // fulfillment URL, with the token and the free-trial offer type.
    const post = await waitFor('the fulfillment POST', () => received.find((r) => r.path.startsWith('/landing') && r.method === 'POST'));
    assert.match(post.headers['content-type'], /^application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(post.body);
    token = form.get('x-amzn-marketplace-token');
    assert.ok(token, 'x-amzn-marketplace-token posted');
    assert.equal(form.get('x-amzn-marketplace-offer-type'), 'free-trial');
  } else {
    console.log('# this server sends no fulfillment POST (no fulfillment_url in the admin API): the token is issued on the page');
    const row = page.locator(`tr[data-agreement="${agreement}"]`);
    await row.getByRole('button', { name: `Issue token for ${agreement}` }).click();
    token = (await page.getByTestId('issued-token').innerText()).trim();
  }
  assert.ok(token.length > 10);
});

test('ResolveCustomer and BatchMeterUsage through the AWS CLI', async () => {
  const resolved = await aws('resolve-customer', '--registration-token', token);
  assert.equal(resolved.ProductCode, PRODUCT);
  assert.equal(resolved.CustomerAWSAccountId, BUYER);
  customer = resolved.CustomerIdentifier;
  assert.ok(customer);
  const ts = Math.floor(Date.now() / 1000);
  const metered = await aws('batch-meter-usage', '--product-code', PRODUCT,
    '--usage-records', `CustomerIdentifier=${customer},Dimension=users,Quantity=7,Timestamp=${ts}`);
  assert.equal(metered.Results.length, 1);
  assert.equal(metered.Results[0].Status, 'Success');
});

test('the usage explorer charts the metered quantity and downloads it as CSV', async () => {
  await open('Usage');
  await page.locator('#group').selectOption('customer');
  await page.locator('#product').fill(PRODUCT);
  await page.getByRole('button', { name: 'Show' }).click();
  assert.equal(await page.getByTestId('usage-total').innerText(), '7');
  assert.match(await page.getByTestId('usage-lines').innerText(), new RegExp(`${BUYER}\\s+7\\s+1`));
  const canvas = page.locator('#usage-chart');
  await waitFor('the chart', async () => (await canvas.getAttribute('data-total')) === '7');
  assert.equal(await canvas.getAttribute('data-series'), '1');
  assert.equal(await page.evaluate(() => window.mpmeterUsageChart.data.datasets[0].label), BUYER);
  await check('04-usage');

  const csv = await page.evaluate(async () => (await fetch(document.querySelector('a[href*="summary.csv"]').href)).text());
  const lines = csv.trim().split(/\r?\n/);
  assert.equal(lines[0], 'period_start,customer,quantity,records');
  assert.match(lines[1], new RegExp(`,${BUYER},7,1$`));
  const records = await page.evaluate(async () => (await fetch(document.querySelector('a[href*="records.csv"]').href)).text());
  assert.match(records, new RegExp(`BatchMeterUsage,${PRODUCT},111122223333,${BUYER},${customer},[^,]*,,users,7,`));
});

test('the call log shows both calls, with the request and response', async () => {
  await open('API call log');
  // The audit log is written within about half a second of a call.
  await waitFor('the calls in the log', async () => {
    await page.reload();
    const t = await page.getByTestId('calls').innerText();
    return t.includes('BatchMeterUsage') && t.includes('ResolveCustomer');
  });
  await check('05-calls');
  await page.locator('#c-op').fill('BatchMeterUsage');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByTestId('calls').locator('tbody tr a').first().click();
  assert.equal(await page.getByTestId('call-operation').innerText(), 'BatchMeterUsage');
  const request = JSON.parse(await page.getByTestId('call-request').innerText());
  assert.equal(request.productCode, PRODUCT);
  assert.equal(request.usageRecords[0].customerIdentifier, customer);
  assert.equal(request.usageRecords[0].quantity, 7);
  const response = JSON.parse(await page.getByTestId('call-response').innerText());
  assert.equal(response.results[0].status, 'Success');
  await check('06-call-detail');
});

test('the overview counts the calls and the records, live', async () => {
  await open('Overview');
  await waitFor('the overview to count the calls', async () => Number(await page.getByTestId('calls-15').innerText()) >= 2);
  assert.match(await page.getByTestId('records-per-product').innerText(), new RegExp(`${PRODUCT}\\s+1\\s+7`));
  // The browser's own requests (a favicon, say) never reach the Metering
  // API: no call of this test failed.
  assert.equal(await page.getByTestId('errors-15').innerText(), '0');
  // The live part is replaced by htmx polling: another call shows up
  // without a reload.
  const before = Number(await page.getByTestId('calls-15').innerText());
  await aws('resolve-customer', '--registration-token', token);
  await waitFor('the poll to show the new call', async () => Number(await page.getByTestId('calls-15').innerText()) > before, 20_000);
  await check('02-overview');
});

test('cancel in the simulator, and the notifications arrive', async () => {
  await open('Customers & subscriptions');
  const row = page.locator(`tr[data-agreement="${agreement}"]`);
  await row.getByRole('button', { name: `Cancel ${agreement}` }).click();
  assert.match(await page.locator('.flash').innerText(), new RegExp(`${agreement} is cancelled`));
  assert.equal(await page.locator(`tr[data-agreement="${agreement}"] .status`).innerText(), 'cancelled');

  await open('Notifications');
  if (!features.notifications) {
    console.log('# this server sends no notifications: the deliveries page says so');
    await page.getByTestId('notifications-off').waitFor();
    await check('07-deliveries');
    return;
  }
  const actions = () => received.filter((r) => r.path.startsWith('/sns') && r.headers['x-amz-sns-message-type'] === 'Notification')
    .map((r) => JSON.parse(JSON.parse(r.body).Message))
    .filter((m) => m['customer-identifier'] === customer).map((m) => m.action);
  await waitFor('subscribe-success and unsubscribe-pending', () => actions().includes('subscribe-success') && actions().includes('unsubscribe-pending'));
  await waitFor('the deliveries on the page', async () => {
    await page.reload();
    return (await page.getByTestId('deliveries').innerText()).includes('unsubscribe-pending');
  });
  await check('07-deliveries');
  const n = received.length;
  await page.getByTestId('deliveries').getByRole('button', { name: /Replay delivery/ }).first().click();
  assert.match(await page.locator('.flash').innerText(), /replayed as/);
  await waitFor('the replayed delivery', () => received.length > n);
});

test('signing keys rotate', async () => {
  await open('Signing keys');
  const rows = page.getByTestId('signing-keys').locator('tbody tr');
  const before = await rows.count();
  await page.getByRole('button', { name: /Rotate/ }).click();
  assert.match(await page.locator('.flash').innerText(), new RegExp(`version ${before + 1} created`));
  assert.equal(await rows.count(), before + 1);
  await check('08-keys');
});

test('the clock advances and resets', async () => {
  await open('Clock');
  assert.equal(await page.getByTestId('clock-offset').innerText(), '0s');
  await page.locator('#by').fill('2h');
  await page.getByRole('button', { name: 'Advance' }).click();
  assert.match(await page.getByTestId('clock-offset').innerText(), /^2h0m0\.\d+s$|^2h0m0s$|^1h59m59\.\d+s$/);
  await check('09-clock');
  await page.getByRole('button', { name: 'Reset' }).click();
  assert.equal(await page.getByTestId('clock-offset').innerText(), '0s');
  // Every change the console made is an admin call in the audit log.
  await page.goto(`${endpoint}/console/calls?source=admin`);
  const log = await waitFor('the admin calls', async () => {
    await page.reload();
    const t = await page.getByTestId('calls').innerText();
    return (t.includes('reset-clock') || t.includes('/clock/reset')) && t;
  });
  // By operation id, or by method and path where the admin API names none.
  for (const [id, path] of [['create-account', 'POST /admin/v1/accounts'], ['create-subscription', 'POST /admin/v1/subscriptions'],
    ['cancel-subscription', '/cancel'], ['rotate-signing-key', '/signing-keys/rotate'], ['advance-clock', '/clock/advance']]) {
    assert.ok(log.includes(id) || log.includes(path), `${id} in the admin call log`);
  }
});
