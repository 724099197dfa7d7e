"""The control service of a running `up`, its client, and the code-server client."""
