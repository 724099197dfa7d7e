"""Launching code servers: command lines, environment planning, the process."""
