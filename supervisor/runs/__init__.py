"""Runs: the SQLite store, and materializing through a code server."""
