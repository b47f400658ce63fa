'use strict';
/* The contract, checked from outside: Stoplight Prism (proxy mode) sits between this driver and the
 * real api and validates every request and response against /openapi.json. The driver sends traffic
 * that reaches every operation and every status the document lists for it; the check fails on any
 * "Violation: response" Prism logs, on a step answered with another status than the one it provokes,
 * and on a documented status no step reached. Request violations provoked on purpose (no token, a
 * bad query) are expected and only counted.
 *
 * Run by tests/contract/with-api (API_URL, API_BIN, JWT_SECRET). A second api, on a database that is
 * down, answers the 503s: Prism's upstream is a small forwarder in this process that sends requests
 * marked `x-contract-upstream: down` there (one Prism: it takes seconds to start). */
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { token, freePort, waitPort, check, user } = require('./lib.cjs');

const prismBin = path.join(__dirname, 'node_modules', '.bin', 'prism');
const children = [];
process.on('exit', () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM')));

function start(name, cmd, args, env) {
  const log = fs.openSync(`${name}.log`, 'w');
  const c = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  children.push(c);
  return c;
}

async function prism(name, specFile, upstream) {
  const port = await freePort();
  const c = start(name, prismBin, ['proxy', specFile, upstream, '--host', '127.0.0.1', '--port',
    String(port), '--errors', 'false']);
  await waitPort(port, 30000, () => c.exitCode === null);
  return { url: `http://127.0.0.1:${port}`, proc: c, log: `${name}.log` };
}

async function stop(c) {
  if (c.exitCode !== null) return;
  const done = new Promise((r) => c.on('exit', r));
  c.kill('SIGTERM');
  await done;
}

/* Forwards each request unchanged to `live`, or to `down` when it carries x-contract-upstream: down. */
async function forwarder(live, down) {
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    const to = new URL(req.headers['x-contract-upstream'] === 'down' ? down : live);
    const up = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.rawHeaders);
      r.pipe(res);
    });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(up);
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, srv };
}

const seen = new Map(); // operationId -> Set of statuses
const steps = [];
/* One request through Prism; `op` is the operation it targets, `want` the status it provokes. */
async function send(base, op, want, method, url, { sub, auth, headers = {}, body, json, down } = {}) {
  const h = { ...headers };
  if (down) h['x-contract-upstream'] = 'down';
  if (sub) h.authorization = `Bearer ${token(sub)}`;
  if (auth) h.authorization = auth;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const r = await fetch(base + url, { method, headers: h, body, redirect: 'manual' });
  const text = await r.text();
  const what = `${method} ${url} (${op}, want ${want})`;
  steps.push(what);
  check(r.status === want, `${what} answered ${r.status}: ${text.slice(0, 300)}`);
  if (!seen.has(op)) seen.set(op, new Set());
  seen.get(op).add(String(r.status));
  return { status: r.status, headers: r.headers, body: text ? safeJson(text) : null };
}
const safeJson = (t) => { try { return JSON.parse(t); } catch { return t; } };

