"""Write a compiled model as one readable, self-contained Python file: an nn.Module class with the
same state_dict keys and the same forward, needing only torch."""

from __future__ import annotations

import dis
import inspect
import re
import textwrap
from typing import Any, cast

import torch
from torch import fx, nn
from torch.nn import functional as F

from archc.backend import modules as helpers
from archc.backend.builder import TRAIN_CALLS
from archc.blocks.nn.modules import self_attention
from archc.errors import UsageError

__all__ = ["python_source"]

# modules whose repr() is a faithful constructor call
_REPR_OK = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
            nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Hardswish, nn.Hardsigmoid,
            nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Linear, nn.Conv1d,
            nn.BatchNorm1d, nn.PReLU, nn.ELU, nn.Mish, nn.Softplus, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.RMSNorm)

_STOCHASTIC_DEPTH = '''
class StochasticDepth(nn.Module):
    """Drop whole samples of a residual branch while training (identity in eval)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)
'''

_SDPA = '''
class ScaledDotProductAttention(nn.Module):
    """F.scaled_dot_product_attention with dropout only while training."""

    def __init__(self, is_causal: bool = False, scale: float | None = None, dropout_p: float = 0.0):
        super().__init__()
        self.is_causal, self.scale, self.dropout_p = is_causal, scale, dropout_p

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout_p if self.training else 0.0,
                                              is_causal=self.is_causal, scale=self.scale)
'''


# torchvision modules the Swin and MaxViT blocks build: written as torchvision imports (class -> module)
_TORCHVISION = {"ShiftedWindowAttention": "swin_transformer", "ShiftedWindowAttentionV2": "swin_transformer",
                "PatchMerging": "swin_transformer", "PatchMergingV2": "swin_transformer"}


def _torchvision_ctor(mod: nn.Module) -> str | None:
    name = type(mod).__name__
    if type(mod).__module__.startswith("torchvision.") and name.startswith("ShiftedWindowAttention"):
        a: Any = mod
        return (f"{name}({a.qkv.in_features}, {list(a.window_size)}, {list(a.shift_size)}, {a.num_heads}, "
                f"qkv_bias={a.qkv.bias is not None}, proj_bias={a.proj.bias is not None}, "
                f"attention_dropout={a.attention_dropout!r}, dropout={a.dropout!r})")
    if type(mod).__module__.startswith("torchvision.") and name.startswith("PatchMerging"):
        return f"{name}({cast(Any, mod).dim})"
    if name == "PartitionAttention":  # archc.blocks.maxvit: torchvision's attention, regrouped
        a = mod
        return f"PartitionAttention({a.n_heads * a.head_dim}, {a.head_dim}, {a.partition_size}, {a.grid})"
    return None


def _ctor(mod: nn.Module) -> str:
    """Constructor expression for a leaf module."""
    made = _torchvision_ctor(mod)
    if made is not None:
        return made
    if isinstance(mod, helpers.SelfAttention):
        bias = mod.in_proj_bias is not None
        return f"SelfAttention({mod.embed_dim}, {mod.num_heads}, dropout={mod.dropout}, bias={bias}, batch_first=True)"
    if isinstance(mod, helpers.LayerNorm2d):
        return "LayerNorm2d" + repr(mod)[len("LayerNorm2d"):]
    if isinstance(mod, nn.AvgPool2d):
        return (f"nn.AvgPool2d({mod.kernel_size!r}, {mod.stride!r}, {mod.padding!r}, ceil_mode={mod.ceil_mode}, "
                f"count_include_pad={mod.count_include_pad})")
    if type(mod).__name__ == "StochasticDepth":
        return f"StochasticDepth({mod.p!r}, {mod.mode!r})"
    if type(mod).__name__ == "ScaledDotProductAttention":  # archc.blocks.sdpa
        return f"ScaledDotProductAttention({mod.is_causal!r}, {mod.scale!r}, {mod.dropout_p!r})"
    if type(mod) in _REPR_OK:
        text = "nn." + repr(mod)
        mode = getattr(mod, "padding_mode", "zeros")  # convolutions' repr leaves the mode unquoted
        return text.replace(f"padding_mode={mode})", f"padding_mode={mode!r})")
    raise UsageError(f"cannot write {type(mod).__name__} as Python source")


