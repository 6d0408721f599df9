"""`archc report`: one self-contained HTML page (no external resources): diagram with an expand
control, per-stage chart, summary table and the spec source."""

from __future__ import annotations

import html
import re
from typing import Any

from archc.analyze import Analysis
from archc.analyze.diff import diff, diff_text
from archc.analyze.summary import fmt_count, rows, totals
from archc.render.output import render, render_diff

__all__ = ["report", "diff_page"]

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} .facts{color:#555;margin-bottom:16px}
section{margin:20px 0} h2{font-size:16px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:12px} td,th{padding:2px 8px;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{text-align:left;background:#f4f6f8}
pre{background:#f7f7f7;padding:12px;font-size:12px;overflow:auto;max-height:480px}
.diagram{overflow:auto;max-height:900px;border:1px solid #eee} .hidden{display:none}
button{font-size:13px;padding:4px 10px;margin-bottom:8px}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_JS = """
(function () {
  window.addEventListener('error', function () { document.body.dataset.error = '1'; });
  var button = document.getElementById('toggle');
  var folded = document.getElementById('folded'), full = document.getElementById('expanded');
  button.addEventListener('click', function () {
    var open = full.classList.toggle('hidden');
    folded.classList.toggle('hidden', !open);
    button.textContent = open ? 'Expand all layers' : 'Fold repeated blocks';
  });
  document.body.dataset.ready = '1';
})();
"""


def _inline_svg(svg: bytes) -> str:
    text = svg.decode("utf-8")
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE


def _chart(analysis: Analysis) -> str:
    """Horizontal bars: parameters and MACs of each top-level stage, as shares of the whole."""
    stages = [r for r in rows(analysis, depth=1) if r.params or r.macs]
    total_p, total_m = max(analysis.params, 1), max(analysis.macs, 1)
    bar_h, gap, left, width = 10, 8, 150, 420
    parts = []
    for i, r in enumerate(stages):
        y = i * (2 * bar_h + gap)
        wp, wm = width * r.params / total_p, width * r.macs / total_m
        parts.append(f'<text x="0" y="{y + bar_h + 4}" font-size="11">{html.escape(r.path)}</text>'
                     f'<rect x="{left}" y="{y}" width="{wp:.1f}" height="{bar_h}" fill="#6c8ebf"/>'
                     f'<rect x="{left}" y="{y + bar_h}" width="{wm:.1f}" height="{bar_h}" fill="#d79b00"/>'
                     f'<text x="{left + max(wp, wm) + 4:.1f}" y="{y + bar_h + 4}" font-size="10">'
                     f'{r.params / total_p:.1%} params, {r.macs / total_m:.1%} MACs</text>')
    height = max(len(stages) * (2 * bar_h + gap), 1)
    return (f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{left + width + 200}" height="{height}">'
            + "".join(parts) + "</svg>")


def _table(analysis: Analysis, depth: int | None) -> str:
    head = "<tr><th>path</th><th>block</th><th>output</th><th>params</th><th>MACs</th><th>RF</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(r.path)}</td><td>{html.escape(r.block)}</td>"
        f"<td>{'x'.join(map(str, r.output_shape))}</td><td class='n'>{r.params:,}</td>"
        f"<td class='n'>{r.macs:,}</td><td class='n'>{r.receptive_field}</td></tr>" for r in rows(analysis, depth))
    return f"<table>{head}{body}</table>"


def report(analysis: Analysis, source: str) -> str:
    t = totals(analysis)
    name = html.escape(t["name"])
    folded = _inline_svg(render(analysis, "svg"))
    expanded = _inline_svg(render(analysis, "svg", expand=True))
    folded = re.sub(r"<svg ", '<svg id="folded-svg" ', folded, count=1)
    facts = (f"{t['params']:,} parameters &middot; {fmt_count(t['macs'])}MACs &middot; input {t['input_shape']} "
             f"&rarr; output {t['output_shape']} &middot; receptive field {t['receptive_field']} px")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name} — archc report</title>
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<style>{_CSS}</style></head>
<body>
<h1>{name}</h1><div class="facts">{facts}</div>
<section><h2>Diagram</h2><button id="toggle" type="button">Expand all layers</button>
<div id="folded" class="diagram">{folded}</div><div id="expanded" class="diagram hidden">{expanded}</div></section>
<section><h2>Parameters and MACs per stage</h2>{_chart(analysis)}</section>
<section><h2>Summary</h2><div id="summary">{_table(analysis, 1)}</div>
<details><summary>every layer</summary>{_table(analysis, None)}</details></section>
<section><h2>Spec</h2><pre id="source">{html.escape(source)}</pre></section>
<script>{_JS}</script>
</body></html>
"""


def _stage_table(d: dict[str, Any]) -> str:
    head = ("<tr><th>stage</th><th>params A</th><th>params B</th><th>delta</th><th>MACs A</th><th>MACs B</th>"
            "<th>delta</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(s['stage'])}</td><td class='n'>{s['params'][0]:,}</td>"
        f"<td class='n'>{s['params'][1]:,}</td><td class='n'>{s['params'][1] - s['params'][0]:+,}</td>"
        f"<td class='n'>{s['macs'][0]:,}</td><td class='n'>{s['macs'][1]:,}</td>"
        f"<td class='n'>{s['macs'][1] - s['macs'][0]:+,}</td></tr>" for s in d["stages"])
    return f"<table id='stages'>{head}{body}</table>"


def diff_page(a: Analysis, b: Analysis, labels: tuple[str, str], depth: int | None = None) -> str:
    """`archc diff --html`: the diff diagram, the per-stage deltas and the listing, one self-contained page."""
    d = diff(a, b, labels)
    svg = _inline_svg(render_diff(a, b, "svg", labels, depth))
    la, lb = (html.escape(x) for x in labels)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{la} vs {lb} — archc diff</title>
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<style>{_CSS}</style></head>
<body>
<h1>A: {la} &rarr; B: {lb}</h1>
<div class="facts">parameters {d['params'][0]:,} &rarr; {d['params'][1]:,} &middot; MACs {fmt_count(d['macs'][0])}&rarr;
{fmt_count(d['macs'][1])}</div>
<section><h2>Diagram</h2><div id="diff" class="diagram">{svg}</div></section>
<section><h2>Parameters and MACs per stage</h2>{_stage_table(d)}</section>
<section><h2>Nodes</h2><pre id="listing">{html.escape(diff_text(d))}</pre></section>
<script>document.body.dataset.ready = '1';</script>
</body></html>
"""
