"""Browser test harness: a real server in a subprocess, driven by Debian's headless Chromium through Playwright.

- ``live_server``: a fresh ``EOFFICE_VAR_DIR`` (SQLite, local blobs, in-process broker), ``eoffice migrate`` and
  ``eoffice demo``, then ``eoffice serve`` on a free loopback port in its own process group. Yields the base URL
  (a ``str`` that also carries ``.log`` and ``.var_dir``). The server log is attached to the report of a failed
  test and stops the test with its tail when the server does not come up.
- ``browser``, ``context`` and ``page`` (one each per test): Playwright's async API on ``shutil.which("chromium")``;
  Vietnamese locale, the agencies' time zone, a 10-inch tablet viewport with touch. Tests are ``async def``.
- On failure, a screenshot and the HTML of every open page go to ``test-artifacts/<test name>.png/.html`` and
  the server's log is attached to the report.

Playwright cannot download browsers on these machines; ``make test`` installs Debian's chromium instead. When it
is missing the tests skip, or fail under ``CI``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, require

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1024, "height": 768}  # a 10-inch tablet in landscape
LOCALE = "vi-VN"
TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_TIMEOUT_MS = 15_000
STARTUP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 200

DEMO_PASSWORD = "Demo@2026"

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in tests/e2e is an end-to-end test, marked or not."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------------------------------- server ---


class LiveServer(str):
    """The base URL of a running server, plus where its data and log are."""

    log: Path
    var_dir: Path
    process: subprocess.Popen[bytes]

    def __new__(cls, url: str, *, log: Path, var_dir: Path, process: subprocess.Popen[bytes]) -> LiveServer:
        self = super().__new__(cls, url)
        self.log = log
        self.var_dir = var_dir
        self.process = process
        return self

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log, lines)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _eoffice() -> str:
    """The ``eoffice`` script of the virtualenv running the tests."""
    candidate = Path(sys.executable).parent / "eoffice"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("eoffice")
    if found is None:
        pytest.fail("the `eoffice` command is not installed: run `make test` (pip install -e '.[test]')")
    return found


def server_env(var_dir: Path) -> dict[str, str]:
    """The environment of a server under test: nothing inherited from EOFFICE_* except test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOFFICE_") or k.startswith("EOFFICE_TEST_")}
    env.update(
        EOFFICE_VAR_DIR=str(var_dir),
        EOFFICE_DATABASE_URL=f"sqlite+aiosqlite:///{var_dir}/eoffice.db",
        EOFFICE_BLOB_URL=f"file://{var_dir}/blobs",
        EOFFICE_BROKER_URL="memory://",
        EOFFICE_SECRET_KEY=secrets.token_urlsafe(32),
        EOFFICE_DRAIN_DELAY="0",  # no load balancer to tell: stop at once on SIGTERM (web.drain)
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
    )
    return env


def _fail_with_log(message: str, log: Path) -> None:
    """Fail with a one-line message; the log's tail goes to stderr, which pytest shows with the error."""
    sys.stderr.write(f"----- {log} (last {LOG_TAIL_LINES} lines) -----\n{_tail(log)}\n")
    pytest.fail(f"{message} (log: {log})", pytrace=False)


