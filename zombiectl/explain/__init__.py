"""`zombiectl explain`: what a zombie is, and why each demo makes or prevents them.

- `model`: the texts, and per strategy its real code and model (plain data).
- `cli`: the click command; `render`: highlighted on a terminal, plain text elsewhere.
"""
