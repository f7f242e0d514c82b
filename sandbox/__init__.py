"""Runs untrusted programs behind one interface, with Docker and local backends (planned: issue 3)."""
