"""zombiectl: make zombie processes visible, explain them, and clear them safely."""

__version__ = "0.1.0"
