#!/usr/bin/env python3
"""Writes a wrk Lua script for GET /api/{user_id}/tasks/{id}: HS256 tokens (valid 1 hour) for the
users 0..USERS-1, and random ids 1..ROWS whose owner is id % USERS (how bench/api.sh seeds them).
Usage: api_tokens.py SECRET USERS ROWS > script.lua"""
import base64, hashlib, hmac, json, sys, time

secret, users, rows = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
print("local tokens = {}")
for u in range(users):
    claims = b64(json.dumps({"sub": str(u), "exp": int(time.time()) + 3600}).encode())
    sig = b64(hmac.new(secret, (head + "." + claims).encode(), hashlib.sha256).digest())
    print('tokens[%d] = "Bearer %s.%s.%s"' % (u, head, claims, sig))
print("""
math.randomseed(os.time())
request = function()
  local id = math.random(1, %d)
  local u = id %% %d
  return wrk.format("GET", "/api/" .. u .. "/tasks/" .. id, {["Authorization"] = tokens[u]})
end
""" % (rows, users))
