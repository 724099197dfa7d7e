"""Benchmark: the dashboard's deployment page with many locations, and how soon it shows a change.

Runs a real `supervisor up --ui-port 0` on --locations locations (each a `python_file` location
on examples/empty_location.py on the host interpreter; one environment, built untimed) and,
once all are SERVING:
- over HTTP, the first GET / (it loads what serves the pages), then --loads times each:
  GET / to its first byte and to its last, against the same server's GET of a static file
  (the floor of the HTTP stack in the same process);
- in Debian's headless Chromium, --loads times each: navigation start to the load event of
  the deployment page (HTML, CSS, scripts, the live stream opened), against the same for
  the static file alone;
- --cycles times each, in that page: a location stopped, then started, through the control
  API; from the supervisor's recorded transition (STOPPED, SERVING) to the page's row
  showing it (a MutationObserver's timestamp on the same clock).
Goals: the complete page under 100 ms; a state change on the page under 100 ms after it.
--smoke: 5 locations, 3 loads, 1 cycle.

Usage: .venv/bin/python bench/ui.py [--locations N] [--loads N] [--cycles N] [--json] [--smoke]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import http.client  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from bench import common  # noqa: E402
from supervisor._proto_host import control_pb2 as pb  # noqa: E402

PAGE_GOAL = 0.100  # seconds, the complete deployment page
CHANGE_GOAL = 0.100  # seconds, a transition to the page showing it
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SMOKE = {"locations": 5, "loads": 3, "cycles": 1}
WAIT_SECONDS = 30.0

# Records, per location, the page's time (ms since the epoch) of each state its row takes.
OBSERVE = """
window.benchSeen = [];
new MutationObserver((changes) => {
  const at = performance.timeOrigin + performance.now();
  for (const change of changes) {
    const tr = change.target;
    window.benchSeen.push([tr.dataset.name, tr.dataset.state, at]);
  }
}).observe(document.querySelector('#locations tbody'),
           {attributes: true, subtree: true, attributeFilter: ['data-state']});
