'use strict';
/* /docs (Swagger UI) and /redoc (ReDoc) in a real browser with the network cut off: headless Debian
 * Chromium driven by playwright-core (never a downloaded browser). Any request to a host other than
 * the api's fails the check (Playwright aborts it, and Chromium's resolver knows no other host); the
 * pages must render every operation, and Swagger UI's "Authorize" + "Try it out" must answer 200 from
 * the same origin. Screenshots: swagger.png, redoc.png in the working directory (under the build).
 * Also: DOCS_CDN_URL switches the pages to the CDN, and a bad one stops the api with one line.
 *
 * Run by tests/contract/with-api (API_URL, API_BIN, JWT_SECRET). */
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { START_MS, token, freePort, waitPort, check, user } = require('./lib.cjs');

const API = process.env.API_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function withApi(env, fn) {
  const port = await freePort();
  const { spawn } = require('child_process');
  const c = spawn(process.env.API_BIN, [], {
    env: { PATH: '/usr/bin:/bin', APP_ENV: 'production', HOST: '127.0.0.1', PORT: String(port),
      JWT_SECRET: process.env.JWT_SECRET, DATABASE_URL: 'postgresql://nobody:x@127.0.0.1:1/none',
      ACCESS_LOG: 'false', ...env },
    stdio: 'ignore',
  });
  try {
    await waitPort(port, START_MS, () => c.exitCode === null);
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    c.kill('SIGTERM');
  }
}

async function cdnMode() {
  const cdn = 'https://cdn.example.test/npm';
  await withApi({ DOCS_CDN_URL: cdn }, async (url) => {
    const docs = await (await fetch(`${url}/docs`)).text();
    check(/<script src="https:\/\/cdn\.example\.test\/npm\/swagger-ui-dist@5\.\d+\.\d+\/swagger-ui-bundle\.js">/.test(docs) && docs.length < 10000,
      `/docs with DOCS_CDN_URL links the CDN: ${docs.slice(0, 400)}`);
    const redoc = await (await fetch(`${url}/redoc`)).text();
    check(/<script src="https:\/\/cdn\.example\.test\/npm\/redoc@2\.\d+\.\d+\/bundles\/redoc\.standalone\.js">/.test(redoc),
      `/redoc with DOCS_CDN_URL links the CDN: ${redoc.slice(0, 400)}`);
  });
  const bad = spawnSync(process.env.API_BIN, [], {
    env: { PATH: '/usr/bin:/bin', JWT_SECRET: process.env.JWT_SECRET, DATABASE_URL: 'postgresql://x@127.0.0.1:1/x',
      PORT: String(await freePort()), DOCS_CDN_URL: 'javascript:alert(1)' },
    encoding: 'utf8', timeout: 10000,
  });
  check(bad.status !== 0 && /DOCS_CDN_URL/.test(bad.stderr + bad.stdout), `a bad DOCS_CDN_URL stops the api: ${bad.status} ${bad.stderr}`);
}

