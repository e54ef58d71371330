"""Headless Chromium driven through its DevTools protocol, for the UI checks (tests and docs/ui_check.py).

It opens a page, waits until its text says it has loaded, reads that text and takes a screenshot.

No new dependency: the protocol is JSON over a WebSocket, spoken with ``websockets``
(which Prefect already installs). Chromium is Debian's ``chromium`` package; without it
:func:`find_chromium` returns None and callers skip. Chromium is started with the
background-networking features off, so it talks to nothing but the pages it is given
(all on 127.0.0.1), in a fresh profile that is deleted on exit.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class PageNotReady(TimeoutError):
    """A page's text never showed what was waited for; ``text`` holds what it did show."""

    def __init__(self, url: str, wanted, text: str):
        super().__init__(f"{url}: no {wanted!r} in the page's text after waiting; it shows:\n{text[:1500]}")
        self.text = text


class Chromium:
    """One headless Chromium with one tab: ``with Chromium() as browser: browser.open(url)``."""

    def __init__(self, executable: str | None = None, width: int = 1440, height: int = 900, start_timeout: float = 60):
        found = executable or find_chromium()
        if found is None:
            raise FileNotFoundError("Chromium is missing: apt-get install -y chromium")
        self.executable: str = found
        self.width, self.height, self.start_timeout = width, height, start_timeout
        self._next_id = 0
        self._socket: ClientConnection | None = None

    def __enter__(self) -> Chromium:
        self._profile = Path(tempfile.mkdtemp(prefix="ssl-eval-chromium-"))
        self._process = subprocess.Popen(
            [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            port = self._devtools_port()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                pages = [t for t in json.loads(response.read()) if t.get("type") == "page"]
            self._socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=20)
            self._call("Emulation.setDeviceMetricsOverride",
                       width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _devtools_port(self) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited at start (code {self._process.returncode})")
            if marker.exists() and (lines := marker.read_text().split()):
                return int(lines[0])
            time.sleep(0.2)
        raise TimeoutError(f"Chromium did not open its DevTools port within {self.start_timeout:.0f} s")

    def _stop(self) -> None:
        if getattr(self, "_socket", None) is not None:
            self._socket.close()
            self._socket = None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _call(self, method: str, **params):
        self._next_id += 1
        call_id = self._next_id
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def text(self) -> str:
        """The page's visible text (``document.body.innerText``)."""
        result = self._call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''", returnByValue=True)
        return result.get("result", {}).get("value") or ""

    def open(self, url: str, wait_for: str | tuple[str, ...] = (), timeout: float = 60, settle: float = 1.5) -> str:
        """Load ``url`` and :meth:`wait_until` its text holds every string of ``wait_for``."""
        self._call("Page.navigate", url=url)
        return self.wait_until(wait_for, timeout=timeout, settle=settle)

    def wait_until(self, wait_for: str | tuple[str, ...] = (), timeout: float = 60, settle: float = 1.5) -> str:
        """Wait until the page's text holds every string of ``wait_for``; the page's text. PageNotReady if not in time.

        Then wait ``settle`` seconds more, for the panels still loading.
        """
        wanted = (wait_for,) if isinstance(wait_for, str) else tuple(wait_for)
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.5)
            text = self.text()
            if text and all(w in text for w in wanted):
                break
            if time.monotonic() > deadline:
                url = self._call("Runtime.evaluate", expression="location.href", returnByValue=True)["result"].get("value")
                raise PageNotReady(str(url), wanted, text)
        time.sleep(settle)
        return self.text()

    def click_text(self, text: str) -> bool:
        """Click the first button, link or tab whose own text is ``text``; False if there is none."""
        script = (  # noqa: UP031  (JavaScript braces stay literal with %-formatting)
            "(() => { const want = %s; for (const el of document.querySelectorAll('button, a, [role=tab], [role=button], [role=tablist] > *')) {"
            " if (el.innerText && el.innerText.trim() === want) { el.click(); return true; } } return false; })()"
        ) % json.dumps(text)
        result = self._call("Runtime.evaluate", expression=script, returnByValue=True)
        return bool(result.get("result", {}).get("value"))

    def scroll_to(self, text: str) -> bool:
        """Scroll the innermost element showing ``text`` into the middle of the view; False if no element shows it.

        Pages that scroll inside a panel, not the window, included.
        """
        script = (  # noqa: UP031  (JavaScript braces stay literal with %-formatting)
            "(() => { const want = %s; let best = null; for (const el of document.querySelectorAll('body *')) {"
            " if (el.innerText && el.innerText.includes(want) && (!best || best.contains(el))) best = el; }"
            " if (best) best.scrollIntoView({block: 'center'}); return !!best; })()"
        ) % json.dumps(text)
        result = self._call("Runtime.evaluate", expression=script, returnByValue=True)
        time.sleep(0.5)
        return bool(result.get("result", {}).get("value"))

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """A PNG of the tab (the viewport, or the whole page)."""
        result = self._call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path
