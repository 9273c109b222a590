"""Double-forks a daemon into a session of its own (setsid), prints its pid, then waits.

The daemon escapes the process group a check puts this program in; only the subreaper
(and the guard, told of its new group) keeps it in view.
"""

import os
import sys
import time

r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, f"{os.getpid()}\n".encode())
        os.close(w)
        while True:
            time.sleep(60)
    os._exit(0)
os.close(w)
os.wait()
daemon = os.read(r, 64).decode().strip()
sys.stderr.write(f"daemon {daemon}\n")
sys.stderr.flush()
while True:
    time.sleep(60)
