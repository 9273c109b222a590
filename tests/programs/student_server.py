"""Forking echo servers as students write them in Python, right and wrong, one per mode.

    student_server.py PORT MODE

listen5: correct (a SIGCHLD handler loops waitpid(WNOHANG)), listen(5). once: one
os.wait() per SIGCHLD. ignore: SIGCHLD set to SIG_IGN. linger: never waits; each handler
closes, then lingers 2 s. noclose: reaps, but the parent keeps every connection (in a
list of its clients) and never closes it; a bare forgotten close() would not do, since
Python closes a socket once nothing refers to it.
swapped: binds socket.htons(PORT), the port with its bytes swapped. exit: the port is
taken by its own first socket, so bind fails: the error on stderr, exit status 1.
daemon: forks into the background (the parent exits 0), the child serves.
"""

import os
import signal
import socket
import sys
import time


def reap_all(signum, frame):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def reap_one(signum, frame):
    try:
        os.wait()
    except ChildProcessError:
        pass


def serve(conn, linger):
    while True:
        data = conn.recv(4096)
        if not data:
            break
        conn.sendall(data)
    conn.close()
    if linger:
        time.sleep(2)
    os._exit(0)


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode in ("listen5", "noclose", "daemon"):
        signal.signal(signal.SIGCHLD, reap_all)
    elif mode == "once":
        signal.signal(signal.SIGCHLD, reap_one)
    elif mode == "ignore":
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    if mode == "daemon":
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "exit":
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        try:
            s.bind(("127.0.0.1", taken.getsockname()[1]))
        except OSError as err:
            sys.stderr.write(f"bind: {err.strerror}\n")
            sys.exit(1)
    s.bind(("127.0.0.1", socket.htons(port) if mode == "swapped" else port))
    s.listen(5 if mode == "listen5" else 128)
    clients = []
    while True:
        conn, _ = s.accept()
        if os.fork() == 0:
            s.close()
            serve(conn, mode == "linger")
        if mode == "noclose":
            clients.append(conn)
        else:
            conn.close()


main()
