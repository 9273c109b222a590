"""A server that echoes what it reads one byte a second (one thread per connection)."""

import socket
import sys
import threading
import time


def drip(conn):
    try:
        for byte in conn.recv(4096):
            conn.sendall(bytes([byte]))
            time.sleep(1)
        time.sleep(60)
    except OSError:
        pass
    conn.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
while True:
    conn, _ = s.accept()
    threading.Thread(target=drip, args=(conn,), daemon=True).start()