def _run_step(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        result = subprocess.run(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=300)
    if result.returncode != 0:
        _fail_with_log(f"`eoffice {' '.join(args[1:])}` exited with {result.returncode}", log)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail_with_log(f"the server exited with {process.returncode} before answering", log)
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    _fail_with_log(f"{url}/healthz did not answer 200 within {STARTUP_TIMEOUT_S:.0f} s ({last})", log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL after a short wait."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def start_server(var_dir: Path, *, demo: bool = True, host: str = "127.0.0.1",
                 env_extra: dict[str, str] | None = None, steps: list[list[str]] | None = None) -> Iterator[LiveServer]:
    """Migrate, load demo data, serve on a free port (of ``host``); stop at the end. A generator for fixtures.
    ``env_extra``: settings of this server (``EOFFICE_SMTP_HOST``, ...); ``steps``: more ``eoffice`` commands
    to run before it serves (``["org", "import", "nguoi-dung.csv"]``)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    log = var_dir / "server.log"
    env = {**server_env(var_dir), **(env_extra or {})}
    cwd = Path(__file__).resolve().parents[2]
    eoffice = _eoffice()
    _run_step([eoffice, "migrate"], env, log, cwd)
    if demo:
        _run_step([eoffice, "demo"], env, log, cwd)
    for step in steps or []:
        _run_step([eoffice, *step], env, log, cwd)
    port = free_port()
    url = f"http://{host}:{port}"
    with log.open("ab") as out:
        out.write(f"$ {eoffice} serve --host {host} --port {port}\n".encode())
        out.flush()
        process = subprocess.Popen(
            [eoffice, "serve", "--host", host, "--port", str(port)],
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so teardown stops everything it started
        )
    try:
        _wait_healthy(url, process, log)
        yield LiveServer(url, log=log, var_dir=var_dir, process=process)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the demo organisation, shared by the tests of one module."""
    yield from start_server(tmp_path_factory.mktemp("live") / "var")


# -------------------------------------------------------------------------------------------------- browser ---


# Playwright's async API, in the test's own event loop. The sync API is not used on purpose: while it is
# active it leaves an event loop marked as running in the main thread, and every pytest-asyncio test or fixture
# after it fails with "Runner.run() cannot be called from a running event loop". A browser per test costs a
# few seconds and buys full isolation; journeys are few.


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Debian chromium (through ``executable_path``), one per test."""
    executable = shutil.which("chromium")
    require("Chromium", executable is not None, "Debian's `chromium` is not on PATH (make test installs it as root)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require("Chromium", False, "the Python package `playwright` is not installed (pip install -e '.[test]')")
        raise
    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # Playwright raises its own Error type: report it as a missing service
            require("Chromium", False, f"could not start {executable}: {exc}")
            raise
        try:
            yield browser
        finally:
            await browser.close()


async def new_context(browser: Any, **options: Any) -> Any:
    """A fresh browser profile (no cookies): Vietnamese, Asia/Ho_Chi_Minh, tablet-sized, touch."""
    settings: dict[str, Any] = {"locale": LOCALE, "timezone_id": TIMEZONE, "viewport": VIEWPORT, "has_touch": True}
    settings.update(options)
    ctx = await browser.new_context(**settings)
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return ctx


@pytest.fixture
async def context(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The test's browser profile. A journey with two people opens a second one with ``new_context(browser)``."""
    ctx = await new_context(browser)
    try:
        yield ctx
    finally:
        # Still inside the test's loop, with the pages open: keep what the browser showed if the test failed.
        await save_artifacts_if_failed(request.node, browser)
        await ctx.close()


@pytest.fixture
async def page(context: Any) -> Any:
    return await context.new_page()


async def login(page: Any, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the real login page (helper for journeys that start logged in)."""
    await page.goto(base_url + "/login")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Đăng nhập").click()


# ------------------------------------------------------------------------------------------------ artifacts ---


def _artifact_name(item: pytest.Item) -> str:
    return re.sub(r"[^\w.-]+", "_", item.name).strip("_") or "test"


def _failed(item: pytest.Item) -> pytest.TestReport | None:
    reports = item.stash.get(REPORTS, {})
    for when in ("call", "setup"):
        report = reports.get(when)
        if report is not None and report.failed:
            return report
    return None


async def save_artifacts_if_failed(item: pytest.Item, browser: Any) -> None:
    """Screenshot and HTML of every page open in ``browser``, into test-artifacts/<test name>.png/.html.

    Called from fixture teardown, after the call report is stashed: the paths are added to that report, which
    pytest prints with the failure at the end of the run.
    """
    report = _failed(item)
    if report is None:
        return
    pages = [pg for ctx in browser.contexts for pg in ctx.pages if not pg.is_closed()]
    if not pages:
        return
    out_dir = Path(str(item.config.rootpath)) / "test-artifacts"
    out_dir.mkdir(parents=True, exist_ok=True)
    base = _artifact_name(item)
    saved: list[str] = []
    for index, pg in enumerate(pages):
        stem = base if index == 0 else f"{base}-{index + 1}"
        try:
            await pg.screenshot(path=str(out_dir / f"{stem}.png"), full_page=True)
            html = await pg.content()
            (out_dir / f"{stem}.html").write_text(f"<!-- {pg.url} -->\n{html}", encoding="utf-8")
            saved.append(f"{out_dir / stem}.png/.html ({pg.url})")
        except Exception as exc:  # never hide the test's own failure behind this one
            saved.append(f"{stem}: could not save ({exc})")
    report.sections.append(("browser artifacts", "\n".join(saved)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.failed and report.when in ("setup", "call"):
        server = item.funcargs.get("live_server")  # type: ignore[attr-defined]
        if isinstance(server, LiveServer):
            report.sections.append((f"server log (last {LOG_TAIL_LINES} lines of {server.log})", server.log_tail()))
    return report
