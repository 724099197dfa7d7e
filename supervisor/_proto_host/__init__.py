"""Generated stubs of the host-only control service (see proto/generate.py); do not edit."""
