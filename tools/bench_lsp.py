"""Latency of `archc lsp`: ms from a didChange to its diagnostics (warm server, over stdio), next to a
whole-process `archc check` of the same file, measured in the same run.

    python tools/bench_lsp.py [--edits 10] [--checks 3]

Specs: resnet50, efficientnet_b7 and a ~3,000-node ResNet (resnet50 with layers [3, 8, 300, 3]).
Each edit changes a comment at the end of the text, so the server analyses the whole spec again.
"""

from __future__ import annotations

import argparse
import asyncio
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
        self.count: dict[str, int] = {}

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: T.PublishDiagnosticsParams) -> None:
            self.arrived[params.uri] = self.arrived.get(params.uri, 0) + 1
            self.count[params.uri] = len(params.diagnostics)

        self.run(self.client.start_io(sys.executable, "-m", "archc", "lsp", cwd=str(ROOT)))
        self.run(self.client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities())))
        self.client.initialized(T.InitializedParams())

    def run(self, coro: object) -> object:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 120))  # type: ignore[arg-type]

    def _wait(self, uri: str, before: int) -> None:
        async def until() -> None:
            while self.arrived.get(uri, 0) <= before:
                await asyncio.sleep(0.0005)
        self.run(until())

    def open(self, path: Path, text: str) -> float:
        uri = path.resolve().as_uri()
        before, start = self.arrived.get(uri, 0), time.perf_counter()
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "yaml", 1, text)))
        self._wait(uri, before)
        return time.perf_counter() - start

    def change(self, path: Path, text: str, version: int) -> float:
        uri = path.resolve().as_uri()
        before, start = self.arrived.get(uri, 0), time.perf_counter()
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version, uri), [T.TextDocumentContentChangeWholeDocument(text=text)]))
        self._wait(uri, before)
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
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="archc-bench-lsp-"))
    (tmp / "resnet_3k.yaml").write_text(BIG)
    specs = [("resnet50", ROOT / "specs" / "resnet50.yaml"),
             ("efficientnet_b7", ROOT / "specs" / "efficientnet_b7.yaml"),
             ("resnet_3k", tmp / "resnet_3k.yaml")]
    client = Client()
    print(f"{'spec':<16} {'nodes':>6} {'open ms':>8} {'edit ms (median)':>17} {'check ms':>9} {'ratio':>6}")
    try:
        for name, path in specs:
            text = path.read_text(encoding="utf-8")
            nodes = _nodes(path)
            first = client.open(path, text)
            edits = [client.change(path, f"{text}\n# edit {k}\n", k + 2) for k in range(args.edits)]
            edit = statistics.median(edits)
            check = whole_process_check(path, args.checks)
            print(f"{name:<16} {nodes:>6} {first * 1000:>8.0f} {edit * 1000:>17.0f} {check * 1000:>9.0f} "
                  f"{edit / check:>5.2f}x")
    finally:
        client.close()
    return 0


def _nodes(path: Path) -> int:
    from archc.api import analyse

    return len(analyse(path).graph.nodes)


if __name__ == "__main__":
    sys.exit(main())
