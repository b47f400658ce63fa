// What a Next.js + Better Auth frontend does, without a browser: sign up, get the JWT the API
// accepts (GET /api/auth/token with the session cookie, what authClient.token() calls), then
// create, list, read and delete items on the API with `Authorization: Bearer`.
// AUTH_URL: the Better Auth server; API_URL: the framework's API (framework-api). Exit 0 when every step gave what a
// frontend expects; otherwise one line naming the step.
const AUTH = process.env.AUTH_URL;
const API = process.env.API_URL;

function fail(step, res, body) {
  console.error(`auth-frontend: ${step}: HTTP ${res.status} ${JSON.stringify(body)}`);
  process.exit(1);
}

async function call(step, url, init, want) {
  const res = await fetch(url, init);
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (res.status !== want) fail(step, res, body);
  return { res, body };
}

const t0 = performance.now();
const email = `user-${process.pid}-${Date.now()}@example.com`;
const signUp = await call(
  "sign up",
  `${AUTH}/api/auth/sign-up/email`,
  {
    method: "POST",
    headers: { "content-type": "application/json", origin: AUTH },
    body: JSON.stringify({ email, password: "correct horse battery staple", name: "Ada" }),
  },
  200,
);
const cookie = signUp.res.headers
  .getSetCookie()
  .map((c) => c.split(";")[0])
  .join("; ");
const userId = signUp.body.user.id;

const { body: tokenBody } = await call(
  "token",
  `${AUTH}/api/auth/token`,
  { headers: { cookie, origin: AUTH } },
  200,
);
const token = tokenBody.token;
const header = JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString());
console.log(`token: alg=${header.alg} kid=${header.kid ? "yes" : "no"} user=${userId}`);

const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
// the framework test server's resource (tests/app/framework/routes.c): /api/{user_id}/items
const items = `${API}/api/${encodeURIComponent(userId)}/items`;
const created = await call(
  "create",
  items,
  { method: "POST", headers, body: JSON.stringify({ name: "Buy milk" }) },
  201,
);
const id = created.body.id;
const listed = await call("list", items, { headers }, 200);
if (!listed.body.some((t) => t.id === id)) fail("list has the item", listed.res, listed.body);
const got = await call("read", `${items}/${id}`, { headers }, 200);
if (got.body.name !== "Buy milk") fail("read kept the name", got.res, got.body);
await call("delete", `${items}/${id}`, { method: "DELETE", headers }, 204);
const after = await call("list after delete", items, { headers }, 200);
if (after.body.some((t) => t.id === id)) fail("deleted item still listed", after.res, after.body);
// another user's items stay closed to this token
await call("other user", `${API}/api/someone-else/items`, { headers }, 403);
console.log(`auth-frontend: sign-up, token, create, list, read, delete: ok in ${Math.round(performance.now() - t0)} ms`);
