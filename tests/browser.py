"""A real headless Chromium (Debian's, driven by its own chromedriver) for the dashboard's
pages: nothing downloads a browser of its own."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.helpers import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_SECONDS = 30.0


def chromium() -> webdriver.Chrome:
    """A headless Chromium; fails (never skips) when Debian's browser is not installed."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), (
            f"{path} is missing: install Debian's browser with"
            " `apt-get install chromium chromium-driver` (.ci/run does when it is missing)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_SECONDS)
    driver.set_script_timeout(PAGE_SECONDS)
    return driver


class Page:
    """The browser on the dashboard at BASE: open pages, wait on what they show."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base.rstrip("/")

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, css: str = "main") -> str:
        found = self.all(css)
        return found[0].text if found else f"(nothing matches {css})"

    def wait(
        self,
        condition: Callable[[], object],
        what: str,
        timeout: float = PAGE_SECONDS,
        seen: Callable[[], object] | None = None,
    ) -> Any:
        """Wait for CONDITION; on the deadline fail showing SEEN (the page's text by default)."""
        return wait_for(condition, timeout, what, seen or (lambda: self.text()))

    def screenshot(self, folder: Path, name: str) -> Path:
        """The whole page (not only the window) as a PNG in FOLDER."""
        height = self.js("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, max(1000, min(int(height) + 40, 4000)))
        path = folder / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        self.driver.set_window_size(1400, 1000)
        return path

    def console_errors(self) -> list[str]:
        """The page's script errors (a favicon or the like would show here too)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE"
        ]
