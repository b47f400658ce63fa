'use strict';
// Shared by the contract checks: tokens, free ports, HTTP with a timeout, assertions that name the step.
const crypto = require('crypto');
const net = require('net');

const b64url = (b) => Buffer.from(b).toString('base64url');

/* An HS256 JWT the api accepts (JWT_SECRET from tests/contract/with-api). */
function token(sub, { secret = process.env.JWT_SECRET, expIn = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, iat: now, exp: now + expIn }));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/* Resolves once something accepts connections on 127.0.0.1:port, rejects after `ms` or when
 * alive() says the process meant to listen exited. `ms` guards against a hang, not a slow start:
 * callers give START_MS, since a node server started beside stress-ng (make test-stress) was seen
 * taking over 30 s to listen; the ctest TIMEOUT (300 s) bounds the whole run. */
const START_MS = 120000;
async function waitPort(port, ms, alive = () => true) {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process meant to listen on port ${port} exited`);
    if (Date.now() > until) throw new Error(`nothing listens on port ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/* A unique user id for this run. */
let n = 0;
const user = (tag) => `contract-${process.pid}-${++n}-${tag}`;

module.exports = { START_MS, token, freePort, waitPort, check, user };