"""
NAVIGATION = """
const [entry] = performance.getEntriesByType('navigation');
return entry ? [entry.responseStart, entry.loadEventEnd] : null;
"""


def fetch(host: str, port: int, path: str) -> tuple[float, float, bytes]:
    """GET PATH on a fresh connection: seconds to the first byte, to the last, and the body."""
    connection = http.client.HTTPConnection(host, port, timeout=WAIT_SECONDS)
    try:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()  # the status line: the first byte is in
        first = time.perf_counter() - started
        body = response.read()
        last = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    return first, last, body


def http_figures(url: str, loads: int, locations: int) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    # The first request loads what serves the pages (dashboard/front.py): timed apart.
    _, first_page, html = fetch(host, port, "/")
    rows = html.count(b"<tr data-name=")
    if rows != locations:
        raise RuntimeError(f"the page lists {rows} locations, not {locations}")
    static = re.search(rb'href="(/static/[0-9a-f]+/app\.css)"', html)
    if static is None:
        raise RuntimeError("no stylesheet on the page")
    page = [fetch(host, port, "/") for _ in range(loads)]
    floor = [fetch(host, port, static.group(1).decode()) for _ in range(loads)]
    return {
        "html_bytes": len(html),
        "first_page": first_page,
        "ttfb": common.median(p[0] for p in page),
        "html": common.median(p[1] for p in page),
        "static_ttfb": common.median(f[0] for f in floor),
        "static": common.median(f[1] for f in floor),
        "static_path": static.group(1).decode(),
    }


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            raise RuntimeError(f"{path} is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {WAIT_SECONDS:g}s waiting for {what}")
        time.sleep(0.005)


def page_loads(driver: Any, url: str, loads: int) -> list[float]:
    """Navigation start to the load event, in seconds, of LOADS loads of URL."""
    seconds = []
    for _ in range(loads):
        driver.get(url)
        times = wait(
            lambda: (t := driver.execute_script(NAVIGATION)) and t[1] > 0 and t,
            "the load event",
        )
        seconds.append(times[1] / 1000)
    return seconds


def transition_at(client: Any, name: str, state: str, after: float) -> float:
    reply = client.call("Status", pb.StatusRequest(locations=[name]), timeout=10)
    return float(common.transition_after(reply.locations[0], state, after).at)


def change_delays(driver: Any, url: str, client: Any, name: str, cycles: int) -> list[float]:
    """Seconds from each recorded transition (STOPPED, then SERVING) to the page showing it."""
    driver.get(url)
    driver.execute_script(OBSERVE)
    delays = []
    for _ in range(cycles):
        for action, state in (("Stop", "STOPPED"), ("Start", "SERVING")):
            after = time.time()
            client.call(action, pb.LocationsRequest(locations=[name]), timeout=60)

            def shown(state: str = state, after: float = after) -> float | None:
                seen = driver.execute_script("return window.benchSeen")
                for row, row_state, at in seen:
                    if row == name and row_state == state and at / 1000 >= after:
                        return at / 1000
                return None

            page_at = wait(shown, f"{name} {state} on the page")
            delays.append(page_at - transition_at(client, name, state, after))
    return delays


def dashboard_url(workspace: Path) -> str | None:
    """The dashboard's address, once it listens (it starts after the locations do)."""
    shown = subprocess.run(
        [common.SUPERVISOR, "ui", "--json", "-w", str(workspace)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(shown.stdout)["url"] if shown.returncode == 0 else None


def run(locations: int, loads: int, cycles: int) -> dict[str, Any]:
    root = common.private_tempdir()
    entries = (
        common.python_file(common.EMPTY_LOCATION, f"loc{index:03d}") for index in range(locations)
    )
    workspace = common.write_workspace(root, entries, envs=root / "envs")
    common.build_env(workspace)
    up = common.Up(workspace, "--ui-port", "0", cwd=root)
    driver = None
    try:
        client = common.connect(up, 60)
        for index in range(locations):
            common.wait_location(
                up, client, f"loc{index:03d}", common.is_serving, 60 + 2 * locations, "SERVING"
            )
        url = wait(lambda: dashboard_url(workspace), "the dashboard's address")
        result: dict[str, Any] = {"locations": locations, "loads": loads, "cycles": cycles}
        result["http"] = http_figures(url, loads, locations)
        driver = chromium()
        page_loads(driver, url, 1)  # the browser's own first start is not the page's
        result["browser_page"] = common.median(page_loads(driver, url, loads))
        static_url = url.rstrip("/") + result["http"]["static_path"]
        result["browser_static"] = common.median(page_loads(driver, static_url, loads))
        delays = change_delays(driver, url, client, "loc000", cycles)
        result["change_delay"] = common.median(delays)
        result["change_delay_max"] = max(delays)
        client.__exit__()
        return result
    finally:
        if driver is not None:
            driver.quit()
        common.stop_up(up)
        shutil.rmtree(root, ignore_errors=True)


def report(result: dict[str, Any]) -> None:
    http = result["http"]
    n = result["locations"]
    ms = 1000
    print(f"deployment page with {n} locations ({http['html_bytes']} bytes of HTML):")
    print(
        f"  HTTP time to first byte: page {http['ttfb'] * ms:.1f} ms, static file"
        f" {http['static_ttfb'] * ms:.1f} ms, ratio {http['ttfb'] / http['static_ttfb']:.2f}"
    )
    print(f"  the first page, which loads the dashboard's server: {http['first_page'] * ms:.0f} ms")
    print(
        f"  HTTP whole page: page {http['html'] * ms:.1f} ms, static file"
        f" {http['static'] * ms:.1f} ms, ratio {http['html'] / http['static']:.2f}"
    )
    print(
        f"  Chromium, navigation -> load event: page {result['browser_page'] * ms:.1f} ms,"
        f" static file {result['browser_static'] * ms:.1f} ms,"
        f" ratio {result['browser_page'] / result['browser_static']:.2f}"
    )
    print(
        f"state change -> the page shows it: median {result['change_delay'] * ms:.1f} ms,"
        f" max {result['change_delay_max'] * ms:.1f} ms"
        f" ({2 * result['cycles']} changes: STOPPED, SERVING)"
    )
    print(
        f"Goals (page < {PAGE_GOAL * ms:.0f} ms, change < {CHANGE_GOAL * ms:.0f} ms):"
        f" {common.verdict(met(result))}"
    )


def met(result: dict[str, Any]) -> bool:
    return result["browser_page"] < PAGE_GOAL and result["change_delay"] < CHANGE_GOAL


def main(argv: list[str] | None = None) -> int:
    parser = common.parser_for(__doc__)
    parser.add_argument("--locations", type=int, default=50)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=10)
    args = common.parse(parser, argv, SMOKE)
    result = run(args.locations, args.loads, args.cycles)
    return common.finish(result, args, report, met(result))


if __name__ == "__main__":
    sys.exit(main())