def _is_helper(obj: Any) -> bool:
    """An archc function the generated forward calls: archc.backend.modules' helpers and the block files' own
    (parameter, gather, index_select, masked_fill, where, fold to an input), all self-contained: copied."""
    module = getattr(obj, "__module__", "") or ""
    return inspect.isfunction(obj) and (module == helpers.__name__ or module.startswith("archc.blocks."))


def _helpers_they_call(fns: Any, have: set[str]) -> list[tuple[str, Any]]:
    """The functions of their own module that helpers call by name (windows.attention_mask calls partition),
    transitively, each once under its own name."""
    out: list[tuple[str, Any]] = []
    todo = list(fns)
    while todo:
        fn = todo.pop()
        for name in {i.argval for i in dis.get_instructions(fn) if i.opname == "LOAD_GLOBAL"}:
            dep = fn.__globals__.get(name)
            if name not in have and _is_helper(dep):
                have.add(name)
                out.append((name, dep))
                todo.append(dep)
    return sorted(out, key=lambda item: item[0])


def _helper_source(name: str, fn: Any) -> str:
    src = inspect.getsource(fn)
    return re.sub(rf"^def {fn.__name__}\(", f"def {name}(", src, count=1, flags=re.M)


def _init_lines(gm: fx.GraphModule, tables: dict[str, str]) -> list[str]:
    """The constructor's lines; ``tables`` collects the buffers' values (text -> constant name), written once
    each at module level, so the class holds the right tables before any state_dict is loaded."""
    lines: list[str] = []
    made: set[str] = set()

    def container(path: str) -> None:
        if not path or path in made:
            return
        parent, _, name = path.rpartition(".")
        container(parent)
        lines.append(f"        self{_at(parent)}.add_module({name!r}, nn.Module())")
        made.add(path)

    for node in gm.graph.nodes:
        if node.op not in ("call_module", "get_attr") or node.target == "training":  # nn.Module has it
            continue
        if node.target == TRAIN_CALLS:
            lines += _train_calls(getattr(gm, TRAIN_CALLS))
            continue
        parent, _, name = node.target.rpartition(".")
        container(parent)
        target = gm.get_submodule(node.target) if node.op == "call_module" else _attr(gm, node.target)
        if isinstance(target, nn.Module):  # also a train-only module, read by get_attr
            lines.append(f"        self{_at(parent)}.add_module({name!r}, {_ctor(target)})")
        elif not isinstance(target, nn.Parameter):  # a buffer node's table (persistent)
            values = repr(target.detach().cpu().tolist())
            constant = tables.setdefault(values, f"_TABLE_{len(tables)}")
            lines.append(f"        self{_at(parent)}.register_buffer({name!r}, torch.tensor({constant}, "
                         f"dtype={target.dtype}))")
        else:
            shape = tuple(gm.get_parameter(node.target).shape)
            lines.append(f"        self{_at(parent)}.register_parameter({name!r}, nn.Parameter(torch.zeros{shape}))")
    return lines


def _attr(gm: fx.GraphModule, path: str) -> Any:
    parent, _, name = path.rpartition(".")
    return getattr(gm.get_submodule(parent), name)


def _function(fn: Any) -> str:
    """How the generated file names a function of a train-only node: torch.X, F.X or an archc helper."""
    name = getattr(fn, "__name__", "")
    for prefix, home in (("torch.", torch), ("F.", F), ("", helpers)):
        if name and getattr(home, name, None) is fn:
            return prefix + name
    raise UsageError(f"cannot write the function {fn!r} of a train-only node as Python source")


def _train_calls(table: helpers.TrainCalls) -> list[str]:
    """The table of train-only functions (``modules.TrainCalls``), rebuilt entry by entry."""
    lines = [f"        self.{TRAIN_CALLS} = TrainCalls()"]
    for fn, kwargs, list_input in table.calls:
        lines.append(f"        self.{TRAIN_CALLS}.add({_function(fn)}, {kwargs!r}, {list_input})")
    return lines


