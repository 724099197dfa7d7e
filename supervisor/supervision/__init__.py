"""Supervision: locations, their states and restart policy, the supervisor loop."""
