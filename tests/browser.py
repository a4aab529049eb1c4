"""A real headless Chromium for the tests that look at a page, driven by selenium
through Debian's ``chromium`` and ``chromium-driver``.

``scripts/test.sh`` installs both when they are missing (``scripts/browser-env.sh``)
and, when it cannot, says why in ``FOGVERSE_BROWSER_UNAVAILABLE``: the browser tests
then skip with that reason. Without that word from the script a missing browser
fails the test under ``$CI`` (nobody tried to install it) and skips elsewhere.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

BROWSER_FIXTURES = frozenset({"chromium"})

CHROMIUM = os.environ.get("FOGVERSE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FOGVERSE_CHROMEDRIVER", "/usr/bin/chromedriver")

# Without the background-networking flags Chromium phones home at start, and on a
# closed network its connections are refused (and the page's with them).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1400",
)


def skip_or_fail_browser(why: str) -> NoReturn:
    told = os.environ.get("FOGVERSE_BROWSER_UNAVAILABLE")
    if told:
        pytest.skip(f"no headless Chromium: {told}")
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and no headless Chromium could be used: {why} "
                    "(scripts/test.sh installs chromium and chromium-driver)", pytrace=False)
    pytest.skip(f"no headless Chromium: {why} "
                "(scripts/browser-env.sh installs it, or apt-get install chromium chromium-driver)")


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} not found"
    return None


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile under ``tmp_path``), quit afterwards."""
    missing = _missing()
    if missing:
        skip_or_fail_browser(missing)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail_browser("selenium is not installed (pip install 'fogverse[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    """The page as it looks now, under ``tmp_path`` and, when ``FOGVERSE_ARTIFACTS``
    names a folder, there too (CI keeps it)."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path)), f"Chromium saved no screenshot to {path}"
    artifacts = os.environ.get("FOGVERSE_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    return path
