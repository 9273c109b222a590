"""Demo strategies: one module per way of making (or preventing) zombies.

Every module with a ``STRATEGY`` is registered; see `zombiectl.demo.strategies.registry` for
how a strategy plugs in, and `zombiectl.demo.labproc` for what its lab function can call.
"""
