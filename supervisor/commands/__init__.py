"""The CLI's commands, one module per area; supervisor/cli.py assembles them."""
