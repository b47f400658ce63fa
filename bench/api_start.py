#!/usr/bin/env python3
"""Starts the api binary and prints the milliseconds from spawn to the first 200 on /health, then
its pid. Polls with raw sockets every 0.2 ms so the measurement is not the poller's own start-up.
Usage: api_start.py PORT LOGFILE BINARY"""
import os, socket, subprocess, sys, time

port, log, binary = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.monotonic()
proc = subprocess.Popen([binary], stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True)
deadline = t0 + 10
while time.monotonic() < deadline:
    if proc.poll() is not None:
        sys.exit("api exited at startup (see %s)" % log)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                print("%.2f %d" % ((time.monotonic() - t0) * 1000, proc.pid))
                sys.exit(0)
    except OSError:
        time.sleep(0.0002)
proc.kill()
sys.exit("api did not answer /health within 10 s")
