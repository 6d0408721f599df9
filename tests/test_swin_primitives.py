"""Swin V1/V2 and MaxViT written from primitives (issue 26): the ops `buffer`, `window_partition`,
`window_reverse`, `window_attention_mask` and `normalize`, the example specs/examples/swin_window_attention.yaml,
and the zoo specs, which use none of the blocks that wrap torchvision's modules.

The zoo twins themselves are compared in test_zoo.py (state_dict keys, shapes, strict load, outputs on
randomised weights). Here, small configurations of the same specs are compared with torchvision models
built alike, and breaking one index entry must make the comparison fail (so it can fail).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torchvision.models import maxvit, swin_transformer

import archc
from archc import blocks as library
from archc.blocks.base import REQUIRED
from archc.errors import ArchcError
from tests.helpers import randomize_, twin_mismatch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "examples" / "swin_window_attention.yaml"
NEW_OPS = ("buffer", "window_partition", "window_reverse", "window_attention_mask", "normalize")
WRAPPERS = {"shifted_window_attention", "partition_attention", "patch_merging"}
ZOO = ("swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b", "maxvit_t")


def _args(op: str, **given: Any) -> dict[str, Any]:
    """An op's full arguments: its defaults, then `given`."""
    params = library.get(op).params
    return {k: given.get(k, p.default) for k, p in params.items() if k in given or p.default is not REQUIRED}


def _table(**given: Any) -> torch.Tensor:
    args = _args("buffer", **given)
    out: torch.Tensor = library.get("buffer").build(args, [(1,)])
    return out


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


# ---- the tables equal torchvision's buffers --------------------------------------------------------

@pytest.mark.parametrize("window", [[7, 7], [4, 3], [2, 5], [8, 8]])
def test_tables_equal_torchvision_buffers(window: list[int]) -> None:
    v1 = swin_transformer.ShiftedWindowAttention(8, window, [0, 0], 2)
    index = _table(table="relative_position_index", window=window)
    assert index.dtype == torch.int64 and torch.equal(index, v1.relative_position_index)
    v2 = swin_transformer.ShiftedWindowAttentionV2(8, window, [0, 0], 2)
    coords = _table(table="relative_coords_table", window=window, batch_dim=True)
    assert coords.dtype == torch.float32 and torch.equal(coords, v2.relative_coords_table)
    if window[0] == window[1]:
        square = maxvit.RelativePositionalMultiHeadAttention(8, 4, window[0] ** 2)
        assert torch.equal(_table(table="relative_position_index", window=window, flatten=False),
                           square.relative_position_index)


def test_buffer_is_a_persistent_buffer_under_the_node_path() -> None:
    analysis = archc.check(EXAMPLE)
    model = archc.compile(EXAMPLE)
    assert dict(model.named_buffers())["attn.relative_position_index"].dtype == torch.int64
    assert "attn.relative_position_index" in model.state_dict()
    assert "attn.relative_position_index" not in dict(model.named_parameters())
    assert sum(p.numel() for p in model.parameters()) == analysis.params  # a buffer is no parameter


def test_index_flows_exactly_in_every_floating_dtype() -> None:
    """A bf16 map cannot hold the indices of a 12x12 window (up to 528): they flow in float32 there."""
    from archc.blocks.buffer import per_sample

    fn, kwargs = library.get("buffer").function(_args("buffer", table="relative_position_index", window=12))
    assert fn is per_sample and kwargs["largest"] == 528
    index = _table(table="relative_position_index", window=12)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        out = per_sample(torch.zeros(2, 1, dtype=dtype), index, **kwargs)
        assert out.shape == (2, index.numel()) and out.is_floating_point()
        assert torch.equal(out[1].long(), index)
    _, small = library.get("buffer").function(_args("buffer", table="relative_position_index", window=2))
    assert per_sample(torch.zeros(1, 1, dtype=torch.bfloat16), _table(table="relative_position_index", window=2),
                      **small).dtype == torch.bfloat16


# ---- windows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["window", "grid"])
def test_partition_and_reverse_equal_torchvision_maxvit(mode: str) -> None:
    """torchvision's MaxViT partitions (B, C, H, W): windows of p x p; the grid is a partition by the grid
    step H / p with the group and position axes swapped. Here on (B, H, W, C), also with sh != sw."""
    from archc.blocks.windows import partition, reverse

    grid = mode == "grid"
    square = torch.randn(2, 6, 6, 4)
    first = square.permute(0, 3, 1, 2)
    tv = maxvit.SwapAxes(-2, -3)(maxvit.WindowPartition()(first, 2)) if grid else maxvit.WindowPartition()(first, 3)
    assert torch.equal(partition(square, (3, 3), grid=grid), tv)
    x = torch.randn(2, 12, 8, 5)  # (B, H, W, C), 3x2 groups
    ref = x.reshape(2, 3, 4, 2, 4, 5).permute(0, 2, 4, 1, 3, 5) if grid else \
        x.reshape(2, 4, 3, 4, 2, 5).permute(0, 1, 3, 2, 4, 5)
    groups = partition(x, (3, 2), grid=grid)
    assert torch.equal(groups, ref.reshape(2, 16, 6, 5))
    assert torch.equal(reverse(x, groups, (3, 2), grid=grid), x)


