"""The code server: runs inside a location's own environment (child side, 3.8+)."""
