"""Dagster's own UI over supervised Dagster locations: the instance, the workspace file
Dagster reads, the webserver and daemon's environment and commands, and the webserver's API."""

WEBSERVER = "dagster-webserver"
DAEMON = "dagster-daemon"
SYSTEM_NAMES = (WEBSERVER, DAEMON)
RUNTIME = "system"  # the runtime status shows for them
