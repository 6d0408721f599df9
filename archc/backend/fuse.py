"""Inference-time folding of BatchNorm into the convolution before it (eval mode only).

A conv whose only reader is a BatchNorm in eval mode computes ``bn(conv(x))``, an affine map of the
conv's output; folding the statistics into the conv's weight and bias gives the same result (up to
float rounding) in one kernel. Done on the compiled fx graph in place of re-tracing it (tracing again
would meet the constant ops that read sizes in the forward): the BatchNorm's node is replaced by the
conv's, and the BatchNorm module is dropped from the graph (the state_dict changes, so use this only
on a copy that is run, never one that is saved or trained).
"""

from __future__ import annotations

import copy

from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fuse_conv_bn"]


def fuse_conv_bn(gm: fx.GraphModule) -> fx.GraphModule:
    """A copy of ``gm`` in eval mode with every conv -> batchnorm pair folded into the conv."""
    gm = copy.deepcopy(gm).eval()
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        conv_node = node.args[0] if node.args else None
        if not isinstance(conv_node, fx.Node) or conv_node.op != "call_module" or len(conv_node.users) != 1:
            continue
        conv, bn = modules.get(conv_node.target), modules[node.target]
        if not isinstance(conv, nn.Conv2d) or not bn.track_running_stats or bn.running_mean is None:
            continue
        fused = fuse_conv_bn_eval(conv, bn)
        conv.weight, conv.bias = fused.weight, fused.bias
        node.replace_all_uses_with(conv_node)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm

