"""Generated protocol stubs (see proto/generate.py); do not edit."""