async function main() {
  const t0 = Date.now();
  const spec = await (await fetch(`${API}/openapi.json`)).json();
  const ops = Object.values(spec.paths).flatMap((item) => Object.values(item)).filter((o) => o && o.operationId);
  check(ops.length > 0, 'the document has operations');

  // the operation "Try it out" runs: /health, or an authenticated one of the resource when there is one
  const u = user('browser'), tok = token(u);
  let tryIt = { op: 'health', path: '/health', user: null, shows: '"status"' };
  // example:begin (the Todo example: a task to list; scripts/remove-example deletes this block)
  const made = await fetch(`${API}/api/${u}/tasks`, { method: 'POST',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'seen in Swagger UI' }) });
  check(made.status === 201, `task created: ${made.status}`);
  tryIt = { op: 'list_tasks', path: `/api/${u}/tasks`, user: u, shows: 'seen in Swagger UI' };
  // example:end

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'contract-chromium-'));
  const blocked = [], errors = [];
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // below Playwright's interception: no name resolves but the api's
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
    viewport: { width: 1280, height: 1600 },
  });
  try {
    await ctx.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (['127.0.0.1', 'localhost'].includes(url.hostname)) return route.continue();
      blocked.push(url.href);
      return route.abort('blockedbyclient');
    });
    ctx.on('weberror', (e) => errors.push(String(e.error())));
    ctx.on('console', (m) => { if (m.type() === 'error') console.log(`browser console: ${m.text()}`); });

    // ---- Swagger UI ----
    const page = await ctx.newPage();
    await page.goto(`${API}/docs`, { waitUntil: 'load' });
    await page.waitForFunction((n) => document.querySelectorAll('.opblock').length >= n, ops.length, { timeout: 30000 });
    const opblocks = await page.locator('.opblock').count();
    check(opblocks === ops.length, `Swagger UI renders ${ops.length} operations, found ${opblocks}`);
    check((await page.title()).includes(spec.info.title), `page title names the API: ${await page.title()}`);

    // Authorize with the bearer token
    await page.locator('.auth-wrapper button.authorize').click();
    const modal = page.locator('.modal-ux');
    await modal.locator('input').first().fill(tok);
    await modal.locator('button[type=submit], button.authorize').first().click();
    await modal.locator('button.btn-done, button.close-modal').first().click();

    // Try it out: GET the user's tasks (or /health)
    const op = page.locator(`[id$="-${tryIt.op}"]`).first();
    await op.locator('.opblock-summary').first().click();
    await op.locator('button.try-out__btn').click();
    if (tryIt.user) await op.locator('tr[data-param-name="user_id"] input').fill(tryIt.user);
    const reqSeen = page.waitForRequest((r) => r.url().includes(tryIt.path));
    await op.locator('button.execute').click();
    const req = await reqSeen;
    check(req.url().startsWith(`${API}${tryIt.path}`), `"Try it out" goes to the page's origin: ${req.url()}`);
    if (tryIt.user)
      check(req.headers().authorization === `Bearer ${tok}`, `"Try it out" sends the token: ${req.headers().authorization}`);
    const status = op.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 15000 });
    const code = (await status.innerText()).trim();
    check(code.startsWith('200'), `"Try it out" answered ${code}`);
    const shown = await op.locator('.live-responses-table').first().textContent();
    check(shown.includes(tryIt.shows), `the response body is shown: ${shown.slice(0, 200)}`);
    await status.scrollIntoViewIfNeeded();
    await page.screenshot({ path: 'swagger.png', fullPage: false });

    // ---- ReDoc ----
    const redoc = await ctx.newPage();
    await redoc.goto(`${API}/redoc`, { waitUntil: 'load' });
    await redoc.waitForFunction((n) => document.querySelectorAll('[data-section-id^="operation/"]').length >= n, ops.length, { timeout: 30000 });
    const sections = await redoc.locator('[data-section-id^="operation/"]').count();
    check(sections === ops.length, `ReDoc renders ${ops.length} operations, found ${sections}`);
    for (const o of ops) {
      check(await redoc.locator(`[data-section-id="operation/${o.operationId}"]`).count() === 1, `ReDoc shows ${o.operationId}`);
    }
    const menu = await redoc.locator('.menu-content li[data-item-id*="operation/"]').count();
    check(menu === ops.length, `ReDoc's menu lists ${ops.length} operations, found ${menu}`);
    await redoc.screenshot({ path: 'redoc.png', fullPage: false });
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  check(blocked.length === 0, `the pages tried to reach the network: ${blocked.join(', ')}`);
  check(errors.length === 0, `JavaScript errors on the pages: ${errors.join('; ')}`);

  await cdnMode();
  console.log(`browser: /docs and /redoc render ${ops.length} operations offline, "Try it out" answered 200; screenshots in ${process.cwd()} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

main().catch((e) => { console.error(`browser: ${e.stack || e}`); process.exit(1); });