def test_example_equals_torchvision_shifted_window_attention() -> None:
    """Padding (10x9 -> 12x12), the shift and its mask, the bias table gathered by the index buffer."""
    for shape, shift in (([32, 10, 9], 2), ([32, 8, 8], 2), ([32, 3, 3], 0)):
        ref = torch.nn.Module()
        ref.attn = swin_transformer.ShiftedWindowAttention(32, [4, 4], [2, 2], 2)
        randomize_(ref, 0)
        model = archc.compile(EXAMPLE, input_shape=shape).eval()
        model.load_state_dict(ref.state_dict(), strict=True)
        x = torch.randn(2, *shape)
        with torch.no_grad():
            problem = twin_mismatch(model(x), ref.attn(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), 1e-5)
        assert problem is None, (shape, problem)
        assert archc.check(EXAMPLE, input_shape=shape).graph.node("attn.mask").args["shift"] == [shift, shift]


# ---- the zoo specs: primitives only, exact, and the comparison can fail ----------------------------

@pytest.mark.parametrize("name", ZOO)
def test_zoo_specs_use_no_wrapper_block(name: str) -> None:
    analysis = archc.check(name, {"depths": [1, 1, 1, 1]}, [3, 224, 224])
    assert not {n.op for n in analysis.graph.nodes} & WRAPPERS
    model = archc.compile(name, depths=[1, 1, 1, 1], device="meta")
    assert not [type(m) for m in model.modules() if type(m).__module__.startswith("torchvision.models")]


