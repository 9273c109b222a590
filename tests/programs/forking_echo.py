"""A forking TCP echo server in Python, as a student writes it.

    forking_echo.py PORT leak|fixed|crash|double-fork|never-listen

leak: never waits. fixed: a SIGCHLD handler reaps every finished child. crash: aborts
(SIGABRT) at its fourth connection. double-fork: each handler is a grandchild whose
parent exits at once (the server reaps that parent), so the handlers are orphans.
never-listen: sleeps without ever listening.
"""

import os
import signal
import socket
import sys
import time


def serve(conn: socket.socket) -> None:
    while True:
        data = conn.recv(4096)
        if not data:
            break
        conn.sendall(data)
    conn.close()
    os._exit(0)


def reap_all(signum, frame):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode == "never-listen":
        while True:
            time.sleep(60)
    if mode == "fixed":
        signal.signal(signal.SIGCHLD, reap_all)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    served = 0
    while True:
        conn, _ = s.accept()
        served += 1
        if mode == "crash" and served == 4:
            os.abort()
        pid = os.fork()
        if pid == 0:
            s.close()
            if mode == "double-fork":
                os.setsid()
                if os.fork() != 0:
                    os._exit(0)
            serve(conn)
        conn.close()
        if mode == "double-fork":
            os.waitpid(pid, 0)


main()
