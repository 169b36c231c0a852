"""Browsers as clients: CORS headers and preflights (``--cors-origins``), and a real headless
Chromium that streams a chat completion with ``fetch`` from a page on another loopback port."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import running_server


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_cors_headers_and_preflight(http: str) -> None:
    page = "http://127.0.0.1:3000"
    with running_server("--http", http, "--cors-origins", f"{page},http://localhost:5173",
                        "--api-key", "sk-cors-test-key") as s:
        url = s.base + "/v1/chat/completions"
        status, headers, _ = call(url, "OPTIONS", {
            "Origin": page, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert status == 200    # no key needed: browsers send none with a preflight
        assert headers["access-control-allow-origin"] == page
        assert "POST" in headers["access-control-allow-methods"]
        assert headers["access-control-allow-headers"] == "authorization, content-type"
        assert headers["access-control-max-age"] == "600"
        status, _, body = call(url, "OPTIONS", {"Origin": "http://evil.example",
                                                "Access-Control-Request-Method": "POST"})
        assert status == 403 and json.loads(body)["error"]["code"] == "cors_origin_not_allowed"
        auth = {"Authorization": "Bearer sk-cors-test-key", "Content-Type": "application/json"}
        for _ in range(2):   # the second time too (a kept reply must not lose the headers)
            status, headers, _ = call(url, "POST", {**auth, "Origin": page}, CHAT.encode())
            assert status == 200 and headers["access-control-allow-origin"] == page
            assert "x-request-id" in headers["access-control-expose-headers"]
            assert headers["vary"] == "Origin"
        status, headers, _ = call(url, "POST", auth, CHAT.encode())     # no Origin: as ever
        assert status == 200 and "access-control-allow-origin" not in headers
        status, headers, _ = call(url, "POST", {**auth, "Origin": "http://evil.example"},
                                  CHAT.encode())
        assert status == 200 and "access-control-allow-origin" not in headers
        status, headers, _ = call(url, "POST", {"Origin": page}, CHAT.encode())
        assert status == 401 and headers["access-control-allow-origin"] == page


def test_without_cors_origins_nothing_changes() -> None:
    with running_server() as s:
        status, headers, _ = call(s.base + "/v1/chat/completions", "POST",
                                  {"Origin": "http://127.0.0.1:3000"}, CHAT.encode())
        assert status == 200 and "access-control-allow-origin" not in headers
        status, _, _ = call(s.base + "/v1/chat/completions", "OPTIONS", {
            "Origin": "http://127.0.0.1:3000", "Access-Control-Request-Method": "POST"})
        assert status == 405


PAGE = """<!doctype html><meta charset=utf-8><title>chat</title><script>
window.run = async (base) => {
  const r = await fetch(base + "/v1/chat/completions", {method: "POST",
    headers: {"content-type": "application/json", "authorization": "Bearer sk-cors-test-key"},
    body: JSON.stringify({model: "gpt-4o-mini", stream: true, max_tokens: 12,
                          messages: [{role: "user", content: "Hi"}]})});
  const reader = r.body.getReader(); const dec = new TextDecoder();
  let buf = "", events = [], text = "";
  for (;;) {
    const {done, value} = await reader.read(); if (done) break;
    buf += dec.decode(value, {stream: true});
    let at; while ((at = buf.indexOf("\\n\\n")) >= 0) {
      const ev = buf.slice(0, at); buf = buf.slice(at + 2);
      if (!ev.startsWith("data: ")) continue;
      const data = ev.slice(6); events.push(data);
      if (data === "[DONE]") continue;
      for (const c of JSON.parse(data).choices) text += c.delta.content || "";
    }
  }
  return {status: r.status, events: events.length, last: events[events.length - 1], text,
          requestId: r.headers.get("x-request-id")};
};
</script>"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: apt-get install chromium)")
def test_a_headless_chromium_page_streams_a_chat_completion(tmp_path: Path) -> None:
    import websocket  # websocket-client: Chrome's DevTools protocol

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = PAGE.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{site.server_address[1]}"
    browser = None
    try:
        with running_server("--cors-origins", origin, "--api-key", "sk-cors-test-key",
                            "--itl-ms", "5") as s:
            assert CHROMIUM is not None
            browser = subprocess.Popen(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--no-first-run", "--remote-debugging-port=0",
                 f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            assert browser.stderr is not None
            deadline = time.monotonic() + 30
            port = None
            while port is None and time.monotonic() < deadline:
                line = browser.stderr.readline()
                if "DevTools listening on ws://" in line:
                    port = int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            assert port is not None, "chromium did not start its DevTools"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                target = next(t for t in json.loads(r.read()) if t["type"] == "page")
            ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)
            ids = iter(range(1, 1000))

            def cdp(method: str, **params: Any) -> dict[str, Any]:
                ident = next(ids)
                ws.send(json.dumps({"id": ident, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv())
                    if msg.get("id") == ident:
                        assert "error" not in msg, msg
                        return dict(msg["result"])

            cdp("Page.enable")
            cdp("Page.navigate", url=origin + "/")
            while cdp("Runtime.evaluate", expression="typeof window.run",
                      returnByValue=True)["result"].get("value") != "function":
                time.sleep(0.05)
            got = cdp("Runtime.evaluate", expression=f"window.run({json.dumps(s.base)})",
                      awaitPromise=True, returnByValue=True)
            ws.close()
            result = got["result"]["value"]
            assert result["status"] == 200
            assert result["last"] == "[DONE]" and result["events"] >= 12 + 2
            assert result["text"] and result["requestId"].startswith("req_")
    finally:
        if browser is not None:
            browser.kill()
            browser.wait()
        site.shutdown()