async function traffic(P) {
  const u = user('prism'), other = user('other');
  const tasks = `/api/${u}/tasks`;
  await send(P, 'health', 200, 'GET', '/health');
  await send(P, 'ready', 200, 'GET', '/ready');
  await send(P, 'metrics', 200, 'GET', '/metrics');

  // create: 201 with Location, the validation 422s, 401/403, 413, Idempotency-Key replay and conflict
  const made = [];
  for (const [i, t] of ['buy milk', 'write report', 'call bob'].entries()) {
    const r = await send(P, 'create_task', 201, 'POST', tasks, { sub: u, json: { title: t, description: i ? `d${i}` : null, completed: i === 2 } });
    check(r.headers.get('location') === `${tasks}/${r.body.id}`, `Location of the created task: ${r.headers.get('location')}`);
    made.push(r.body);
  }
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { description: 'no title' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { title: '   ' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { title: 'x', completed: 'yes' } });
  // (malformed JSON is not sent: Prism answers it with a 400 of its own instead of forwarding it)
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: ['not', 'an', 'object'] });
  await send(P, 'create_task', 401, 'POST', tasks, { json: { title: 'x' } });
  await send(P, 'create_task', 403, 'POST', `/api/${other}/tasks`, { sub: u, json: { title: 'x' } });
  await send(P, 'create_task', 413, 'POST', tasks, { sub: u, json: { title: 'x', description: 'y'.repeat(5000) } });
  const idem = { 'idempotency-key': `k-${process.pid}` };
  const first = await send(P, 'create_task', 201, 'POST', tasks, { sub: u, headers: idem, json: { title: 'once' } });
  const again = await send(P, 'create_task', 201, 'POST', tasks, { sub: u, headers: idem, json: { title: 'once' } });
  check(first.body.id === again.body.id, 'an Idempotency-Key replays the first response');
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, headers: idem, json: { title: 'other body' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, headers: { 'idempotency-key': 'k'.repeat(300) }, json: { title: 'long key' } });

  // list: filters, sort, paging, X-Total-Count; 401 (none, expired, bad signature), 403, 422, 307
  const all = await send(P, 'list_tasks', 200, 'GET', `${tasks}?limit=2&offset=1&sort=title&order=asc`, { sub: u });
  check(Array.isArray(all.body) && all.body.length === 2, `a page of 2: ${JSON.stringify(all.body)}`);
  check(all.headers.get('x-total-count') === '4', `X-Total-Count 4: ${all.headers.get('x-total-count')}`);
  await send(P, 'list_tasks', 200, 'GET', `${tasks}?status=completed&search=CALL`, { sub: u });
  await send(P, 'list_tasks', 200, 'GET', `${tasks}?status=pending&sort=updated_at&order=desc&limit=100`, { sub: u });
  await send(P, 'list_tasks', 401, 'GET', tasks);
  await send(P, 'list_tasks', 401, 'GET', tasks, { auth: `Bearer ${token(u, { expIn: -60 })}` });
  await send(P, 'list_tasks', 401, 'GET', tasks, { auth: `Bearer ${token(u, { secret: 'wrong-secret-wrong-secret-wrong-secret' })}` });
  await send(P, 'list_tasks', 401, 'GET', tasks, { auth: 'Basic dXNlcjpwYXNz' });
  await send(P, 'list_tasks', 403, 'GET', `/api/${other}/tasks`, { sub: u });
  await send(P, 'list_tasks', 422, 'GET', `${tasks}?limit=0`, { sub: u });
  await send(P, 'list_tasks', 422, 'GET', `${tasks}?status=done&sort=nope&offset=-1`, { sub: u });
  // 307 to the path without the trailing slash: sent to the api directly, because Prism follows
  // redirects itself (it would validate the page the redirect leads to against /tasks/{id})
  const redirect = await send(process.env.API_URL, 'list_tasks', 307, 'GET', `${tasks}/?limit=5`, { sub: u });
  check(redirect.headers.get('location').endsWith(`${tasks}?limit=5`), `307 Location: ${redirect.headers.get('location')}`);
  await send(P, 'list_tasks', 405, 'DELETE', tasks, { sub: u });

  // one task: get, update, toggle, delete, and their 404/422/401/403
  const id = made[0].id, one = `${tasks}/${id}`;
  const got = await send(P, 'get_task', 200, 'GET', one, { sub: u });
  check(got.body.title === 'buy milk', `the task read back: ${JSON.stringify(got.body)}`);
  await send(P, 'get_task', 404, 'GET', `${tasks}/999999999`, { sub: u });
  await send(P, 'get_task', 422, 'GET', `${tasks}/abc`, { sub: u });
  await send(P, 'get_task', 422, 'GET', `${tasks}/0`, { sub: u });
  await send(P, 'get_task', 401, 'GET', one);
  await send(P, 'get_task', 403, 'GET', `/api/${other}/tasks/${id}`, { sub: u });
  await send(P, 'get_task', 405, 'POST', one, { sub: u, json: { title: 'x' } });
  const upd = await send(P, 'update_task', 200, 'PUT', one, { sub: u, json: { title: 'buy oat milk', description: 'two', completed: true } });
  check(upd.body.completed === true && upd.body.title === 'buy oat milk', `the update: ${JSON.stringify(upd.body)}`);
  await send(P, 'update_task', 404, 'PUT', `${tasks}/999999999`, { sub: u, json: { title: 'x' } });
  await send(P, 'update_task', 422, 'PUT', one, { sub: u, json: { title: 'x'.repeat(201) } });
  await send(P, 'update_task', 401, 'PUT', one, { json: { title: 'x' } });
  await send(P, 'update_task', 403, 'PUT', `/api/${other}/tasks/${id}`, { sub: u, json: { title: 'x' } });
  await send(P, 'update_task', 413, 'PUT', one, { sub: u, json: { title: 'x', description: 'y'.repeat(5000) } });
  const tog = await send(P, 'toggle_task', 200, 'PATCH', `${one}/complete`, { sub: u });
  check(tog.body.completed === false, `the toggle: ${JSON.stringify(tog.body)}`);
  await send(P, 'toggle_task', 404, 'PATCH', `${tasks}/999999999/complete`, { sub: u });
  await send(P, 'toggle_task', 422, 'PATCH', `${tasks}/-3/complete`, { sub: u });
  await send(P, 'toggle_task', 401, 'PATCH', `${one}/complete`);
  await send(P, 'toggle_task', 403, 'PATCH', `/api/${other}/tasks/${id}/complete`, { sub: u });
  await send(P, 'delete_task', 204, 'DELETE', one, { sub: u });
  await send(P, 'delete_task', 404, 'DELETE', one, { sub: u });
  await send(P, 'delete_task', 422, 'DELETE', `${tasks}/x`, { sub: u });
  await send(P, 'delete_task', 401, 'DELETE', one);
  await send(P, 'delete_task', 403, 'DELETE', `/api/${other}/tasks/${id}`, { sub: u });

  // request headers larger than MAX_HEADER_BYTES (8 KiB)
  await send(P, 'health', 431, 'GET', '/health', { headers: { 'x-filler': 'f'.repeat(9000) } });
  await send(P, 'list_tasks', 431, 'GET', tasks, { sub: u, headers: { 'x-filler': 'f'.repeat(9000) } });
}

