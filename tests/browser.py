"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no port, no
websocket library): load a local HTML file and ask, for every element's own text, which platform fonts
rendered it and how many glyphs each drew (CSS.getPlatformFontsForNode)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont

__all__ = ["TextFonts", "cmap_of", "missing_glyphs", "rendered_fonts"]

_SKIP = {"HEAD", "STYLE", "SCRIPT", "TITLE", "svg"}  # not rendered as text (charts are paths)


@dataclass(frozen=True)
class TextFonts:
    tag: str
    text: str
    fonts: dict[str, int]  # family -> glyphs it drew


class _Pipe:
    def __init__(self, profile: Path) -> None:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        assert chromium, "install Debian's chromium (deploy/setup-debian.sh does)"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:  # Chromium reads commands on fd 3 and answers on fd 4
            reads, writes = os.dup(to_browser_r), os.dup(from_browser_w)  # free numbers: the pipes may be 3 and 4
            os.dup2(reads, 3)  # inheritable: survives the exec
            os.dup2(writes, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            # fds 3/4 set up in the child before exec; close_fds=False keeps them (the rest is close-on-exec)
            preexec_fn=child_fds, close_fds=False,  # noqa: PLW1509
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                assert "error" not in reply, (method, reply["error"])
                return reply["result"]  # type: ignore[no-any-return]

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            assert chunk, "chromium closed the DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        os.close(self._to_browser)
        os.close(self._from_browser)


def _elements(node: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(nodeId, tag, own text) of every rendered element with text of its own."""
    found = []
    if node.get("nodeName") in _SKIP:
        return []
    own = "".join(c.get("nodeValue", "") for c in node.get("children", []) if c.get("nodeType") == 3)
    if node.get("nodeType") == 1 and own.strip():
        found.append((node["nodeId"], node["nodeName"], own))
    for child in node.get("children", []):
        found.extend(_elements(child))
    return found


def rendered_fonts(html: Path, profile: Path) -> list[TextFonts]:
    pipe = _Pipe(profile)
    try:
        target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
        session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        pipe.call("Page.enable", session)
        pipe.call("Page.navigate", session, url=html.as_uri())
        for _ in range(600):  # until the document has loaded (a bound, not a timing assertion)
            state = pipe.call("Runtime.evaluate", session, expression="document.readyState")["result"]["value"]
            if state == "complete":
                break
            pipe.call("Runtime.evaluate", session, expression="new Promise(r => setTimeout(r, 50))",
                      awaitPromise=True)
        pipe.call("DOM.enable", session)
        pipe.call("CSS.enable", session)
        root = pipe.call("DOM.getDocument", session, depth=-1)["root"]
        out = []
        for node_id, tag, text in _elements(root):
            fonts = pipe.call("CSS.getPlatformFontsForNode", session, nodeId=node_id)["fonts"]
            out.append(TextFonts(tag, text, {f["familyName"]: f["glyphCount"] for f in fonts}))
        return out
    finally:
        pipe.close()


@functools.cache
def cmap_of(family: str) -> frozenset[int]:
    """The code points the installed font ``family`` has glyphs for: fontconfig's file and face index for the
    family, read with fontTools (independent of Chromium)."""
    found = subprocess.run(["fc-match", "-f", "%{family}\n%{file}\n%{index}", family], capture_output=True,
                           text=True, check=True).stdout.split("\n")
    assert family in found[0].split(","), f"fontconfig has no {family!r} (it offers {found[0]!r})"
    with TTFont(found[1], fontNumber=int(found[2]), lazy=True) as font:
        return frozenset(font.getBestCmap())


def missing_glyphs(rendered: list[TextFonts]) -> list[tuple[str, str]]:
    """(character, its element's text) for every character none of the fonts Chromium drew that element with
    has: Chromium falls back per character to a font that has it, and draws a character no font has as the
    first font's empty box (counted as that font's glyph), so only the fonts' own tables tell."""
    out = []
    for item in rendered:
        covered = frozenset().union(*(cmap_of(family) for family in item.fonts))
        out.extend((c, item.text) for c in item.text if not c.isspace() and ord(c) not in covered)
    return out
