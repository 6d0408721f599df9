"""Latency of `archc lsp`: ms from a didChange to its diagnostics (warm server, over stdio), next to a
whole-process `archc check` of the same file, measured in the same run (issue 28's goal: a value edit
<= 20 ms, <= 0.02x of the check).

    python tools/bench_lsp.py [--edits 10] [--checks 3] [--burst 5] [--memo both|on|off] [--in-process]

Specs (issue 28): EfficientNet-B7, whose edit is its num_classes, and a ~1,000-node ResNet-50 with layers
[3, 4, 90, 3], whose edit is the depth of its third stage. Three kinds of change, each timed to the
diagnostics published for its version (p50 of ``--edits``):
- comment: a comment at the end of the text changes (the loaded spec does not: the server may reuse
  its last analysis);
- value: the spec's value changes (num_classes 1001, 1002, ...; the stage depth 91, 92, ...): load,
  resolve, analysis and lint again;
- burst: ``--burst`` value changes sent back to back, timed from the first to the diagnostics of the
  last (the server analyses only the last).
With ``--memo both`` (the default) every figure is measured twice in the same run, by two servers and
checks, one with the block-instance memo of archc/resolve/memo.py off (``ARCHC_MEMO=0``), one with it on,
taking turns change by change; the ratio off/on is printed. Both the server and the checks run with
bytecode caches, as an installed package does (the caches go to a temporary PYTHONPYCACHEPREFIX;
PYTHONDONTWRITEBYTECODE is dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
# (name, text, the edit k): each edit is a change to the loaded spec
SPECS = [("efficientnet_b7", "extends: efficientnet_b7\nname: b7\nparams: {{num_classes: {k}}}\n", 1000),
         ("resnet50 [3,4,90,3]", "extends: resnet50\nname: resnet_1k\nparams: {{layers: [3, 4, {k}, 3]}}\n", 90)]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class Client:
    """One `archc lsp` process; waits for the diagnostics of each change."""

    def __init__(self, env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("archc-bench", "1")
        self.arrived: dict[str, int] = {}
        self.version: dict[str, int | None] = {}

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: T.PublishDiagnosticsParams) -> None:
            self.arrived[params.uri] = self.arrived.get(params.uri, 0) + 1
            self.version[params.uri] = params.version

        self.run(self.client.start_io(sys.executable, "-m", "archc", "lsp", cwd=str(ROOT), env=env))
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


def whole_process_check(path: Path, runs: int, env: dict[str, str] = ENV) -> float:
    """Median seconds of `python -m archc check -q FILE` (interpreter start, imports, load, analysis, lint)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archc", "check", "-q", str(path)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=10, help="didChange per spec (the median is reported)")
    ap.add_argument("--checks", type=int, default=3, help="whole-process checks per spec (median)")
    ap.add_argument("--burst", type=int, default=5, help="value changes per burst (3 bursts, median)")
    ap.add_argument("--memo", choices=["both", "on", "off"], default="both",
                    help="the block-instance memo (ARCHC_MEMO): off and on in turns, or one of them")
    ap.add_argument("--in-process", action="store_true",
                    help="also the same value edits analysed in this process (archc.lsp.cache.analyse_text, "
                         "CPU time of the thread): the server's cost without the protocol")
    args = ap.parse_args()
    if args.in_process:
        in_process(args.edits)
    tmp = Path(tempfile.mkdtemp(prefix="archc-bench-lsp-"))
    ENV["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    whole_process_check(ROOT / "specs" / "lenet5.yaml", 1)  # writes the bytecode caches
    modes = {"both": ["off", "on"], "on": ["on"], "off": ["off"]}[args.memo]
    print(f"{'spec':<20} {'memo':>4} {'nodes':>6} {'open':>6} {'comment':>8} {'value':>6} {'burst':>6} {'check':>6} "
          f"{'value/check':>11}   (ms; p50)")
    rows: dict[tuple[str, str], tuple[float, ...]] = {}
    envs = {mode: {**ENV, "ARCHC_MEMO": "1" if mode == "on" else "0"} for mode in modes}
    clients = {mode: Client(env) for mode, env in envs.items()}
    try:
        for name, template, k0 in SPECS:
            for mode, row in _measure(clients, envs, tmp, name, template, k0, args).items():
                rows[name, mode] = row
                print(f"{name:<20} {mode:>4} {row[0]:>6.0f} " + " ".join(f"{x:>{w}.0f}" for x, w in
                      zip(row[1:6], (6, 8, 6, 6, 6))) + f" {row[3] / row[5]:>10.3f}x", flush=True)
    finally:
        for client in clients.values():
            client.close()
    if len(modes) == 2:
        for name, *_ in SPECS:
            off, on = rows[name, "off"], rows[name, "on"]
            print(f"{name:<20} memo off/on: value {off[3] / on[3]:.2f}x, burst {off[4] / on[4]:.2f}x, "
                  f"check {off[5] / on[5]:.2f}x")
    print("goal: value <= 20 ms and <= 0.02x of the whole-process check")
    return 0


def _measure(clients: dict[str, Client], envs: dict[str, dict[str, str]], tmp: Path, name: str, template: str,
             k0: int, args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    """Per memo mode: (nodes, open, comment, value, burst, check) in ms, p50 of each kind of change. The
    modes take turns change by change (and check by check), so a change in the machine's load falls on
    both alike."""
    path = tmp / f"{name.split()[0]}.yaml"
    text = template.format(k=k0)
    path.write_text(text)
    nodes = _nodes(path)
    times: dict[str, dict[str, list[float]]] = {m: {"open": [], "comment": [], "value": [], "burst": [], "check": []}
                                                for m in clients}
    for mode, client in clients.items():
        times[mode]["open"].append(client.open(path, text))
    version = 2
    for k in range(args.edits):
        for mode, client in clients.items():
            times[mode]["comment"].append(client.change(path, [f"{text}\n# edit {k}\n"], version))
        version += 1
    for k in range(args.edits):
        for mode, client in clients.items():
            times[mode]["value"].append(client.change(path, [template.format(k=k0 + 1 + k)], version))
        version += 1
    for b in range(3):
        texts = [template.format(k=k0 - 1 - b * args.burst - k) for k in range(args.burst)]  # unseen values
        for mode, client in clients.items():
            times[mode]["burst"].append(client.change(path, texts, version))
        version += len(texts)
    for _ in range(args.checks):
        for mode in clients:
            times[mode]["check"].append(whole_process_check(path, 1, envs[mode]))
    return {mode: (nodes, *(statistics.median(t[kind]) * 1000 for kind in ("open", "comment", "value", "burst",
                                                                            "check")))
            for mode, t in times.items()}


def in_process(edits: int) -> None:
    """The value edits of each spec as the server analyses them, in this process: the open, then ``edits``
    values, each with the previous state (p50 and min of the thread's CPU time, which leaves out the time the
    process waits for a core)."""
    from archc.lsp.cache import analyse_text

    tmp = Path(tempfile.mkdtemp(prefix="archc-bench-lsp-"))
    for name, template, k0 in SPECS:
        path = tmp / f"{name.split()[0]}.yaml"
        state = analyse_text(template.format(k=k0), path)
        times = []
        for k in range(edits):
            start = time.thread_time()
            state = analyse_text(template.format(k=k0 + 1 + k), path, previous=state)
            times.append((time.thread_time() - start) * 1000)
        print(f"in-process value edit, {name}: p50 {statistics.median(times):.1f} ms, min {min(times):.1f} ms "
              f"(CPU time, {edits} edits)")


def _nodes(path: Path) -> int:
    from archc.api import analyse

    return len(analyse(path).graph.nodes)


if __name__ == "__main__":
    sys.exit(main())