def _at(path: str) -> str:
    return f".get_submodule({path!r})" if path else ""


_LOADER = '''

def load_model(weights: str | None = None) -> {cls}:
    """A {cls} holding the weights exported beside this file, in eval mode."""
    import os

    model = {cls}()
    path = weights or os.path.join(os.path.dirname(os.path.abspath(__file__)), {file!r})
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
'''


def python_source(gm: fx.GraphModule, class_name: str, spec_name: str, weights_file: str | None = None) -> str:
    """The module's source; with ``weights_file`` (a ``torch.save``d state_dict written beside the file)
    it also defines ``load_model()``."""
    code = gm.graph.python_code(root_module="self")
    called = {name: obj for name, obj in sorted(code.globals.items()) if _is_helper(obj)}
    helper_defs = [_helper_source(name, obj) for name, obj in called.items()]
    helper_defs += [_helper_source(name, obj) for name, obj in _helpers_they_call(called.values(), set(called))]
    types = {type(m) for m in gm.modules()}
    classes = []
    if helpers.LayerNorm2d in types:
        classes.append(inspect.getsource(helpers.LayerNorm2d))
    if helpers.SelfAttention in types:  # with the function its general path calls, and the fx test it reads
        classes.append(inspect.getsource(helpers.SelfAttention))
        helper_defs.append(_helper_source("self_attention", self_attention))
    if any(t.__name__ == "StochasticDepth" for t in types):
        classes.append(_STOCHASTIC_DEPTH.strip() + "\n")
    imports = sorted({f"from torchvision.models.{_TORCHVISION[t.__name__]} import {t.__name__}\n"
                      for t in types if t.__name__ in _TORCHVISION and t.__module__.startswith("torchvision.")})
    if helpers.SelfAttention in types:
        imports.append("from torch.fx._symbolic_trace import is_fx_symbolic_tracing\n")
    if any(t.__name__ == "ScaledDotProductAttention" for t in types):
        classes.append(_SDPA.strip() + "\n")
    partition = next((t for t in types if t.__name__ == "PartitionAttention"), None)
    if partition is not None:
        imports.append("from torchvision.models.maxvit import RelativePositionalMultiHeadAttention\n")
        classes.append(textwrap.dedent(inspect.getsource(partition)))
    table = getattr(gm, TRAIN_CALLS, None)
    if table is not None:
        classes.append(inspect.getsource(helpers.TrainCalls))
        used = {_function(fn) for fn, _, _ in table.calls} & set(vars(helpers))
        helper_defs += [_helper_source(name, getattr(helpers, name)) for name in sorted(used)
                        if name not in code.globals]
    forward = "\n".join("    " + line if line.strip() else "" for line in code.src.strip("\n").splitlines())
    usage = ("Trained weights: `load_model()` reads the .pt file written beside this one.\n" if weights_file else
             f"Weights are not included: `{class_name}()` starts from random ones; load a state_dict.\n")
    header = (f'"""{spec_name}, written by `archc export --format python`.\n\n'
              f"Self-contained: needs only torch{' and torchvision' if imports else ''}. state_dict keys match the "
              f"archc model.\n{usage}\"\"\"\n\n"
              "from typing import Any\n\nimport torch\nfrom torch import Tensor, nn\n"
              "from torch.nn import functional as F\n" + "".join(imports))
    tables: dict[str, str] = {}
    init = "\n".join(_init_lines(gm, tables))
    header += "".join(f"\n{constant} = {values}\n" for values, constant in tables.items())
    body = [header, *("\n" + c for c in classes), *("\n" + h for h in helper_defs),
            f"\nclass {class_name}(nn.Module):\n    def __init__(self) -> None:\n        super().__init__()",
            init, "", forward, ""]
    if weights_file is not None:
        body.append(_LOADER.format(cls=class_name, file=weights_file))
    text = "\n".join(body)
    compile(text, f"<{class_name}>", "exec")  # syntax check of our own generated code, never of spec text
    return text.replace("\n\n\n\n", "\n\n\n")


