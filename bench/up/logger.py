"""The chatty service of bench/up.sh: waits for a byte on a FIFO, then writes N numbered
lines to stdout as fast as it can, and waits again (it stays alive: a supervisor would
restart or stop on an exit). Byte `l`: one write per line, as a service that logs line by
line; byte `b`: 64 KiB writes, as fast as Python can produce the lines.

It accepts (and closes) connections on PORT, because `msvc up` wants a port to probe for
every `process` service.

    python3 logger.py N FIFO PORT TAG
"""
import socket
import sys
import threading

n, fifo, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
listener = socket.create_server(("127.0.0.1", port))


def accept():
    while True:
        listener.accept()[0].close()


threading.Thread(target=accept, daemon=True).start()
by_line = open(sys.stdout.fileno(), "w", buffering=1, closefd=False)  # line-buffered
by_block = open(sys.stdout.fileno(), "w", buffering=1 << 16, closefd=False)
while True:
    with open(fifo, "rb") as f:  # blocks until the bench opens it to write
        mode = f.read(1)
    if mode not in (b"l", b"b"):
        continue
    out = by_line if mode == b"l" else by_block
    for i in range(n):
        out.write(f"bench-log {i}\n")
    out.flush()
