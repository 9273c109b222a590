"""`zombiectl demo`: make zombies happen live, with real code.

- `model`: what a lab is and reports: `LabSpec`, `LabSample`, `Summary` (plain data).
- `runner`: `LabRunner` runs labs side by side, samples them, and cleans up whatever
  happens; `Lab` is one lab parent seen from zombiectl.
- `guard`: the process that kills every lab if zombiectl itself is SIGKILLed.
- `labproc`: the inside of a lab parent (``python -m zombiectl.demo.labproc``).
- `strategies/`: one module per strategy, and the registry (name -> Strategy).
- `server/`: the forking echo server of `demo server`, and the clients that drive it.
- `cbuild`: the bundled C programs, built and run from a descriptor zombiectl checked.
- `quiz`: the questions of `demo --quiz`.
- `cli`: the click command; `render` and `render_quiz`: what the user sees.

`zombiectl explain` (its own folder, `zombiectl.explain`) shows these strategies' code.
"""
