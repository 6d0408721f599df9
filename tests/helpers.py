"""Helpers for running compiled models node by node and comparing them with torchvision twins."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import fx

import archc

# Twins compared at full size because their shapes refuse SMALL x SMALL (a ViT's position table
# fixes its size; Inception-v3's auxiliary head pools 5x5 a map that is 17x17 at 299; MaxViT's
# stages must divide by its 7x7 partitions, and torchvision fixes its grid at build time). Every
# other twin must check at SMALL x SMALL, or its comparison fails.
FULL_SIZE = frozenset({"vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14", "inception_v3", "maxvit_t"})
SMALL = 64
# Twins compared at another (H, W) than SMALL x SMALL: a dilated convolution matters only where its
# outer taps reach into the map (a "same"-padded 3x3 conv of dilation r needs a map larger than r),
# and at 64 px DeepLabV3's ASPP (rates 12, 24, 36) sees 8x8 maps behind a ResNet (output stride 8)
# and 4x4 behind MobileNetV3 (output stride 16), where it equals a 1x1 conv. Each size here makes
# H exercise every dilation (test_zoo.py::test_comparison_exercises_every_dilation checks it from
# the specs); W stays SMALL: the specs' dilations are one number for both axes, and a tall input
# costs less (deeplabv3_resnet50's comparison: 4.5 s at 64x64, 9 s at 296x64, 17 s at 296x296).
COMPARE_AT = {
    "deeplabv3_resnet50": (296, 64),              # maps 37 x 8
    "deeplabv3_resnet101": (296, 64),
    "deeplabv3_mobilenet_v3_large": (592, 64),    # maps 37 x 4 (torchvision's own 520 gives 33: rate 36 inert)
    "lraspp_mobilenet_v3_large": (80, 80),        # the backbone's dilation-2 5x5 convs: maps 5 > 4
}
ATOL = 1e-6


def observed_shapes(module: fx.GraphModule, *inputs: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Run the model and record each spec node's output shape, batch dimension dropped."""
    seen: dict[str, tuple[int, ...]] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            path = n.meta.get("archc_path")
            if path is not None and isinstance(out, torch.Tensor):
                seen[path] = tuple(out.shape[1:])
            return out

    with torch.no_grad():
        Recorder(module).run(*inputs)
    return seen


_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)


def _fill_random_(module: torch.nn.Module, name: str, t: torch.Tensor, gen: torch.Generator) -> None:
    """Overwrite one parameter or buffer with a random, non-degenerate value (in place)."""
    if name == "num_batches_tracked":  # unused in eval mode: torchvision's initial value
        t.zero_()
        return
    if not t.is_floating_point():  # Swin's relative_position_index: an integer lookup table, kept
        return
    if isinstance(module, _NORMS):
        if name in ("weight", "running_var"):
            t.uniform_(0.5, 1.5, generator=gen)
        else:  # bias, running_mean
            t.normal_(0.0, 0.1, generator=gen)
    elif name.endswith("bias"):
        t.normal_(0.0, 0.1, generator=gen)
    elif name in ("layer_scale", "gamma"):  # ConvNeXt's 1e-6 layer scale would hide its whole block
        t.uniform_(0.5, 1.5, generator=gen)
    elif name in ("class_token", "pos_embedding", "relative_position_bias_table", "relative_coords_table"):
        t.normal_(0.0, 0.5, generator=gen)  # ViT's tokens and positions; Swin (V2)'s bias tables
    elif name == "logit_scale":  # Swin V2: log temperature of the cosine attention (clamped at log 100)
        t.uniform_(1.0, 3.0, generator=gen)
    elif name.endswith("weight") and t.dim() >= 2:  # fan-in scaling; He gain for (mostly ReLU) convolutions
        gain = 2**0.5 if isinstance(module, torch.nn.modules.conv._ConvNd) else 1.0
        t.normal_(0.0, gain * t[0].numel() ** -0.5, generator=gen)
    else:
        raise ValueError(f"randomize_: no rule for {type(module).__name__}.{name} {tuple(t.shape)}; add one")


def _scale_batchnorms(module: torch.nn.Module, example: torch.Tensor) -> None:
    """Scale each BatchNorm's random statistics by the mean and variance its input has on `example`.

    Random statistics alone let residual streams grow geometrically (ResNet-152's output std
    ~150). One scalar per layer (over all channels, so a small batch estimates it well) keeps
    every layer O(1) while the per-channel U(0.5, 1.5) spread stays.
    """

    def hook(bn: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach().transpose(0, 1).flatten(1)  # (channels, samples)
        std = x.std().clamp_min(1e-3)
        bn.running_mean.mul_(std).add_(x.mean())  # type: ignore[operator]
        bn.running_var.mul_(std**2)  # type: ignore[operator]

    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    handles = [m.register_forward_pre_hook(hook) for m in bns]
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()(example)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)


