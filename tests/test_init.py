"""`init:` rules: every twin starts from torchvision's init scheme, not just its architecture.

Per parameter (state_dict key) of fresh models built after the same seed: where torchvision's
tensor is a constant, archc's is the same constant; otherwise the standard deviations agree within
15% (wider for tiny tensors, whose sample std is noisy) and so do the means (relative to the std).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torchvision

import archc
from tests.conftest import SPECS

TIE = 1.001  # twins within 0.1% of their group's smallest run in the normal run too (vgg11 and vgg11_bn)


def _scheme(analysis: archc.analyze.Analysis) -> tuple[object, str | None]:
    """Twins share an init scheme when their family and the file of their first `init:` rule agree."""
    rules = analysis.graph.meta.get("init") or ()
    first = rules[0].loc if rules and rules[0].loc is not None else None
    return analysis.graph.meta.get("family"), first.file if first is not None else None


def _twin_specs() -> list:
    """Every twin; in the normal run only the smallest of each scheme (the others are --slow: they
    run the same rules on bigger models)."""
    found = []
    for spec in SPECS:
        analysis = archc.check(spec)
        twin = analysis.graph.twin()
        if twin is not None:
            found.append((spec, twin, _scheme(analysis), analysis.params))
    smallest: dict[tuple[object, str | None], int] = {}
    for _, _, scheme, params in found:
        smallest[scheme] = min(params, smallest.get(scheme, params))
    out = []
    for spec, twin, scheme, params in found:
        marks = [] if params <= TIE * smallest[scheme] else [pytest.mark.slow]
        out.append(pytest.param(spec, twin, id=spec.stem, marks=marks))
    return out


def _std_tolerance(n: int) -> float:
    """15%, or 4 standard errors of the ratio of two sample stds of n values where that is wider."""
    return max(0.15, 4 / math.sqrt(n))


def init_problems(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> list[str]:
    """Each parameter whose fresh values do not follow torchvision's distribution."""
    problems = []
    for key, ref in theirs.items():
        got, ref = ours[key].double().flatten(), ref.double().flatten()
        if bool((ref == ref[0]).all()):
            if not bool((got == ref[0]).all()):
                problems.append(f"{key}: torchvision's is the constant {ref[0].item():g}, "
                                f"archc's spans {got.min().item():g}..{got.max().item():g}")
            continue
        n, ref_std, std = ref.numel(), ref.std().item(), got.std().item()
        if abs(std - ref_std) > _std_tolerance(n) * ref_std:
            problems.append(f"{key}: std {std:.4g}, torchvision's {ref_std:.4g}")
        elif abs(got.mean().item() - ref.mean().item()) > (0.1 + 5 / math.sqrt(n)) * ref_std:
            problems.append(f"{key}: mean {got.mean().item():.4g}, torchvision's {ref.mean().item():.4g}")
    return problems


@pytest.mark.parametrize("spec,twin", _twin_specs())
def test_initialised_like_torchvision(spec: Path, twin: tuple[str, dict]) -> None:
    # googlenet and inception_v3 pass init_weights=false (only to silence a warning): their builders'
    # default is torchvision's init
    kwargs = {**twin[1], **({"init_weights": True} if "init_weights" in twin[1] else {})}
    torch.manual_seed(0)
    tv = torchvision.models.get_model(twin[0], **kwargs)
    torch.manual_seed(0)
    model = archc.compile(spec)
    theirs = dict(tv.named_parameters())
    ours = dict(model.named_parameters())
    assert sorted(ours) == sorted(theirs)
    problems = init_problems(ours, theirs)
    assert not problems, f"{len(problems)} of {len(theirs)} parameters:\n" + "\n".join(problems[:12])


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_is_a_param(name: str) -> None:
    torch.manual_seed(1)
    tv = torchvision.models.get_model(name, zero_init_residual=True)
    torch.manual_seed(1)
    model = archc.compile(name, zero_init_residual=True)
    last_bn = "layer1.0.bn2.weight" if name == "resnet18" else "layer1.0.bn3.weight"
    assert bool((model.state_dict()[last_bn] == 0).all())
    assert not init_problems(dict(model.named_parameters()), dict(tv.named_parameters()))
    assert bool((archc.compile(name).state_dict()[last_bn] == 1).all())  # the default: false


