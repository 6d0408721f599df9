"""Latency of `archc lsp`: ms from a didChange to its diagnostics (warm server, over stdio), next to a
whole-process `archc check` of the same file, measured in the same run.

    python tools/bench_lsp.py [--edits 10] [--checks 3] [--burst 5]

Specs: resnet50, efficientnet_b7 and a ~3,000-node ResNet (resnet50 with layers [3, 8, 300, 3]).
Three kinds of change, each timed to the diagnostics published for its version:
- comment: a comment at the end of the text changes (the loaded spec does not: the server may reuse
  its last analysis);
- value: the spec's `name:` changes (the loaded spec differs: load, resolve, analysis and lint again);
- burst: ``--burst`` value changes sent back to back, timed from the first to the diagnostics of the
  last (the server may skip the versions already replaced).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
BIG = "extends: resnet50\nname: resnet_3k\nparams: {layers: [3, 8, 300, 3]}\n"


class Client:
    """One `archc lsp` process; waits for the diagnostics of each change."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("archc-bench", "1")
        self.arrived: dict[str, int] = {}
        self.version: dict[str, int | None] = {}

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: T.PublishDiagnosticsParams) -> None:
            self.arrived[params.uri] = self.arrived.get(params.uri, 0) + 1
            self.version[params.uri] = params.version

        self.run(self.client.start_io(sys.executable, "-m", "archc", "lsp", cwd=str(ROOT)))
        self.run(self.client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities())))
        self.client.initialized(T.InitializedParams())

    def run(self, coro: object) -> object:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 120))  # type: ignore[arg-type]

    def _wait(self, uri: str, before: int, version: int | None = None, count: int = 1) -> None:
        """Until the diagnostics of ``version`` arrive after the ``before``-th publish (from a server
        that publishes no version: until ``count`` more publishes, one per change)."""
        def done() -> bool:
            n, got = self.arrived.get(uri, 0) - before, self.version.get(uri)
            return n >= 1 and (version is None or got == version or (got is None and n >= count))

        async def until() -> None:
            while not done():
                await asyncio.sleep(0.0005)
        self.run(until())

    def open(self, path: Path, text: str) -> float:
        uri = path.resolve().as_uri()
        before, start = self.arrived.get(uri, 0), time.perf_counter()
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "yaml", 1, text)))
        self._wait(uri, before)
        return time.perf_counter() - start

    def change(self, path: Path, texts: list[str], version: int) -> float:
        """Send the texts as versions ``version``, ``version + 1``, ... back to back; seconds until the
        diagnostics of the last one."""
        uri = path.resolve().as_uri()
        before, start = self.arrived.get(uri, 0), time.perf_counter()
        for k, text in enumerate(texts):
            self.client.text_document_did_change(T.DidChangeTextDocumentParams(
                T.VersionedTextDocumentIdentifier(version + k, uri),
                [T.TextDocumentContentChangeWholeDocument(text=text)]))
        self._wait(uri, before, version + len(texts) - 1, len(texts))
        return time.perf_counter() - start

    def close(self) -> None:
        self.run(self.client.shutdown_async(None))
        self.client.exit(None)
        self.run(self.client.stop())
        self.loop.close()


def whole_process_check(path: Path, runs: int) -> float:
    """Median seconds of `python -m archc check -q FILE` (interpreter start, imports, load, analysis, lint)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archc", "check", "-q", str(path)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=10, help="didChange per spec (the median is reported)")
    ap.add_argument("--checks", type=int, default=3, help="whole-process checks per spec (median)")
    ap.add_argument("--burst", type=int, default=5, help="value changes per burst (3 bursts, median)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="archc-bench-lsp-"))
    (tmp / "resnet_3k.yaml").write_text(BIG)
    specs = [("resnet50", ROOT / "specs" / "resnet50.yaml"),
             ("efficientnet_b7", ROOT / "specs" / "efficientnet_b7.yaml"),
             ("resnet_3k", tmp / "resnet_3k.yaml")]
    client = Client()
    print(f"{'spec':<16} {'nodes':>6} {'open':>6} {'comment':>8} {'value':>6} {'burst':>6} {'check':>6} "
          f"{'value/check':>11}   (ms; medians)")
    try:
        for name, path in specs:
            text = path.read_text(encoding="utf-8")
            nodes = _nodes(path)
            first = client.open(path, text)
            version = 2
            comments = []
            for k in range(args.edits):
                comments.append(client.change(path, [f"{text}\n# edit {k}\n"], version))
                version += 1
            values = []
            for k in range(args.edits):
                values.append(client.change(path, [_renamed(text, f"v{k}")], version))
                version += 1
            bursts = []
            for b in range(3):
                texts = [_renamed(text, f"b{b}_{k}") for k in range(args.burst)]
                bursts.append(client.change(path, texts, version))
                version += len(texts)
            comment, value, burst = (statistics.median(x) * 1000 for x in (comments, values, bursts))
            check = whole_process_check(path, args.checks) * 1000
            print(f"{name:<16} {nodes:>6} {first * 1000:>6.0f} {comment:>8.0f} {value:>6.0f} {burst:>6.0f} "
                  f"{check:>6.0f} {value / check:>10.2f}x")
    finally:
        client.close()
    return 0


def _renamed(text: str, suffix: str) -> str:
    """The text with its top-level `name:` value changed (a change to the loaded spec)."""
    out, n = re.subn(r"^name: *(\S+)", lambda m: f"name: {m.group(1)}_{suffix}", text, count=1, flags=re.MULTILINE)
    assert n == 1, "the spec has no top-level `name:` line"
    return out


def _nodes(path: Path) -> int:
    from archc.api import analyse

    return len(analyse(path).graph.nodes)


if __name__ == "__main__":
    sys.exit(main())
