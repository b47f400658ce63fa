#!/usr/bin/env python3
"""Writes a wrk Lua script for one endpoint of the Todo API, or for a weighted mix of them, with
HS256 tokens (valid 1 hour) for the users 0..USERS-1 and task ids chosen the way bench/endpoints.sh
seeds them: ids 1..ROWS belong to user id % USERS (read, listed, updated, toggled), ids DEL_LO..DEL_HI
to user USERS + id % USERS, there to be deleted (restored after each measurement that deleted some).

Usage: workload.py SECRET USERS ROWS DEL_LO DEL_HI KIND[=WEIGHT] [KIND=WEIGHT ...] > script.lua
KIND: get list create put toggle delete. Requests are formatted once per wrk thread (COUNT of them, in
random order) and replayed round-robin: the load generator shares the CPU with the server and the
database, so its per-request work is a table lookup. Deletes are not replayed: each is formatted when
sent, with the next of the thread's own ids (every other one of the range), in random order."""
import base64, hashlib, hmac, json, sys, time

secret, users, rows = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
del_lo, del_hi = int(sys.argv[4]), int(sys.argv[5])
mix = []
for arg in sys.argv[6:]:
    kind, _, weight = arg.partition("=")
    if kind not in ("get", "list", "create", "put", "toggle", "delete"):
        sys.exit("workload.py: unknown kind %r" % kind)
    mix.append((kind, int(weight or 1)))
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
print("local tokens = {}")
for u in range(2 * users):
    claims = b64(json.dumps({"sub": str(u), "exp": int(time.time()) + 3600}).encode())
    sig = b64(hmac.new(secret, (head + "." + claims).encode(), hashlib.sha256).digest())
    print('tokens[%d] = "Bearer %s.%s.%s"' % (u, head, claims, sig))
# one Lua function per kind: (random id in 1..rows, its owner) -> formatted request
print("""
local rows, users, del_lo, del_hi = %d, %d, %d, %d
local function hdr(u) return {["Authorization"] = tokens[u], ["Content-Type"] = "application/json"} end
local make = {}
make.get = function(id, u) return wrk.format("GET", "/api/" .. u .. "/tasks/" .. id, hdr(u)) end
make.list = function(id, u) return wrk.format("GET", "/api/" .. u .. "/tasks?limit=20", hdr(u)) end
make.create = function(id, u)
  return wrk.format("POST", "/api/" .. u .. "/tasks", hdr(u),
                    '{"title":"task","description":"details of the task"}')
end
make.put = function(id, u)
  return wrk.format("PUT", "/api/" .. u .. "/tasks/" .. id, hdr(u),
                    '{"title":"task","description":"details of the task","completed":false}')
end
make.toggle = function(id, u) return wrk.format("PATCH", "/api/" .. u .. "/tasks/" .. id .. "/complete", hdr(u)) end
make.delete = function(id, u) return wrk.format("DELETE", "/api/" .. u .. "/tasks/" .. id, hdr(u)) end
""" % (rows, users, del_lo, del_hi))
print("local mix = {%s}" % ", ".join('{"%s", %d}' % m for m in mix))
print("""
local reqs, n, i, dels, d = {}, 0, 0, {}, 0
local threads = 0
function setup(thread) -- runs in the main state: each thread gets its index, for its own delete ids
  thread:set("tidx", threads)
  threads = threads + 1
  thread:set("nthreads", 2) -- endpoints.sh runs wrk -t2
end
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  local total = 0
  for _, m in ipairs(mix) do total = total + m[2] end
  -- this thread's own share of the deletable ids (every other id), shuffled
  dels, d = {}, 0
  for id = del_lo + (tidx or 0), del_hi, (nthreads or 1) do dels[#dels + 1] = id end
  for k = #dels, 2, -1 do local j = math.random(1, k); dels[k], dels[j] = dels[j], dels[k] end
  for k = 1, 20000 do
    local pick, kind = math.random(1, total), nil
    for _, m in ipairs(mix) do
      if pick <= m[2] then kind = m[1]; break end
      pick = pick - m[2]
    end
    if kind == "delete" then
      reqs[k] = false -- formatted when sent, with the next id: a replayed delete would be a 404
    else
      local id = math.random(1, rows)
      reqs[k] = make[kind](id, id % users)
    end
  end
  n = #reqs
end
function request()
  i = i % n + 1
  local r = reqs[i]
  if r then return r end
  d = d % #dels + 1
  return make.delete(dels[d], users + dels[d] % users)
end
""")
