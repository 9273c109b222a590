"""A server that echoes what it first receives, then floods the connection, forever."""

import socket
import sys
import threading

CHUNK = b"z" * 65536


def flood(conn):
    try:
        conn.sendall(conn.recv(4096))
        while True:
            conn.sendall(CHUNK)
    except OSError:
        conn.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
while True:
    conn, _ = s.accept()
    threading.Thread(target=flood, args=(conn,), daemon=True).start()
