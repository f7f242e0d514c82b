"""Procedural task generators, deterministic by index: arithmetic and countdown / 24."""