FIGURES = {  # params, MACs, receptive field: what the wrapper blocks gave (archc summary before the rewrite)
    "swin_t": (28_288_354, 4_490_566_656, 752), "swin_v2_t": (28_351_570, 5_939_690_496, 872),
    "maxvit_t": (30_919_624, 5_558_046_720, 2635),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_summary_figures_are_unchanged(name: str) -> None:
    a = archc.check(name)
    assert (a.params, a.macs, a.receptive_field) == FIGURES[name]


def _swin(version: int, size: tuple[int, int] = (64, 64)) -> tuple[torch.nn.Module, torch.nn.Module]:
    """swin_t / swin_v2_t with small widths: at 64 px shifted and padded windows in stages 1 and 2; at 72 x 40
    odd maps (18 x 10, 9 x 5, 5 x 3, 3 x 2) that patch merging pads, and windows wider than the map."""
    small = {"embed_dim": 16, "depths": [2, 2, 2, 2], "heads": [1, 2, 2, 4], "num_classes": 10}
    v2 = {"block": swin_transformer.SwinTransformerBlockV2, "downsample_layer": swin_transformer.PatchMergingV2}
    window = 8 if version == 2 else 7
    ref = swin_transformer.SwinTransformer([4, 4], 16, [2, 2, 2, 2], [1, 2, 2, 4], [window, window], num_classes=10,
                                           **(v2 if version == 2 else {}))
    model = archc.compile("swin_v2_t" if version == 2 else "swin_t", input_shape=[3, *size], device="meta", **small)
    return model, ref


def _maxvit() -> tuple[torch.nn.Module, torch.nn.Module]:
    """maxvit_t at 64 px with 2x2 partitions (maps 16, 8, 4, 2) and small widths."""
    ref = maxvit.MaxVit((64, 64), 16, 2, [16, 32, 32, 64], [1, 1, 1, 1], 8, 0.0, num_classes=10)
    model = archc.compile("maxvit_t", stem_channels=16, channels=[16, 32, 32, 64], depths=[1, 1, 1, 1], head_dim=8,
                          partition_size=2, stochastic_depth=0.0, num_classes=10, input_shape=[3, 64, 64],
                          device="meta")
    return model, ref


def _mismatch(model: torch.nn.Module, ref: torch.nn.Module, size: tuple[int, int]) -> str | None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return twin_mismatch(model.eval()(x), ref.eval()(x), 1e-5)


@pytest.mark.parametrize(("build", "index", "size"), [
    (lambda: _swin(1), "features.1.1.attn.relative_position_index", (64, 64)),
    (lambda: _swin(1, (72, 40)), "features.3.0.attn.relative_position_index", (72, 40)),
    (lambda: _swin(2), "features.3.1.attn.relative_position_index", (64, 64)),
    (lambda: _swin(2, (72, 40)), "features.1.0.attn.relative_position_index", (72, 40)),
    (_maxvit, "blocks.1.layers.0.layers.grid_attention.attn_layer.1.relative_position_index", (64, 64)),
], ids=["swin_t", "swin_t-odd", "swin_v2_t", "swin_v2_t-odd", "maxvit_t"])
def test_twins_are_exact_and_a_broken_index_is_caught(build: Any, index: str, size: tuple[int, int]) -> None:
    model, ref = build()
    randomize_(ref, 0, torch.randn(2, 3, *size))
    state = {k: v.clone() for k, v in ref.state_dict().items()}  # ours must not share the twin's tensors
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    assert _mismatch(model, ref, size) is None
    table = model.get_buffer(index)
    flat = table.view(-1)
    flat[[0, 1]] = flat[[1, 0]].clone()  # two positions read each other's bias
    assert _mismatch(model, ref, size) is not None


# ---- static rules ----------------------------------------------------------------------------------

def _node(nodes: str, shape: str = "[6, 8, 4]") -> str:
    return f"archc: 1\nname: s\ninput: {shape}\nnodes:\n  n: {nodes}\n"


ERRORS = [
    ("{op: window_partition, size: 3}", "does not divide into 3x3 windows"),
    ("{op: window_attention_mask, size: 2, shift: 2}", "must be smaller than the window"),
    ("{op: window_partition, size: 2, mode: ring}", "mode should be one of 'window', 'grid', got 'ring'"),
    ("{op: buffer, table: relative_bias, window: 2}", "table should be one of 'relative_position_index'"),
    ("{op: buffer, table: relative_coords_table, window: [1, 4]}", "needs a window of at least 2"),
    ("{op: buffer, table: relative_position_index, window: 200}", "elements"),  # 1.6e9 > the limit
    ("{op: normalize, dim: 0}", "the batch"),
    ("{op: window_partition, size: 2, in: [input]}", None),
]


@pytest.mark.parametrize(("nodes", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_arguments_are_located_errors(tmp_path: Path, nodes: str, message: str | None) -> None:
    path = _write(tmp_path, _node(nodes))
    if message is None:
        assert archc.check(path).shapes["n"] == (12, 4, 4)
        return
    with pytest.raises(ArchcError) as info:
        archc.check(path)
    assert message in info.value.message, info.value.message
    assert info.value.loc is not None and info.value.loc.line == 5 and info.value.node == "n"


def test_reverse_refuses_groups_of_another_map(tmp_path: Path) -> None:
    text = ("archc: 1\nname: s\ninput: [6, 8, 4]\nnodes:\n  g: {op: window_partition, size: 2}\n"
            "  n: {op: window_reverse, in: [input, g], size: [3, 2]}\n")
    with pytest.raises(ArchcError) as info:
        archc.check(_write(tmp_path, text))
    assert "do not fit the map (6, 8, 4) (expected (8, 6, C))" in info.value.message, info.value.message
    assert info.value.node == "n"


def test_symbolic_sizes_and_receptive_field(tmp_path: Path) -> None:
    """On (C, H, W) with H, W symbolic: the windows need H and W divisible by the window; the reverse gives
    each output its window (the example's field is its 4-wide window; a grid spans its taps)."""
    from tests.test_symbolic_exact import check

    text = ("archc: 1\nname: s\ninput: [4, 8, 12]\nnodes:\n  last: {op: permute, dims: [0, 2, 3, 1]}\n"
            "  g: {op: window_partition, size: [2, 3]}\n  f: {op: linear, out_features: 5}\n"
            "  n: {op: window_reverse, in: [last, f], size: [2, 3]}\n  first: {op: permute, dims: [0, 3, 1, 2]}\n")
    path = _write(tmp_path, text)
    sym = archc.check(path, input_shape=[4, "H", "W"]).symbolic
    assert sym is not None and sym.method == "algebra" and sym.complete
    assert sym.shapes["first"] == ("5", "H", "W")
    assert sym.constraint == "H >= 2 and H % 2 == 0, W >= 3 and W % 3 == 0"
    check(str(path), [(h, w) for h in range(1, 13) for w in range(1, 13)])
    assert archc.check(path).receptive_field == 2
    assert archc.check(EXAMPLE).receptive_field == 4
    grid = archc.check(_write(tmp_path, text.replace("size: [2, 3]}", "size: [2, 3], mode: grid}")))
    assert grid.receptive_field == 5  # 2 taps 4 rows apart


def test_generated_specs_match_the_meta_build() -> None:
    """The fuzz generator's strategies for the new ops: static shapes and parameter counts equal the
    meta-device module's, and archc accepts most of what they draw."""
    from hypothesis import HealthCheck, given, settings

    from tests.fuzzgen import spec_text
    from tests.test_fuzz import _matches_meta_build

    draws = {"valid": 0, "refused": 0}
    seen: set[str] = set()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec_text(ops=[*NEW_OPS, "relu", "index_select"]))
    def one(text: str) -> None:
        _matches_meta_build(text, draws, seen)

    one()
    assert draws["refused"] <= 0.15 * sum(draws.values()), draws
    assert set(NEW_OPS) <= seen, seen


def test_new_ops_are_listed_and_completed(capsys: pytest.CaptureFixture[str]) -> None:
    from archc.cli import main
    from archc.lsp.document import op_names

    assert main(["blocks"]) == 0
    listed = {line.split("(", 1)[0] for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")}
    assert set(NEW_OPS) <= listed
    assert set(NEW_OPS) <= {n for n, _ in op_names(None)}