/* The same routes on an api whose database is down: 503 with Retry-After. */
async function outage(P) {
  const u = user('down'), tasks = `/api/${u}/tasks`;
  const r = await send(P, 'ready', 503, 'GET', '/ready', { down: true });
  check(r.headers.get('retry-after'), '503 from /ready has Retry-After');
  await send(P, 'list_tasks', 503, 'GET', tasks, { sub: u, down: true });
  await send(P, 'create_task', 503, 'POST', tasks, { sub: u, down: true, json: { title: 'x' } });
  await send(P, 'get_task', 503, 'GET', `${tasks}/1`, { sub: u, down: true });
  await send(P, 'update_task', 503, 'PUT', `${tasks}/1`, { sub: u, down: true, json: { title: 'x' } });
  await send(P, 'toggle_task', 503, 'PATCH', `${tasks}/1/complete`, { sub: u, down: true });
  const d = await send(P, 'delete_task', 503, 'DELETE', `${tasks}/1`, { sub: u, down: true });
  check(d.headers.get('retry-after'), '503 from a task route has Retry-After');
}

/* Statuses the document may list that no request can provoke on purpose. */
const UNREACHABLE = { 500: 'an unexpected failure inside the api' };

async function main() {
  const t0 = Date.now();
  const spec = await (await fetch(`${process.env.API_URL}/openapi.json`)).json();
  fs.writeFileSync('openapi.json', JSON.stringify(spec, null, 2));

  const deadPort = await freePort();
  const dead = start('api-db-down', process.env.API_BIN, [], {
    PATH: '/usr/bin:/bin', APP_ENV: 'production', LOG_FORMAT: 'json', HOST: '127.0.0.1',
    PORT: String(deadPort), JWT_SECRET: process.env.JWT_SECRET, ACCESS_LOG: 'false',
    DATABASE_URL: `postgresql://nobody:x@127.0.0.1:${await freePort()}/down`,
    DB_CONNECT_TIMEOUT: '0.2', DB_ACQUIRE_TIMEOUT: '0.2',
  });
  const fwd = await forwarder(process.env.API_URL, `http://127.0.0.1:${deadPort}`);
  const [live] = await Promise.all([
    prism('prism', 'openapi.json', fwd.url),
    waitPort(deadPort, 10000, () => dead.exitCode === null),
  ]);
  let failure = null;
  try {
    await traffic(live.url);
    await outage(live.url);
  } catch (e) {
    failure = e;
  }
  await Promise.all([stop(live.proc), stop(dead)]);
  fwd.srv.close();

  const logs = fs.readFileSync(live.log, 'utf8');
  const responseViolations = logs.split('\n').filter((l) => l.includes('Violation: response'));
  const requestViolations = logs.split('\n').filter((l) => l.includes('Violation: request'));
  console.log(`contract: ${steps.length} requests through Prism, ${requestViolations.length} request violations (provoked on purpose), ${responseViolations.length} response violations`);

  const missing = [];
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || !op.responses) continue;
      const got = seen.get(op.operationId) || new Set();
      for (const st of Object.keys(op.responses)) {
        if (got.has(st)) continue;
        if (UNREACHABLE[st]) console.log(`contract: ${op.operationId} ${st} not provoked (${UNREACHABLE[st]})`);
        else missing.push(`${method.toUpperCase()} ${p} (${op.operationId}) ${st}`);
      }
    }
  }
  let ok = true;
  if (failure) { console.error(`contract: ${failure.message}`); ok = false; }
  if (responseViolations.length) {
    console.error('contract: Prism found responses that do not match /openapi.json:');
    // the log line before a violation names the request
    const lines = logs.split('\n');
    lines.forEach((l, i) => {
      if (!l.includes('Violation: response')) return;
      let j = i;
      while (j > 0 && !lines[j].includes('Forwarding')) j--;
      const req = lines[j].match(/Forwarding "(\w+)" request to https?:\/\/[^/]+(\S*?)\.\.\.$/) || [];
      console.error(`  ${(req[1] || '?').toUpperCase()} ${req[2] || '?'}: ${l.replace(/^.*Violation: /, '')}`);
    });
    ok = false;
  }
  if (missing.length) {
    console.error(`contract: documented statuses no request reached (add traffic for them):\n  ${missing.join('\n  ')}`);
    ok = false;
  }
  console.log(`contract: ${ok ? 'passed' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s (logs: ${process.cwd()})`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
