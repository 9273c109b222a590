"""The one supervisor of a tree of processes, used by `check` and every `demo`.

- `supervisor.Supervisor`: the context manager and its loop (signals, subreaper, guard,
  process events, collecting, the end of the tree);
- `tree.Tree`: who is a member (pid and start time), what each did, the counts;
- `observer.Observer`: brings the tree up to date from kernel events or /proc samples;
- `guard.Guard`: the process that ends the tree if zombiectl is SIGKILLed;
- `teardown`: kill-and-collect (freeze parents first, then SIGKILL, until none is left);
- `spawn`: CMD in a group of its own, as another user if asked, armed to die with us.

The system calls underneath (prctl, pidfd) are in `zombiectl.proc`.
"""
