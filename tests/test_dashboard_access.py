"""Who may use the dashboard, and where it listens: the `ui:` block, the token beyond
loopback, actions only from its own pages, the default port giving way, `supervisor ui`."""

from __future__ import annotations

import json
import socket
import stat
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.errors import WorkspaceError
from supervisor.workspace import UiSpec, WorkspaceSpec, load_workspace
from supervisor.workspace.specs import DEFAULT_UI_PORT
from tests.helpers import EXAMPLES, wait_for
from tests.uphelp import Up, cli, dashboard_entry

pytestmark = pytest.mark.timeout(600)

ENTRY = "load_from:\n  - python_file: repo.py\n"


def load(folder: Path, text: str) -> WorkspaceSpec:
    path = folder / "workspace.yaml"
    path.write_text(textwrap.dedent(text))
    return load_workspace(path)


def problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(WorkspaceError) as caught:
        load(folder, text)
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_ui_block_defaults_false_and_keys(tmp_path: Path) -> None:
    assert load(tmp_path, ENTRY).ui == UiSpec(line=0)
    spec = load(tmp_path, ENTRY).ui
    assert spec.enabled and spec.host == "127.0.0.1" and spec.port is None
    assert not load(tmp_path, "ui: false\n" + ENTRY).ui.enabled
    spec = load(tmp_path, "ui: {port: 0, token_file: secret/token}\n" + ENTRY).ui
    assert spec.port == 0 and spec.token_file == tmp_path / "secret" / "token"
    assert not load(tmp_path, "ui: {enabled: false}\n" + ENTRY).ui.enabled


def test_ui_block_errors_name_line_key_and_value(tmp_path: Path) -> None:
    found = problems(tmp_path, "ui:\n  prot: 3030\n  port: 70000\n  enabled: yes please\n" + ENTRY)
    text = "\n".join(found)
    assert "workspace.yaml:2 ui.prot" in text and "did you mean 'port'" in text
    assert "workspace.yaml:3 ui.port" in text and "70000" in text
    assert "workspace.yaml:4 ui.enabled" in text and "true or false" in text
    assert len(found) == 3


def test_up_help_and_ui_without_a_supervisor(tmp_path: Path) -> None:
    shown = cli("up", "--help")
    assert "--ui-port" in shown.stdout and "--no-ui" in shown.stdout
    (tmp_path / "workspace.yaml").write_text(ENTRY)
    out = cli("ui", "-w", str(tmp_path / "workspace.yaml"))
    assert out.returncode == 1, out
    assert "no supervisor is running for" in out.stderr and "Traceback" not in out.stderr


def workspace(root: Path, ui: str) -> Path:
    path = root / "workspace.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            envs_dir: {root / "envs"}
            {ui}
            load_from:
              - python_file:
                  relative_path: {EXAMPLES / "empty_location.py"}
                  location_name: empty
            """
        )
    )
    return path


def serves_pages(pid: int) -> bool:
    """Whether process PID has aiohttp's compiled parser mapped (it is loaded)."""
    return "aiohttp/_http_parser" in Path(f"/proc/{pid}/maps").read_text()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """The status, headers and body of one request (errors included), never redirected."""
    opener = urllib.request.build_opener(NoRedirect)
    data = b"{}" if method == "POST" else None
    made = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(made, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture(scope="module")
def beyond(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, str, str]]:
    """An `up` whose dashboard listens on every address, with a token it writes."""
    root = tmp_path_factory.mktemp("beyond")
    token_file = root / "private" / "ui-token"
    path = workspace(root, f"ui: {{host: 0.0.0.0, port: 0, token_file: {token_file}}}")
    up = Up(path)
    try:
        up.wait_state("empty", "SERVING", timeout=300)
        entry = dashboard_entry(path)
        assert entry["token_required"] is True
        yield up, entry["url"].replace("0.0.0.0", "127.0.0.1"), token_file.read_text().strip()
    finally:
        up.stop()


def test_beyond_loopback_every_request_needs_the_token(beyond) -> None:
    up, url, token = beyond
    token_file = up.workspace_file.parent / "private" / "ui-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "beyond this machine" in up.log(400)
    status, _, body = request(url)
    assert status == 401 and "needs its token" in body
    status, _, _ = request(url, headers={"Cookie": "supervisor_dashboard_token=wrong"})
    assert status == 401
    status, headers, _ = request(url + "?token=" + token)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert f"supervisor_dashboard_token={token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, body = request(url, headers={"Cookie": f"supervisor_dashboard_token={token}"})
    assert status == 200 and 'data-name="empty"' in body
    status, _, body = request(url + "api/status", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)[0]["state"] == "SERVING"


def test_actions_come_only_from_the_dashboards_pages(beyond) -> None:
    _, url, token = beyond
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, _, body = request(url + "api/reload", "POST", auth)
    assert status == 403 and "own pages" in body
    foreign = {**auth, "X-Supervisor-Dashboard": "1", "Origin": "http://evil.example"}
    status, _, _ = request(url + "api/reload", "POST", foreign)
    assert status == 403
    status, _, body = request(url + "api/reload", "POST", {**auth, "X-Supervisor-Dashboard": "1"})
    assert status == 200, body
    assert json.loads(body)["ok"] is True


def test_the_default_port_gives_way_and_no_ui_serves_none(tmp_path: Path) -> None:
    holder = socket.socket()
    try:
        try:
            holder.bind(("127.0.0.1", DEFAULT_UI_PORT))
            holder.listen()
        except OSError:
            pass  # something else holds it already: the same case
        path = workspace(tmp_path, "")
        up = Up(path)
        try:
            up.wait_state("empty", "SERVING", timeout=300)
            url = dashboard_entry(path)["url"]
            assert url.startswith("http://127.0.0.1:")
            assert f":{DEFAULT_UI_PORT}/" not in url
            assert f"port {DEFAULT_UI_PORT} is taken" in up.log(400)
            # What serves the pages loads at the first connection, not before.
            assert not serves_pages(up.proc.pid), "aiohttp loaded before anyone asked"
            status, _, body = request(url)
            assert status == 200 and 'data-name="empty"' in body
            assert serves_pages(up.proc.pid)
        finally:
            assert up.stop() == 0
    finally:
        holder.close()
    up = Up(path, "--no-ui")
    try:
        up.wait_state("empty", "SERVING", timeout=300)
        out = cli("ui", "-w", str(path))
        assert out.returncode == 1 and "serves no dashboard" in out.stderr, out
        assert "dashboard:" not in up.log(400)
    finally:
        up.stop()


def test_a_chosen_port_that_is_taken_is_said_and_up_goes_on(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = workspace(tmp_path, f"ui: {{port: {port}}}")
        up = Up(path)
        try:
            up.wait_state("empty", "SERVING", timeout=300)
            wait_for(
                lambda: "the dashboard does not run" in up.log(400),
                30,
                "up to say the dashboard cannot listen",
                lambda: up.log(),
            )
            assert f"127.0.0.1:{port}" in up.log(400)
        finally:
            up.stop()
