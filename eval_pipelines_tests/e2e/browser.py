"""Headless Chromium driven over the Chrome DevTools Protocol: the UI as a user's browser renders it.

Debian's ``chromium`` (installed with apt-get when missing) and the ``websockets`` client the webserver already
depends on (through uvicorn) are all it takes: no npm, no Playwright browser download, no new pip dependency.
The browser gets a fresh profile, no network beyond what the page asks for (it only talks to 127.0.0.1), and is
started in its own process group and killed with it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from eval_pipelines_tests.e2e.stack import Service, wait_for
from eval_pipelines_tests.postgres_server import ensure_debian_tool

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
    "--disable-extensions", "--mute-audio", "--hide-scrollbars",
)


def chromium_binary() -> str:
    """Debian's chromium, installed on first use (as the PostgreSQL fixture does; fails rather than skips in CI)."""
    return ensure_debian_tool("chromium", "chromium")


class Page:
    """One tab, spoken to over its DevTools websocket: navigate, evaluate JavaScript, screenshot."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        self._next_id += 1
        message_id = self._next_id
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout}s")
            reply = json.loads(self._socket.recv(timeout=remaining))
            if reply.get("id") != message_id:
                continue  # an event; we poll the page state instead of following events
            if "error" in reply:
                raise RuntimeError(f"{method} failed: {reply['error']}")
            return reply.get("result", {})

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The JSON value of ``expression`` in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        wait_for(lambda: self.evaluate("document.readyState") == "complete", 60, f"{url} to load", interval=0.25)

    def wait_for_js(self, expression: str, timeout: float, what: str) -> Any:
        """Poll a JavaScript expression until it is truthy; the UI renders asynchronously after GraphQL answers."""
        return wait_for(lambda: self.evaluate(expression), timeout, what, interval=0.5)

    def wait_until_settled(self, timeout: float = 30, quiet_seconds: float = 1.5) -> None:
        """Wait until the page's text stops changing (parts such as Markdown metadata render after the rest)."""
        state = {"text": None, "since": time.monotonic()}

        def settled() -> bool:
            text = self.evaluate("document.body.innerText")
            if text != state["text"]:
                state.update(text=text, since=time.monotonic())
            return time.monotonic() - state["since"] >= quiet_seconds

        wait_for(settled, timeout, "the page to settle", interval=0.3)

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        """A PNG of the viewport, or of ``clip`` ({x, y, width, height, scale} in CSS pixels)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": False}
        if clip is not None:
            params["clip"] = clip
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def resize(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


@contextlib.contextmanager
def chromium_page(log_dir: Path, width: int = 1600, height: int = 1000,
                  startup_timeout: float = 60) -> Iterator[Page]:
    """A headless Chromium with a fresh profile and one page; the browser's process group is killed on exit."""
    binary = chromium_binary()
    profile = Path(tempfile.mkdtemp(prefix="eval_pipelines_chromium_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "chromium.log"
    argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    browser = Service("chromium", process, log_path)
    try:
        # Chromium writes the port it picked (port 0: any free one) and the browser's websocket path here.
        active_port = profile / "DevToolsActivePort"
        wait_for(lambda: active_port.exists() and len(active_port.read_text().splitlines()) >= 2,
                 startup_timeout, "Chromium's DevTools port", interval=0.2, services=(browser,))
        port = int(active_port.read_text().splitlines()[0])
        targets = wait_for(lambda: [t for t in _json(f"http://127.0.0.1:{port}/json/list") if t["type"] == "page"],
                           startup_timeout, "a page target", interval=0.2, services=(browser,))
        with connect(targets[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            page = Page(socket)
            page.send("Page.enable")
            page.send("Runtime.enable")
            page.resize(width, height)
            yield page
    finally:
        browser.stop(grace_seconds=5)
        shutil.rmtree(profile, ignore_errors=True)


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())
