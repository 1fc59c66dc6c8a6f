"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium) against the real app
served by `packwork serve` in a subprocess.

Playwright's own browser downloads are never used (no `playwright install`). Without
/usr/bin/chromium the tests skip, except under CI (CI set, or PACKWORK_REQUIRE_BROWSER=1), where
a missing browser fails the run. Every test's `page` fails the test on a console error, an
uncaught page exception or a Content-Security-Policy violation, unless the test is marked
`allow_console_errors` (or empties `console_errors` itself after checking what it expected).
A request to any host but 127.0.0.1 or localhost counts as an error too: no CDN, ever."""

from __future__ import annotations

import contextlib

import importlib.util
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.test_cli_api import _free_port, wait_until_up
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = ("127.0.0.1", "localhost")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
_ERRORS = pytest.StashKey["ConsoleErrors"]()

# Reports a CSP violation as a console error, in case the browser's own report is not one.
_CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (e) => console.error(
  `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));"""


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_console_errors: the page may log console errors and CSP "
                                       "violations without failing the test")


def _browser_required() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false") or os.environ.get("PACKWORK_REQUIRE_BROWSER") == "1"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def browser():
    missing = _missing()
    if missing:
        if _browser_required():
            pytest.fail(f"browser tests must run under CI, but {missing}")
        pytest.skip(f"browser tests need Debian's Chromium and Playwright: {missing}")
    from playwright.sync_api import sync_playwright
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


class ConsoleErrors(list):
    """What went wrong in a page: console errors, uncaught exceptions, CSP violations, and any
    request to a host other than the local test server (a CDN link, say)."""

    def __init__(self, page):
        super().__init__()
        self.page = page
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.append(f"uncaught exception: {error}"))
        page.on("request", self._request)

    def _request(self, request) -> None:
        url = urllib.parse.urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            self.append(f"request off the test server: {request.method} {request.url}")

    def _console(self, message) -> None:
        where = message.location
        # Chromium asks for /favicon.ico by itself when a page names no icon; its 404 is not a page error.
        if message.type == "error" and not (where.get("url") or "").endswith("/favicon.ico"):
            self.append(f"console error: {message.text} ({where.get('url')}:{where.get('lineNumber')})")

    def settle(self) -> list[str]:
        """The errors so far, after one round trip so events already sent have arrived."""
        if not self.page.is_closed():
            try:
                self.page.evaluate("0")
            except Exception:  # noqa: BLE001 - a page mid-navigation or crashed still reports what it has
                pass
        return list(self)


@pytest.fixture
def console_errors(page, request) -> ConsoleErrors:
    """The `page`'s errors so far; a test that provokes one on purpose checks it, then clears this."""
    return request.node.stash[_ERRORS]


@pytest.fixture
def page(browser, request):
    context = browser.new_context()
    context.add_init_script(_CSP_LISTENER)
    page = context.new_page()
    request.node.stash[_ERRORS] = ConsoleErrors(page)
    yield page
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail (not error) a browser test whose page logged an error, once its own body passed."""
    result = yield
    errors = item.stash.get(_ERRORS, None)
    if errors is not None and not item.get_closest_marker("allow_console_errors"):
        found = errors.settle()
        if found:
            pytest.fail("the page reported errors:\n  " + "\n  ".join(found), pytrace=False)
    return result


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[Callable[..., str]]:
    """`start(pack, …, prepare=None)`: install the packs into a fresh SQLite database in
    `folder`, call `prepare(engine)` (to add users or records), serve it with `packwork serve` on
    a free port of 127.0.0.1 and return the base URL (`http://127.0.0.1:PORT`).
    `start(same_as=BASE)` starts a second server process on the database of the one at BASE.
    Stopped on exit; a traceback in a server's log fails the test."""
    servers: list[tuple[subprocess.Popen, Path]] = []
    databases: dict[str, str] = {}

    def start(*packs: Path, prepare: Callable[[sa.Engine], None] | None = None, same_as: str | None = None) -> str:
        n = len(servers)
        db = databases[same_as] if same_as else f"sqlite:///{folder / f'live{n}.db'}"
        if same_as is None:
            _install(db, packs, prepare)
        port, log = _free_port(), folder / f"live{n}.log"
        with log.open("w") as out:
            server = subprocess.Popen([sys.executable, "-m", "packwork", "serve", "--db", db, "--port", str(port),
                                       "--workers", "1", "--threads", "4"], stdout=out, stderr=subprocess.STDOUT)
        servers.append((server, log))
        base = f"http://127.0.0.1:{port}"
        databases[base] = db
        wait_until_up(base + "/api/v1")
        if not _answers(base + "/api/v1/openapi.json"):
            pytest.fail(f"packwork serve did not come up on {base}:\n{log.read_text()}")
        return base

    yield start
    for server, _ in servers:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    for _, log in servers:
        text = log.read_text()
        assert "Traceback" not in text, f"the server logged a traceback:\n{text}"


def _install(db: str, packs: tuple[Path, ...], prepare: Callable[[sa.Engine], None] | None) -> None:
    engine = make_engine(db)
    try:
        apply(engine, plan_packs(engine, list(packs), "install"))
        if prepare:
            prepare(engine)
    finally:
        engine.dispose()


@pytest.fixture
def live_server(tmp_path) -> Iterator[Callable[..., str]]:
    """A `serving(tmp_path)` for one test."""
    with serving(tmp_path) as start:
        yield start


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False