def test_init_is_deterministic_under_manual_seed() -> None:
    torch.manual_seed(1)
    a = archc.compile("mobilenet_v3_small").state_dict()
    torch.manual_seed(1)
    b = archc.compile("mobilenet_v3_small").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_no_init_section_keeps_pytorch_defaults(tmp_path: Path) -> None:
    spec = tmp_path / "plain.yaml"
    spec.write_text("name: plain\ninput: [3, 8, 8]\nnodes:\n  conv: {op: conv2d, out_channels: 4, kernel_size: 3}\n")
    torch.manual_seed(3)
    ours = archc.compile(spec).state_dict()
    torch.manual_seed(3)
    ref = torch.nn.Conv2d(3, 4, 3)
    assert torch.equal(ours["conv.weight"], ref.weight) and torch.equal(ours["conv.bias"], ref.bias)


def test_child_init_replaces_the_inherited_list_and_meta_is_a_no_op(tmp_path: Path) -> None:
    spec = tmp_path / "child.yaml"
    spec.write_text("extends: resnet18\nname: child\ninit:\n  - {path: fc, weight: {constant: {value: 0.5}}}\n")
    model = archc.compile(spec)
    assert bool((model.fc.weight == 0.5).all())
    conv = model.conv1.weight  # the parent's kaiming-normal fan-out rule is gone: PyTorch's default
    default_std = 1 / math.sqrt(3 * (3 * 49))  # kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in))
    assert abs(conv.std().item() - default_std) < 0.1 * default_std  # fan-out kaiming would be 0.025
    assert archc.compile(spec, device="meta").fc.weight.is_meta


@pytest.mark.parametrize("rule,message,hint", [
    ("{op: conv2d, weight: kaiming_norml}", "'kaiming_norml' is not valid for init.0.weight", "kaiming_normal"),
    ("{op: conv2d, weight: {kaiming_norml: {mode: fan_out}}}", "unknown key 'kaiming_norml'", "kaiming_normal"),
    ("{op: conv2d, weight: {kaiming_normal: {std: 0.1}}}", "unknown key 'std'", "mode"),
    ("{op: conv2d, weight: {kaiming_normal: {mode: fan_output}}}", "'fan_output' is not valid", "fan_out"),
    ("{op: conv2d, weight: {constant: {}}}", "'value' is a required property", None),
    ("{op: conv2dd, weight: zeros}", "unknown op 'conv2dd'", "conv2d"),
    ("{weight: zeros}", "needs `op:` or `path:`", None),
    ("{op: conv2d, when: \"${1}\", weight: zeros}", "`when` must be true or false", None),
    ("{op: conv2d, weight: {normal: {std: \"${nope}\"}}}", "nope", None),
    ("{op: conv2d, wieght: zeros}", "has no parameter 'wieght'", "weight"),
    ("{op: batchnorm2d, weight: kaiming_normal}", "needs a weight of 2 or more dimensions", None),
])
def test_located_errors(tmp_path: Path, rule: str, message: str, hint: str | None) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninput: [3, 8, 8]\nnodes:\n  conv: {op: conv2d, out_channels: 4, kernel_size: 3}\n"
                    f"  bn: batchnorm2d\ninit:\n  - {rule}\n")
    with pytest.raises(archc.ArchcError) as info:
        archc.compile(spec)
    err = info.value
    assert message in str(err)
    assert err.loc is not None and err.loc.file.endswith("bad.yaml") and err.loc.line == 7
    if hint is not None:
        assert hint in (err.hint or "")