def randomize_(module: torch.nn.Module, seed: int, example: torch.Tensor | None = None) -> torch.nn.Module:
    """Give every parameter and buffer a deterministic random value that keeps activations O(1).

    Fresh torchvision weights make comparisons vacuous (ViT's zero head, ConvNeXt's 1e-6 layer
    scale, identity BatchNorm statistics); these do not. Every tensor is overwritten, so `module` need
    not be initialised. With an `example` batch, BatchNorm statistics are then scaled to the
    activations it produces. A tensor no rule covers raises.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, mod in sorted(module.named_modules(), key=lambda kv: kv[0]):
            tensors = [*mod.named_parameters(recurse=False), *mod.named_buffers(recurse=False)]
            for name, t in sorted(tensors, key=lambda kv: kv[0]):
                _fill_random_(mod, name, t, gen)
    if example is not None:
        _scale_batchnorms(module, example)
    return module


def comparison_params(spec: Path) -> dict[str, Any]:
    """The params a twin is compared with: `aux_loss` on where the spec has it (segmentation), so
    both outputs, `out` and `aux`, are compared."""
    params = archc.check(spec).graph.params
    return {"aux_loss": True} if isinstance(params.get("aux_loss"), bool) else {}


def comparison_analysis(spec: Path) -> archc.analyze.Analysis:
    """The spec at the size its twin is compared at: COMPARE_AT's, else SMALL x SMALL unless FULL_SIZE
    names it; with `comparison_params`."""
    params = comparison_params(spec)
    full = archc.check(spec, **params)
    channels, *spatial = full.graph.inputs[0][1]
    if spec.stem in COMPARE_AT:
        return archc.check(spec, input_shape=[channels, *COMPARE_AT[spec.stem]], **params)
    if spec.stem in FULL_SIZE or len(spatial) != 2 or min(spatial) <= SMALL:
        return full
    return archc.check(spec, input_shape=[channels, SMALL, SMALL], **params)  # an error here fails the test


def _keep(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


@contextmanager
def _no_init() -> Iterator[None]:
    """Skip torch.nn.init's initialisers (8 s for ConvNeXt-L); randomize_ overwrites every tensor.

    (Building on the meta device would too, but RegNet's builder computes its widths with tensors.)
    """
    names = [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, _keep)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


def twin_module(analysis: archc.analyze.Analysis) -> torch.nn.Module:
    """The spec's torchvision twin, uninitialised (fast: for counting, or for `randomize_`)."""
    twin = analysis.graph.twin()
    assert twin is not None
    kwargs = dict(twin[1])
    if isinstance(analysis.graph.params.get("aux_loss"), bool):  # segmentation: the spec's aux_loss
        kwargs["aux_loss"] = analysis.graph.params["aux_loss"]
    with _no_init():
        return torchvision.models.get_model(twin[0], **kwargs)


def twin_input(analysis: archc.analyze.Analysis) -> torch.Tensor:
    """The seeded batch of 2 (on the CPU) that twins are calibrated and compared on."""
    return torch.randn(2, *analysis.graph.inputs[0][1], generator=torch.Generator().manual_seed(0))


def random_twin(analysis: archc.analyze.Analysis, seed: int = 0) -> torch.nn.Module:
    """The spec's torchvision twin in eval mode, `randomize_`d with `twin_input` as the example."""
    return randomize_(twin_module(analysis), seed, twin_input(analysis)).eval()


def rtol_for(params: int) -> float:
    """Relative tolerance of the twin comparison (fp32 sums over more terms in the largest models)."""
    return 1e-4 if params > 250_000_000 else 1e-5


def twin_mismatch(ours: torch.Tensor, ref: torch.Tensor, rtol: float, atol: float = ATOL) -> str | None:
    """Why `ours` does not match the twin's output `ref`, or None when max|a-b| <= rtol*max|b| + atol.

    A near-zero reference (zero-initialised head, vanishing activations) is a mismatch too: it
    would let any model pass.
    """
    scale, spread = ref.abs().max().item(), ref.std().item()
    if not scale > 1e-2 or not spread > 1e-3:
        return f"reference output is near zero (max {scale:.2e}, std {spread:.2e}): the comparison proves nothing"
    diff = (ours - ref).abs().max().item()
    allowed = rtol * scale + atol
    return None if diff <= allowed else f"max|diff| {diff:.3e} > {allowed:.3e} (rtol {rtol:g}, max|ref| {scale:.3e})"


def _outputs(out: Any, names: Sequence[str]) -> list[torch.Tensor]:
    """A model's outputs as a list: a tensor, a tuple, or a dict keyed by output name (FCN's "out")."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [out[n] for n in names]
    return list(out)


def compare_with_twin(model: torch.nn.Module, tv: torch.nn.Module, analysis: archc.analyze.Analysis,
                      device: str = "cpu", train: bool = False) -> str | None:
    """Run both on `twin_input` and return `twin_mismatch`'s verdict over all outputs. With `train`,
    both run in training mode (batch statistics, dropout drawn from the same seed) and the outputs
    returned in training only (Inception-v3's aux logits) are compared too; both are left in eval mode."""
    x = twin_input(analysis).to(device)
    names = (*analysis.graph.outputs, *(analysis.graph.train_outputs if train else ()))
    model.train(train)
    tv.train(train)
    try:
        with torch.no_grad():
            torch.manual_seed(0)
            ours = _outputs(model(x), names)
            torch.manual_seed(0)
            ref = _outputs(tv(x), names)
    finally:
        model.eval()
        tv.eval()
    if len(ours) != len(ref):
        return f"{len(ours)} outputs, the twin has {len(ref)}"
    problems = (twin_mismatch(a.float().cpu(), b.float().cpu(), rtol_for(analysis.params)) for a, b in zip(ours, ref))
    return next((f"output {names[i] if i < len(names) else i}: {p}" for i, p in enumerate(problems) if p), None)


def require_tool(found: str | None, what: str) -> None:
    """A missing tool fails the test (tools/setup.sh installs it); ARCHC_ALLOW_MISSING_TOOLS=1 skips it."""
    if found is None:
        message = f"{what} not installed (tools/setup.sh installs it)"
        if os.environ.get("ARCHC_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(f"{message}; set ARCHC_ALLOW_MISSING_TOOLS=1 to skip these tests instead")
