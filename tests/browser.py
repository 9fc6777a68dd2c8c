"""Headless Chromium for the tests of scaleml's pages (the insight reports, the dashboard
pages): Debian's ``chromium`` driven through Playwright, with every console error and
uncaught page error collected so that a test can assert there were none."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    """The Chromium executable on this machine (the README's test command installs Debian's
    ``chromium`` when it is missing)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "headless Chromium is missing: install Debian's chromium (apt-get install chromium)"
    )


@dataclass
class Browser:
    """One headless Chromium; ``open`` loads a page and returns it with its console errors."""

    _browser: Any
    errors: list[str] = field(default_factory=list)

    def open(self, url: str, *, width: int = 1400, height: int = 1000) -> Any:
        """Load ``url`` in a new page; its console errors and page errors go to ``self.errors``
        (emptied first, so it holds the errors of the pages opened since this call)."""
        self.errors.clear()
        page = self._browser.new_page(viewport={"width": width, "height": height})
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.goto(url)
        return page


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield Browser(browser)
        finally:
            browser.close()
