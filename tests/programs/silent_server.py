"""A server that accepts every connection and never answers: clients wait on it."""

import socket
import sys
import time

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
held = []
while True:
    held.append(s.accept()[0])
    time.sleep(0)
