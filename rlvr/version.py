"""rlvr's version: one place, importing nothing (the packaging reads it too)."""

__version__ = "0.1.0"
