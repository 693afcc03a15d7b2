#!/usr/bin/env python3
"""Optional smoke check of playground/voice.html in headless Chromium (not part of CI; the
aiortc test is the required one). Run it through `tests/peers/browser-smoke`, which starts the
server and this script inside a private network namespace that has only loopback.

Two tabs of one headless Chromium with fake media devices (a beep for a microphone) open
/playground/voice, each creates an account, the first creates a room, both join voice by
clicking the page's buttons, and then every second each tab's RTCPeerConnection.getStats() is
read: inbound-rtp audio bytesReceived must pass --min-bytes and keep growing in both tabs. Then
the second tab mutes itself and the first must show it as muted. Console errors and policy
(CSP) violations are printed and fail the check. Prints JSON lines; exit 0 on success.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import websockets

STATS = """(async () => {
  const out = {};
  for (const [peer, link] of state.links) {
    let bytes = 0;
    (await link.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') bytes += s.bytesReceived || 0;
    });
    out[peer] = { state: link.pc.connectionState, bytesReceived: bytes };
  }
  return JSON.stringify(out);
})()"""


class Tab:
    """One page, driven over the DevTools protocol."""

    def __init__(self, name: str, ws: Any) -> None:
        self.name = name
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.problems: list[str] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message and message["id"] in self.waiting:
                self.waiting.pop(message["id"]).set_result(message)
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in message["params"]["args"])
                print(f"[{self.name} console] {args}", file=sys.stderr)
                if message["params"]["type"] == "error" or args.startswith("error:"):
                    self.problems.append(args)
            elif message.get("method") == "Log.entryAdded":
                entry = message["params"]["entry"]
                print(f"[{self.name} log] {entry['level']}: {entry['text']}", file=sys.stderr)
                if entry["level"] == "error":
                    self.problems.append(entry["text"])
            elif message.get("method") == "Runtime.exceptionThrown":
                text = message["params"]["exceptionDetails"].get("exception", {}).get("description", "?")
                self.problems.append(text)

    async def call(self, method: str, **params: Any) -> Any:
        key = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        await self.ws.send(json.dumps({"id": key, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                                 returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{self.name}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, what: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        page_log = await self.js("document.getElementById('log').textContent")
        raise RuntimeError(f"{self.name}: timed out waiting for {what}; page log:\n{page_log}")

    async def fill(self, field: str, value: str) -> None:
        await self.js(f"document.getElementById({json.dumps(field)}).value = {json.dumps(value)}")

    async def click(self, button: str) -> None:
        await self.js(f"document.getElementById({json.dumps(button)}).click()")


def http_json(url: str, method: str = "GET") -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
        return json.load(response)


async def open_tab(debug: str, name: str, url: str) -> Tab:
    target = http_json(f"{debug}/json/new?{url}", method="PUT")
    ws = await websockets.connect(target["webSocketDebuggerUrl"], max_size=1 << 24)
    tab = Tab(name, ws)
    for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
        await tab.call(domain)
    await tab.until("document.readyState === 'complete' && typeof state === 'object'", "the page")
    return tab


async def run(args: argparse.Namespace) -> int:
    profile = tempfile.mkdtemp(prefix="goftgu-chromium-")
    browser = subprocess.Popen(
        [args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", "--no-first-run",
         f"--remote-debugging-port={args.debug_port}", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    debug = f"http://127.0.0.1:{args.debug_port}"
    try:
        for _ in range(100):
            try:
                http_json(f"{debug}/json/version")
                break
            except OSError:
                await asyncio.sleep(0.1)
        page = args.url.rstrip("/") + "/playground/voice"
        one, two = await open_tab(debug, "tab1", page), await open_tab(debug, "tab2", page)
        suffix = str(int(time.time()) % 100000)
        for tab, user in ((one, "alice" + suffix), (two, "bob" + suffix)):
            await tab.fill("username", user)
            await tab.fill("password", "correct horse battery")
            await tab.fill("email", f"{user}@example.com")
            await tab.click("register")
            await tab.until("state.me", f"{user} signed in")
        await one.fill("room-name", "smoke")
        await one.click("create-room")
        room = await one.until("document.getElementById('room').value", "the new room")
        await two.fill("room", room)
        await one.click("join")
        await one.until("state.inVoice && state.participants.length === 1", "tab1 in voice")
        await two.click("join")
        samples: dict[str, list[int]] = {"tab1": [], "tab2": []}
        deadline = time.monotonic() + args.timeout
        ok = False
        while time.monotonic() < deadline and not ok:
            await asyncio.sleep(1)
            record: dict[str, Any] = {"event": "stats"}
            for tab in (one, two):
                links = json.loads(await tab.js(STATS))
                record[tab.name] = links
                samples[tab.name].append(sum(v["bytesReceived"] for v in links.values()))
            print(json.dumps(record), flush=True)
            ok = all(len(s) >= 2 and s[-1] > args.min_bytes and s[-1] > s[-2] for s in samples.values())
        if not ok:
            raise RuntimeError(f"no audio both ways within {args.timeout} s: {samples}")
        await two.click("mute")
        await one.until("[...document.querySelectorAll('#participants .badge')]"
                        ".some((b) => b.textContent === 'muted')", "tab2 shown muted in tab1")
        problems = one.problems + two.problems
        print(json.dumps({"event": "result", "ok": not problems, "bytes": samples,
                          "problems": problems}), flush=True)
        return 0 if not problems else 1
    finally:
        browser.terminate()
        browser.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:18080")
    p.add_argument("--chromium", default="chromium")
    p.add_argument("--debug-port", type=int, default=9333)
    p.add_argument("--min-bytes", type=int, default=5000)
    p.add_argument("--timeout", type=float, default=40)
    try:
        return asyncio.run(run(p.parse_args()))
    except Exception as error:
        print(json.dumps({"event": "error", "ok": False, "error": f"{type(error).__name__}: {error}"}))
        return 2


if __name__ == "__main__":
    sys.exit(main())
