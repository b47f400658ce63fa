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

const seen = new Map(); // operationId -> Set of statuses reached
const steps = [];
const mismatches = []; // this driver's own check of each response against the document

/* HTTP/1.1 with any method and body (fetch refuses a body on GET, which 413 needs). */
function request(base, method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const to = new URL(base + url);
    const h = { ...headers };
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const req = http.request({ host: to.hostname, port: to.port, method, path: to.pathname + to.search, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/* Checks one response against the operation's documented response for its status: listed, the
 * content type and body schema (JSON Schema 2020-12, the document's own $refs), required headers.
 * Prism does the same from outside; this also covers what Prism cannot see (405 and 307). */
let ajv;
function docCheck(spec, op, r) {
  if (!ajv) {
    const Ajv2020 = require('ajv/dist/2020').default;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    require('ajv-formats')(ajv);
    ajv.addSchema(spec, 'openapi.json');
  }
  const at = ops.get(op);
  if (!at) return `no operation ${op} in the document`;
  const resp = at.item.responses[String(r.status)];
  if (!resp) return `status ${r.status} is not documented (${Object.keys(at.item.responses)})`;
  for (const [name, h] of Object.entries(resp.headers || {})) {
    if (h.required && r.headers[name.toLowerCase()] === undefined) return `header ${name} is missing`;
  }
  const ct = (r.headers['content-type'] || '').split(';')[0].trim();
  if (!resp.content) return r.text.length ? `a body where none is documented: ${r.text.slice(0, 100)}` : null;
  const media = resp.content[ct];
  if (!media) return `content type "${ct}" is not documented (${Object.keys(resp.content)})`;
  if (!media.schema) return null;
  let value = r.text;
  if (ct === 'application/json') {
    try { value = JSON.parse(r.text); } catch { return `not JSON: ${r.text.slice(0, 100)}`; }
  }
  const esc = (x) => x.replace(/~/g, '~0').replace(/\//g, '~1');
  const ref = `openapi.json#/paths/${esc(at.path)}/${at.method}/responses/${r.status}/content/${esc(ct)}/schema`;
  const validate = ajv.getSchema(ref) || ajv.compile({ $ref: ref });
  return validate(value) ? null : `body ${JSON.stringify(value).slice(0, 200)}: ${ajv.errorsText(validate.errors)}`;
}

let spec, ops;
/* One request; `op` is the operation it targets, `want` the status it provokes. Through Prism
 * (base P) unless `direct`: then to the api itself. */
async function send(base, op, want, method, url, { sub, auth, headers = {}, body, json, down, direct } = {}) {
  const h = { ...headers };
  if (down) h['x-contract-upstream'] = 'down';
  if (sub) h.authorization = `Bearer ${token(sub)}`;
  if (auth) h.authorization = auth;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const r = await request(direct ? process.env.API_URL : base, method, url, h, body);
  const what = `${method} ${url.length > 90 ? url.slice(0, 90) + '...' : url} (${op}, want ${want}${direct ? ', direct' : ''})`;
  steps.push(what);
  check(r.status === want, `${what} answered ${r.status}: ${r.text.slice(0, 300)}`);
  const bad = docCheck(spec, op, r);
  if (bad) mismatches.push(`${what}: ${bad}`);
  if (!seen.has(op)) seen.set(op, new Set());
  seen.get(op).add(String(r.status));
  return { status: r.status, headers: { get: (n) => r.headers[n.toLowerCase()] }, body: r.text ? safeJson(r.text) : null };
}
const safeJson = (t) => { try { return JSON.parse(t); } catch { return t; } };

const psql = (sql) => {
  const r = require('child_process').spawnSync('psql', [process.env.DB_URL, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' });
  check(r.status === 0, `psql: ${r.stderr}`);
};

async function traffic(P) {
  const u = user('prism');
  let anId = 1; // the {id} of the derived checks below: an existing row of the resource when it has one
  await send(P, 'health', 200, 'GET', '/health');
  await send(P, 'ready', 200, 'GET', '/ready');
  await send(P, 'metrics', 200, 'GET', '/metrics');

  // example:begin (the Todo example's traffic: scripts/remove-example deletes it with the example)
  const other = user('other');
  const tasks = `/api/${u}/tasks`;

  // create: 201 with Location, the validation 422s, 401/403, Idempotency-Key replay, 422 and 409
  const made = [];
  for (const [i, t] of ['buy milk', 'write report', 'call bob'].entries()) {
    const r = await send(P, 'create_task', 201, 'POST', tasks, { sub: u, json: { title: t, description: i ? `d${i}` : null, completed: i === 2 } });
    check(r.headers.get('location') === `${tasks}/${r.body.id}`, `Location of the created task: ${r.headers.get('location')}`);
    made.push(r.body);
  }
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { description: 'no title' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { title: '   ' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { title: 'x', completed: 'yes' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: ['not', 'an', 'object'] });
  // (malformed JSON goes to the api directly: Prism answers it with a 400 of its own)
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, body: '{"title":', headers: { 'content-type': 'application/json' }, direct: true });
  await send(P, 'create_task', 401, 'POST', tasks, { json: { title: 'x' } });
  await send(P, 'create_task', 403, 'POST', `/api/${other}/tasks`, { sub: u, json: { title: 'x' } });
  const idem = { 'idempotency-key': `k-${process.pid}` };
  const first = await send(P, 'create_task', 201, 'POST', tasks, { sub: u, headers: idem, json: { title: 'once' } });
  const again = await send(P, 'create_task', 201, 'POST', tasks, { sub: u, headers: idem, json: { title: 'once' } });
  check(first.body.id === again.body.id, 'an Idempotency-Key replays the first response');
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, headers: idem, json: { title: 'other body' } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, headers: { 'idempotency-key': 'k'.repeat(300) }, json: { title: 'long key' } });
  // a key whose first request is still running (its row has no response yet)
  psql(`insert into idempotency_keys (user_id, key, request_hash) values ('${u}', 'in-flight', 'x')`);
  await send(P, 'create_task', 409, 'POST', tasks, { sub: u, headers: { 'idempotency-key': 'in-flight' }, json: { title: 'x' } });

  // list: filters, sort, paging, X-Total-Count; 401 (none, expired, bad signature), 403, 422
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

  // one task: get, update, toggle, delete, and their 404/422/401/403
  const id = made[0].id, one = `${tasks}/${id}`;
  const got = await send(P, 'get_task', 200, 'GET', one, { sub: u });
  check(got.body.title === 'buy milk', `the task read back: ${JSON.stringify(got.body)}`);
  await send(P, 'get_task', 404, 'GET', `${tasks}/999999999`, { sub: u });
  await send(P, 'get_task', 422, 'GET', `${tasks}/abc`, { sub: u });
  await send(P, 'get_task', 422, 'GET', `${tasks}/0`, { sub: u });
  await send(P, 'get_task', 401, 'GET', one);
  await send(P, 'get_task', 403, 'GET', `/api/${other}/tasks/${id}`, { sub: u });
  const upd = await send(P, 'update_task', 200, 'PUT', one, { sub: u, json: { title: 'buy oat milk', description: 'two', completed: true } });
  check(upd.body.completed === true && upd.body.title === 'buy oat milk', `the update: ${JSON.stringify(upd.body)}`);
  await send(P, 'update_task', 404, 'PUT', `${tasks}/999999999`, { sub: u, json: { title: 'x' } });
  await send(P, 'update_task', 422, 'PUT', one, { sub: u, json: { title: 'x'.repeat(201) } });
  await send(P, 'update_task', 401, 'PUT', one, { json: { title: 'x' } });
  await send(P, 'update_task', 403, 'PUT', `/api/${other}/tasks/${id}`, { sub: u, json: { title: 'x' } });
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
  anId = made[1].id;
  // example:end

  // what the framework answers on every operation, derived from the document's operations:
  // 413 (body over MAX_BODY_BYTES = 4096), 431 (headers over 8 KiB), 405 (another method on the
  // path, Allow), 307 (trailing slash, Location), 404 (an empty path segment)
  const concrete = (p) => p.replace('{user_id}', u).replace('{id}', String(anId));
  const big = JSON.stringify({ title: 'x', description: 'y'.repeat(5000) });
  for (const [op, at] of ops) {
    const url = concrete(at.path), method = at.method.toUpperCase();
    const documented = (st) => at.item.responses[st] !== undefined;
    // (Prism refuses to forward a GET with a body: those go to the api directly)
    if (documented('413'))
      await send(P, op, 413, method, url, { sub: u, body: big, headers: { 'content-type': 'application/json' }, direct: method === 'GET' });
    if (documented('431'))
      await send(P, op, 431, method, url, { sub: u, headers: { 'x-filler': 'f'.repeat(9000) } });
    // Prism follows redirects itself and cannot route a method the path does not have: these two
    // are checked against the document by this driver only (docCheck), sent to the api directly
    if (documented('307')) {
      const r = await send(P, op, 307, method, `${url}/?limit=5`, { sub: u, direct: true });
      check(String(r.headers.get('location')).endsWith(`${url}?limit=5`), `307 Location: ${r.headers.get('location')}`);
    }
    if (documented('405')) {
      const methods = Object.keys(spec.paths[at.path]).map((m) => m.toUpperCase());
      const wrong = ['POST', 'PUT', 'DELETE', 'PATCH', 'GET'].find((m) => !methods.includes(m));
      const r = await send(P, op, 405, wrong, url, { sub: u, direct: true });
      check(r.headers.get('allow') === methods.join(', '), `405 Allow on ${at.path}: ${r.headers.get('allow')} (document: ${methods})`);
    }
    if (documented('404') && at.path.includes('{user_id}') && !at.path.includes('{id}'))
      await send(P, op, 404, method, at.path.replace('{user_id}', ''), { sub: u, json: method === 'POST' ? { title: 'x' } : undefined });
  }
}

/* The same routes on an api whose database is down: 503 with Retry-After. */
async function outage(P) {
  const r = await send(P, 'ready', 503, 'GET', '/ready', { down: true });
  check(r.headers.get('retry-after'), '503 from /ready has Retry-After');
  // example:begin
  const u = user('down'), tasks = `/api/${u}/tasks`;
  await send(P, 'list_tasks', 503, 'GET', tasks, { sub: u, down: true });
  await send(P, 'create_task', 503, 'POST', tasks, { sub: u, down: true, json: { title: 'x' } });
  await send(P, 'get_task', 503, 'GET', `${tasks}/1`, { sub: u, down: true });
  await send(P, 'update_task', 503, 'PUT', `${tasks}/1`, { sub: u, down: true, json: { title: 'x' } });
  await send(P, 'toggle_task', 503, 'PATCH', `${tasks}/1/complete`, { sub: u, down: true });
  const d = await send(P, 'delete_task', 503, 'DELETE', `${tasks}/1`, { sub: u, down: true });
  check(d.headers.get('retry-after'), '503 from a task route has Retry-After');
  // example:end
}

/* Statuses the document may list that no request can provoke on purpose. */
const UNREACHABLE = { 500: 'an unexpected failure inside the api' };

async function main() {
  const t0 = Date.now();
  spec = await (await fetch(`${process.env.API_URL}/openapi.json`)).json();
  ops = new Map();
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (op && op.operationId) ops.set(op.operationId, { path: p, method, item: op });
    }
  }
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
  console.log(`contract: ${steps.length} requests (${steps.filter((x) => !x.includes(', direct)')).length} through Prism), ${requestViolations.length} request violations (provoked on purpose), ${responseViolations.length} response violations`);

  const missing = [], unprovoked = [];
  for (const [id, at] of ops) {
    const got = seen.get(id) || new Set();
    for (const st of Object.keys(at.item.responses)) {
      if (got.has(st)) continue;
      if (UNREACHABLE[st]) unprovoked.push(`${id} ${st}`);
      else missing.push(`${at.method.toUpperCase()} ${at.path} (${id}) ${st}`);
    }
  }
  const reached = [...seen.values()].reduce((n, s) => n + s.size, 0);
  console.log(`contract: ${reached} documented (operation, status) pairs reached over ${ops.size} operations`);
  for (const [st, why] of Object.entries(UNREACHABLE)) {
    const which = unprovoked.filter((x) => x.endsWith(` ${st}`));
    if (which.length) console.log(`contract: ${st} not provoked (${why}) on ${which.length} operations`);
  }
  let ok = true;
  if (mismatches.length) {
    console.error(`contract: responses that do not match the document (checked by this driver):\n  ${mismatches.join('\n  ')}`);
    ok = false;
  }
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
