// A Better Auth server as the hackathon brief's Next.js app would run it: email + password, the JWT
// plugin with its defaults (EdDSA, JWKS at /api/auth/jwks), an in-memory store. Listens on
// 127.0.0.1:$PORT and prints "ready" (tests/app/test_auth_frontend.c starts it).
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

const port = Number(process.env.PORT);
const baseURL = `http://127.0.0.1:${port}`;

export const auth = betterAuth({
  baseURL,
  secret: process.env.BETTER_AUTH_SECRET ?? "better-auth-test-secret-0123456789abcdef",
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
  emailAndPassword: { enabled: true },
  plugins: [jwt()],
  telemetry: { enabled: false },
});

http.createServer(toNodeHandler(auth)).listen(port, "127.0.0.1", () => console.log("ready"));
