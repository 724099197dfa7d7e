"""The supervisor's own dashboard, served by `up` in its event loop: every location and
system process live, each location's definitions and log, runs and their events, and the
environments (host side; aiohttp and Jinja2)."""
