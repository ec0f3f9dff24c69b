"""Waits for SIGTERM and prints the moment its handler ran, for `npm run bench -- containers`.

Prints `ready` once the handler is installed, then `term <ns>` from inside the handler, and exits
0. The time is CLOCK_MONOTONIC, which a container shares with its host, so the bench compares it
with the moment it sent the signal. The same file runs on the host and in the container: the two
delivery times differ only by the path the signal takes (`kill` vs `docker kill --signal`
through `--init`).
"""
import signal
import sys
import time


def on_term(signum, frame):
    print("term %d" % time.monotonic_ns(), flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    signal.pause()
