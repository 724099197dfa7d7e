"""What the supervisor asks Dagster's webserver: `/server_info`, and a few GraphQL calls
(which locations it has loaded, reload one, reload the workspace). Blocking (urllib): the
supervisor's loop calls these in a worker thread."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from supervisor.errors import SupervisorError

LOCATIONS_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus versionKey
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""
RELOAD_LOCATION = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename ... on PythonError { message } } }
"""
# The webserver is ours to reach directly: no proxy from the environment stands between.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
RELOAD_WORKSPACE = """
mutation { reloadWorkspace { __typename ... on PythonError { message } } }
"""


@dataclass(frozen=True)
class UiLocation:
    """One location as the webserver has it: LOADED with code, or with the error it got."""

    name: str
    status: str  # LOADING | LOADED
    error: str | None
    version_key: str = ""  # changes with the server it loaded from (its server id)

    @property
    def loaded(self) -> bool:
        return self.status == "LOADED" and self.error is None


class WebserverError(SupervisorError):
    """The webserver did not answer, or answered with an error."""


class Webserver:
    """A client of one Dagster webserver at URL (http://HOST:PORT)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def server_info(self, timeout: float) -> dict[str, Any]:
        """The webserver's versions (its health check)."""
        return self._request("/server_info", None, timeout)

    def graphql(self, query: str, timeout: float, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        answer = self._request("/graphql", body, timeout)
        if answer.get("errors"):
            message = "; ".join(str(e.get("message", e)) for e in answer["errors"])
            raise WebserverError(f"{self.url}/graphql: {message}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise WebserverError(f"{self.url}/graphql answered no data")
        return data

    def locations(self, timeout: float) -> dict[str, UiLocation]:
        """The webserver's code locations by name."""
        found = self.graphql(LOCATIONS_QUERY, timeout)["workspaceOrError"]
        if found.get("__typename") != "Workspace":
            raise WebserverError(f"the webserver has no workspace: {found.get('message', found)}")
        entries = {}
        for entry in found.get("locationEntries") or []:
            inner = entry.get("locationOrLoadError") or {}
            error = inner.get("message") if inner.get("__typename") == "PythonError" else None
            entries[entry["name"]] = UiLocation(
                entry["name"], entry.get("loadStatus", ""), error, entry.get("versionKey") or ""
            )
        return entries

    def reload_location(self, name: str, timeout: float) -> None:
        done = self.graphql(RELOAD_LOCATION, timeout, name=name)["reloadRepositoryLocation"]
        if done.get("__typename") == "PythonError":
            raise WebserverError(f"reloading {name!r} in the webserver: {done.get('message')}")

    def reload_workspace(self, timeout: float) -> None:
        done = self.graphql(RELOAD_WORKSPACE, timeout)["reloadWorkspace"]
        if done.get("__typename") == "PythonError":
            raise WebserverError(f"reloading the webserver's workspace: {done.get('message')}")

    def _request(self, path: str, body: bytes | None, timeout: float) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        try:
            with _OPENER.open(request, timeout=timeout) as answer:
                data = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise WebserverError(f"{self.url}{path}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WebserverError(f"{self.url}{path}: {reason}") from None
        if not isinstance(data, dict):
            raise WebserverError(f"{self.url}{path} answered {type(data).__name__}, not an object")
        return data
