'use strict';
/* The contract, checked from outside: Stoplight Prism (proxy mode) sits between this driver and the
 * real api and validates every request and response against /openapi.json. The driver sends traffic
 * derived from the document itself (derived(): a body from each request model, no token, another
 * user, an unknown id, a duplicate, ...) that reaches every operation and every status the document
 * lists for it, so a new route needs no edit here; the check fails on any
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
const { START_MS, token, freePort, waitPort, check, user } = require('./lib.cjs');

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
  await waitPort(port, START_MS, () => c.exitCode === null);
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

/* HTTP/1.1 with any method and body (fetch refuses a body on GET, which 413 needs). Connections
 * are kept alive; a request sent on a kept connection that the server closed meanwhile (its idle
 * timeout, a slow machine) is sent again once on a new one, as Node's documentation advises
 * (req.reusedSocket). */
function request(base, method, url, headers, body, retried = false) {
  return new Promise((resolve, reject) => {
    const to = new URL(base + url);
    const h = { ...headers };
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const req = http.request({ host: to.hostname, port: to.port, method, path: to.pathname + to.search, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', (e) => {
      if (req.reusedSocket && e.code === 'ECONNRESET' && !retried) resolve(request(base, method, url, headers, body, true));
      else reject(e);
    });
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
async function send(base, op, want, method, url, { sub, auth, headers = {}, body, json, down, direct, quiet } = {}) {
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
  if (!quiet) check(r.status === want, `${what} answered ${r.status}: ${r.text.slice(0, 300)}`);
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

/* ---- traffic derived from the document: what every operation can answer, provoked ---- */

const schemaOf = (ref) => ref && ref.$ref ? spec.components.schemas[ref.$ref.split('/').pop()] : ref;
const bodySchema = (at) => schemaOf(at.item.requestBody?.content?.['application/json']?.schema);
let unique = 0;

/* A value the field's schema accepts; unique per call (a resource may have a UNIQUE column). */
function validValue(name, f) {
  const types = [].concat(f.type);
  if (types.includes('integer')) return f.minimum ?? 1;
  if (types.includes('boolean')) return true;
  if (f.enum) return f.enum[0];
  if (f.examples?.length) return f.examples[0];
  const n = ++unique;
  if (f.format === 'uri') return `https://example.com/contract/${process.pid}/${n}`;
  let v = `${name}-${process.pid}-${n}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (f.maxLength && v.length > f.maxLength) v = v.slice(-f.maxLength);
  while (f.minLength && v.length < f.minLength) v += 'x';
  return v;
}

/* A body of the operation's request model with every field valid: required ones, and optional
 * ones without a pattern (a pattern's example is not derivable; the default applies). */
function validBody(at) {
  const s = bodySchema(at);
  if (!s) return undefined;
  const body = {};
  for (const [name, f] of Object.entries(s.properties || {})) {
    if ((s.required || []).includes(name) || !f.pattern) body[name] = validValue(name, f);
  }
  return body;
}

/* A body the model refuses: a required field missing, else a field of the wrong type. */
function invalidBody(at) {
  const s = bodySchema(at);
  const body = validBody(at);
  const req = s.required || [];
  if (req.length) { delete body[req[0]]; return body; }
  const [name, f] = Object.entries(s.properties || {})[0] || [];
  if (!name) return ['not', 'an', 'object'];
  body[name] = [].concat(f.type).includes('string') ? 12345 : 'not-a-number';
  return body;
}

/* A query that fails validation: a bound or a choice violated; null when the operation has none. */
function invalidQuery(at) {
  for (const p of at.item.parameters || []) {
    if (p.in !== 'query') continue;
    const s = p.schema || {};
    if (s.minimum !== undefined) return `${p.name}=${s.minimum - 1}`;
    if (s.maximum !== undefined) return `${p.name}=${s.maximum + 1}`;
    if (s.enum) return `${p.name}=not-one-of-them`;
    if (s.type === 'integer') return `${p.name}=abc`;
  }
  return null;
}

/* The operation's path for user u and item id (path parameters other than user_id and id get a
 * valid value of their schema). */
function concretePath(at, u, id) {
  return at.path.replace(/\{([^}]+)\}/g, (_, n) => {
    if (n === 'user_id') return encodeURIComponent(u);
    if (n === 'id') return String(id);
    const p = (at.item.parameters || []).find((x) => x.name === n) || {};
    return encodeURIComponent(String(validValue(n, p.schema || {})));
  });
}

/* The POST that creates what an item path ("/api/{user_id}/notes/{id}/...") names, if any. */
function creatorOf(at) {
  const k = at.path.indexOf('/{id}');
  if (k < 0) return null;
  const base = at.path.slice(0, k);
  for (const [op, o] of ops) if (o.path === base && o.method === 'post') return [op, o];
  return null;
}

const ORDER = { post: 0, get: 1, put: 2, patch: 3, delete: 4 };
const documentedOn = (at, st) => at.item.responses[String(st)] !== undefined;
const isAuth = (at) => (at.item.security || []).length > 0;
const successOf = (at) => Object.keys(at.item.responses).map(Number).find((st) => st >= 200 && st < 300);

/* Creates one item with the collection's POST; returns its id (or 1 when there is no creator). */
async function makeItem(P, at, u) {
  const c = creatorOf(at);
  if (!c) return 1;
  const [op, o] = c;
  const r = await send(P, op, successOf(o), 'POST', concretePath(o, u, 1), { sub: u, json: validBody(o) });
  return r.body && r.body.id !== undefined ? r.body.id : 1;
}

/* Every status the document lists for every operation, from the operation alone: success, 401
 * without a token, 403 for another user's path, 404 for an unknown id, 422 for an invalid body,
 * query, path or Idempotency-Key, 409 for a duplicate (a declared constraint) or a key still in
 * progress, the key's replay and its 422 with another body. A new route is covered with no edit
 * here; a status no request derived from its declaration can reach fails the check, named. */
async function derived(P) {
  const u = user('derived'), other = user('derived-other');
  const list = [...ops].filter(([, at]) => at.path.startsWith('/api/')).sort(([, a], [, b]) => ORDER[a.method] - ORDER[b.method]);
  for (const [op, at] of list) {
    const method = at.method.toUpperCase(), ok = successOf(at);
    const id = at.path.includes('{id}') ? await makeItem(P, at, u) : 1;
    const url = concretePath(at, u, id);
    const json = validBody(at);
    const r = await send(P, op, ok, method, url, { sub: u, json });
    if (at.item.responses[String(ok)].headers?.Location)
      check(r.headers.get('location')?.startsWith(concretePath(at, u, 1).replace(/\/1$/, '')), `${op}: Location ${r.headers.get('location')}`);
    if (isAuth(at)) {
      await send(P, op, 401, method, url, { json });
      await send(P, op, 401, method, url, { auth: `Bearer ${token(u, { expIn: -60 })}`, json });
    }
    if (documentedOn(at, 403)) await send(P, op, 403, method, concretePath(at, other, id), { sub: u, json });
    if (documentedOn(at, 404) && at.path.includes('{id}')) await send(P, op, 404, method, concretePath(at, u, 999999999), { sub: u, json: validBody(at) });
    if (documentedOn(at, 409) && json && method === 'POST') {
      const dup = validBody(at);
      await send(P, op, ok, method, url, { sub: u, json: dup });
      const again = await send(P, op, 0, method, url, { sub: u, json: dup, quiet: true });
      if (again.status !== 409) {
        // no duplicate conflicts: the 409 is the Idempotency-Key's (a key whose request is in progress)
        const key = `in-flight-${op}`;
        psql(`insert into idempotency_keys (user_id, key, request_hash) values ('${u}', '${key}', 'x')`);
        await send(P, op, 409, method, url, { sub: u, headers: { 'idempotency-key': key }, json: validBody(at) });
      }
    }
    if (documentedOn(at, 422)) {
      const q = invalidQuery(at);
      if (json) await send(P, op, 422, method, url, { sub: u, json: invalidBody(at) });
      else if (q) await send(P, op, 422, method, `${url}?${q}`, { sub: u });
      else if (at.path.includes('{id}')) await send(P, op, 422, method, concretePath(at, u, 'abc'), { sub: u });
      else {
        // a path string over its maxLength (not the owner's: it equals the token's sub)
        const p = (at.item.parameters || []).find((x) => x.in === 'path' && x.name !== 'user_id' && x.schema?.maxLength);
        check(p, `${op}: 422 is documented, but no body, query or path parameter can fail validation`);
        await send(P, op, 422, method, concretePath({ ...at, path: at.path.replace(`{${p.name}}`, 'v'.repeat(p.schema.maxLength + 1)) }, u, 1), { sub: u });
      }
    }
    if ((at.item.parameters || []).some((p) => p.in === 'header' && p.name === 'Idempotency-Key')) {
      const key = { 'idempotency-key': `k-${op}-${process.pid}` }, body = validBody(at);
      const first = await send(P, op, ok, method, url, { sub: u, headers: key, json: body });
      const again = await send(P, op, ok, method, url, { sub: u, headers: key, json: body });
      check(again.headers.get('idempotent-replayed') === 'true', `${op}: the retry is a replay`);
      check(JSON.stringify(first.body) === JSON.stringify(again.body), `${op}: the replay answers the first body`);
      await send(P, op, 422, method, url, { sub: u, headers: key, json: validBody(at) });
      await send(P, op, 422, method, url, { sub: u, headers: { 'idempotency-key': 'k'.repeat(300) }, json: body });
    }
  }
}

/* Extra checks of the Todo example's behaviour (filters, paging, X-Total-Count); derived() already
 * reaches every documented status of its routes. */
async function traffic(P) {
  const u = user('prism');
  await send(P, 'health', 200, 'GET', '/health');
  await send(P, 'ready', 200, 'GET', '/ready');
  await send(P, 'metrics', 200, 'GET', '/metrics', { auth: `Bearer ${process.env.METRICS_TOKEN}` });
  await send(P, 'metrics', 401, 'GET', '/metrics');
  await derived(P);

  // example:begin (the Todo example's traffic: scripts/remove-example deletes it with the example)
  const tasks = `/api/${u}/tasks`;
  if (ops.has('create_task')) { // (contract_prism_framework runs on another route table)
  for (const [i, t] of ['buy milk', 'write report', 'call bob', 'once'].entries())
    await send(P, 'create_task', 201, 'POST', tasks, { sub: u, json: { title: t, description: i ? `d${i}` : null, completed: i === 2 } });
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, json: { title: '   ' } });
  // (malformed JSON goes to the api directly: Prism answers it with a 400 of its own)
  await send(P, 'create_task', 422, 'POST', tasks, { sub: u, body: '{"title":', headers: { 'content-type': 'application/json' }, direct: true });
  const all = await send(P, 'list_tasks', 200, 'GET', `${tasks}?limit=2&offset=1&sort=title&order=asc`, { sub: u });
  check(Array.isArray(all.body) && all.body.length === 2, `a page of 2: ${JSON.stringify(all.body)}`);
  check(all.headers.get('x-total-count') === '4', `X-Total-Count 4: ${all.headers.get('x-total-count')}`);
  await send(P, 'list_tasks', 200, 'GET', `${tasks}?status=completed&search=CALL`, { sub: u });
  await send(P, 'list_tasks', 200, 'GET', `${tasks}?status=pending&sort=updated_at&order=desc&limit=100`, { sub: u });
  await send(P, 'list_tasks', 401, 'GET', tasks, { auth: `Bearer ${token(u, { secret: 'wrong-secret-wrong-secret-wrong-secret' })}` });
  await send(P, 'list_tasks', 401, 'GET', tasks, { auth: 'Basic dXNlcjpwYXNz' });
  }
  // example:end

  // what the framework answers on every operation, derived from the document's operations:
  // 413 (body over MAX_BODY_BYTES = 4096), 431 (headers over 8 KiB), 405 (another method on the
  // path, Allow), 307 (trailing slash, Location), 404 (an empty path segment)
  const big = JSON.stringify({ filler: 'y'.repeat(5000) });
  for (const [op, at] of ops) {
    const anId = at.path.includes('{id}') ? await makeItem(P, at, u) : 1;
    const url = concretePath(at, u, anId), method = at.method.toUpperCase();
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
      await send(P, op, 404, method, at.path.replace('{user_id}', ''), { sub: u, json: validBody(at) });
  }
}

/* Every operation on an api whose database is down: 503 with Retry-After where documented. That
 * api has RATE_LIMIT=1/day, so a user's second request is 429 (it is counted before the database
 * is needed), and no METRICS_TOKEN, so its /metrics is 404. */
async function outage(P) {
  for (const [op, at] of ops) {
    const u = user(`down-${op}`), method = at.method.toUpperCase(), url = concretePath(at, u, 1);
    if (documentedOn(at, 503)) {
      const r = await send(P, op, 503, method, url, { sub: isAuth(at) ? u : undefined, down: true, json: validBody(at) });
      check(r.headers.get('retry-after'), `503 from ${op} has Retry-After`);
    }
    if (documentedOn(at, 429)) {
      if (!documentedOn(at, 503)) await send(P, op, 0, method, url, { sub: u, down: true, json: validBody(at), quiet: true });
      const r = await send(P, op, 429, method, url, { sub: u, down: true, json: validBody(at) });
      for (const h of ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) check(r.headers.get(h), `429 from ${op} has ${h}`);
    }
  }
  await send(P, 'metrics', 404, 'GET', '/metrics', { down: true });
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
    DB_CONNECT_TIMEOUT: '0.2', DB_ACQUIRE_TIMEOUT: '0.2', RATE_LIMIT: '1/day', METRICS_TOKEN: '',
  });
  const fwd = await forwarder(process.env.API_URL, `http://127.0.0.1:${deadPort}`);
  const [live] = await Promise.all([
    prism('prism', 'openapi.json', fwd.url),
    waitPort(deadPort, START_MS, () => dead.exitCode === null),
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
