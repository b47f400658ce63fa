#!/usr/bin/env python3
"""The API under a hostile load beside the same API left alone, in one run (issue 25's target).

Usage: hostile.py PORT PID LOGFILE TOKEN GET_PATH POST_PATH [DURATION=10] [SLOWLORIS=200] [UPLOADERS=50]

Each side sends 100 GET /health and 100 authenticated GET GET_PATH, one at a time, and
reports their p50/p99. The attacked side does so while a separate process holds SLOWLORIS
connections trickling a header line a second (reopened when closed) and UPLOADERS connections each
sending an unauthenticated POST POST_PATH with a 4 MiB body, over and over. Also reported: the API's largest
RSS during the side, and its log lines per second other than the access log's. Targets: p99 under
100 ms, RSS under 64 MB, a few log lines per second."""
import json, multiprocessing, os, selectors, socket, sys, threading, time

PORT, PID, LOG, TOKEN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
GET_PATH, POST_PATH = sys.argv[5], sys.argv[6]
DURATION = float(sys.argv[7]) if len(sys.argv) > 7 else 10.0
SLOWLORIS = int(sys.argv[8]) if len(sys.argv) > 8 else 200
UPLOADERS = int(sys.argv[9]) if len(sys.argv) > 9 else 50
BODY = 4 << 20


def dial():
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", PORT))
    except BlockingIOError:
        pass
    return s


def attack(stop_at, ready):
    """SLOWLORIS trickling heads and UPLOADERS unauthenticated 4 MiB bodies until stop_at."""
    sel = selectors.DefaultSelector()
    chunk = b"a" * 65536
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
        POST_PATH.encode(), BODY)

    def open_slow():
        s = dial()
        sel.register(s, selectors.EVENT_READ, ["slow", 0.0])

    def open_upload():
        s = dial()
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, ["up", head, 0])

    for _ in range(SLOWLORIS):
        open_slow()
    for _ in range(UPLOADERS):
        open_upload()
    ready.set()
    reopened = answered = 0
    while time.monotonic() < stop_at:
        now = time.monotonic()
        for key, ev in sel.select(timeout=0.05):
            s, st = key.fileobj, key.data
            if ev & selectors.EVENT_READ:
                try:
                    got = s.recv(65536)
                except OSError:
                    got = b""
                if st[0] == "up" and got.startswith(b"HTTP/1.1 "):
                    answered += 1
                if not got or st[0] == "up":  # closed, or answered: a new connection
                    sel.unregister(s)
                    s.close()
                    reopened += 1
                    open_slow() if st[0] == "slow" else open_upload()
                    continue
            if st[0] == "up" and ev & selectors.EVENT_WRITE:
                try:
                    if st[1]:
                        st[1] = st[1][s.send(st[1]):]
                    elif st[2] < BODY:
                        st[2] += s.send(chunk[: BODY - st[2]])
                    else:
                        sel.modify(s, selectors.EVENT_READ, st)
                except BlockingIOError:
                    pass
                except OSError:
                    sel.unregister(s)
                    s.close()
                    reopened += 1
                    open_upload()
        for key in list(sel.get_map().values()):  # a header line a second on each slow connection
            st = key.data
            if st[0] == "slow" and now - st[1] >= 1.0:
                try:
                    key.fileobj.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" if st[1] == 0.0 else b"X-Slow: 1\r\n")
                except OSError:
                    pass
                st[1] = now
    print(json.dumps({"reopened": reopened, "answered_uploads": answered}), file=sys.stderr)


def get(path, auth):
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as s:
        h = "Authorization: Bearer %s\r\n" % TOKEN if auth else ""
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (path, h)).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    if not data.startswith(b"HTTP/1.1 200"):
        sys.exit("hostile.py: %s answered %r" % (path, data[:80]))
    return (time.monotonic() - t0) * 1000


def rss_mb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds():
    with open("/proc/%d/stat" % PID) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines():
    n = 0
    with open(LOG, errors="replace") as f:
        for line in f:
            n += '"msg":"request"' not in line
    return n


def side(attacked):
    stop = threading.Event()
    peak = [rss_mb()]

    def sample():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], rss_mb())

    threading.Thread(target=sample, daemon=True).start()
    proc = None
    if attacked:
        ready = multiprocessing.Event()
        proc = multiprocessing.Process(target=attack, args=(time.monotonic() + DURATION, ready))
        proc.start()
        ready.wait(30)
        time.sleep(1.0)  # the connections are open and the first bodies under way
    lines0, cpu0, t0 = log_lines(), cpu_seconds(), time.monotonic()
    health, tasks = [], []
    for _ in range(100):
        health.append(get("/health", False))
        tasks.append(get(GET_PATH, True))
    if proc:
        left = DURATION - (time.monotonic() - t0) - 1.0
        if left > 0:
            time.sleep(left)
    secs = time.monotonic() - t0
    lines, cpu = log_lines() - lines0, cpu_seconds() - cpu0
    if proc:
        proc.join(DURATION + 30)
    stop.set()
    pct = lambda v, p: sorted(v)[min(len(v) - 1, int(len(v) * p))]
    return [pct(health, 0.5), pct(health, 0.99), pct(tasks, 0.5), pct(tasks, 0.99), peak[0], lines / secs,
            100 * cpu / secs]


if __name__ == "__main__":
    rows = [("alone", side(False)), ("attacked", side(True))]
    print("%-9s %10s %10s %10s %10s %8s %12s %8s" % ("", "health p50", "health p99", "GET p50", "GET p99", "RSS MB",
                                                   "log lines/s", "API CPU%"))
    for name, r in rows:
        print("%-9s %10.1f %10.1f %10.1f %10.1f %8.1f %12.1f %8.0f" % (name, *r))
    print("(attacked: %d slowloris connections and %d unauthenticated 4 MiB uploads, over and over, for %.0f s; "
          "targets: p99 < 100 ms, RSS < 64 MB, a few log lines/s)" % (SLOWLORIS, UPLOADERS, DURATION))
