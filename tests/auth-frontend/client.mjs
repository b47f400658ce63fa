// What a Next.js + Better Auth frontend does, without a browser: sign up, get the JWT the API
// accepts (GET /api/auth/token with the session cookie, what authClient.token() calls), then
// create, list, update, complete and delete its tasks on the API with `Authorization: Bearer`.
// AUTH_URL: the Better Auth server; API_URL: the api binary. Exit 0 when every step gave what a
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
const tasks = `${API}/api/${encodeURIComponent(userId)}/tasks`;
const created = await call(
  "create",
  tasks,
  { method: "POST", headers, body: JSON.stringify({ title: "Buy milk", description: "2 litres" }) },
  201,
);
const id = created.body.id;
const listed = await call("list", tasks, { headers }, 200);
if (!listed.body.some((t) => t.id === id)) fail("list has the task", listed.res, listed.body);
const updated = await call(
  "update",
  `${tasks}/${id}`,
  { method: "PUT", headers, body: JSON.stringify({ title: "Buy oat milk" }) },
  200,
);
if (updated.body.title !== "Buy oat milk") fail("update kept the title", updated.res, updated.body);
const done = await call("complete", `${tasks}/${id}/complete`, { method: "PATCH", headers }, 200);
if (done.body.completed !== true) fail("complete", done.res, done.body);
await call("delete", `${tasks}/${id}`, { method: "DELETE", headers }, 204);
const after = await call("list after delete", tasks, { headers }, 200);
if (after.body.some((t) => t.id === id)) fail("deleted task still listed", after.res, after.body);
// another user's tasks stay closed to this token
await call("other user", `${API}/api/someone-else/tasks`, { headers }, 403);
console.log(`auth-frontend: sign-up, token, create, list, update, complete, delete: ok in ${Math.round(performance.now() - t0)} ms`);
