"""`zombiectl check`: grade a program's zombie hygiene.

- `session.Check`: one check from start to verdict, and the clean-up it guarantees.
- `observer.Observer`: kernel process events (`zombiectl.proc.events`) or samples of
  the tree, and the polling of known zombies.
- `tree.Tree`: the model: who is in the tree, who became a zombie when, who collected it.
- `listening`: is a process of the tree listening on the port?
- `verdict`: the facts, the criteria and the report.
- `cli`: the click command; `render`: the live view, text, JSON and JUnit.
"""
