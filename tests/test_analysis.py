"""Static analysis against published figures (../shared/DESIGN.md §2, torchvision's `_ops` metadata)."""

from __future__ import annotations

import pytest

import archc

# model: (parameters, GMACs as torchvision publishes them, receptive field of the last feature map)
REFERENCE = {
    "alexnet": (61_100_840, 0.714, 195),
    "vgg16": (138_357_544, 15.470, 212),
    "googlenet": (6_624_904, 1.498, None),
    "resnet18": (11_689_512, 1.814, 435),
    "resnet50": (25_557_032, 4.089, 427),
    "resnet152": (60_192_808, 11.514, 1451),
    "densenet121": (7_978_856, 2.834, 2071),
    "mobilenet_v2": (3_504_872, 0.301, 491),
    "efficientnet_b0": (5_288_548, 0.386, None),
    "convnext_tiny": (28_589_128, 4.456, None),
    "vit_b_16": (86_567_656, 17.564, None),
    "vit_l_16": (304_326_632, 61.555, None),
}
SEED = {"lenet5": 61_706, "unet": 31_042_434, "inception_module": 164_432, "yolo_head": 4_983_039}


@pytest.mark.parametrize("name", REFERENCE)
def test_params_macs_rf(name):
    params, gmacs, rf = REFERENCE[name]
    a = archc.check(name)
    assert a.params == params
    assert round(a.macs / 1e9, 3) == gmacs
    if rf is not None:
        assert a.receptive_field == rf


@pytest.mark.parametrize("name", SEED)
def test_seed_parameter_counts(name):
    assert archc.check(name).params == SEED[name]


def test_depthwise_separable_block_params():
    from archc.analyze.summary import rows

    a = archc.check("mobilenet_v1")
    block = next(r for r in rows(a, depth=2) if r.path == "blocks.6")  # a 512 -> 512 block
    assert block.params == 268_800


def test_grouped_conv_macs():
    a = archc.check("mobilenet_v2")
    dw = a.info["features.2.conv.1.0"]  # 3x3 depthwise, 96 channels, stride 2, 112 -> 56
    assert dw.macs == 96 * 56 * 56 * 9


def test_receptive_field_global_after_pooling():
    a = archc.check("resnet18")
    assert a.info["layer4.1.relu"].rf is not None and a.info["avgpool"].rf is None


def test_receptive_field_takes_widest_branch_and_dilation(tmp_path):
    spec = tmp_path / "rf.yaml"
    spec.write_text("name: rf\ninput: [1, 64, 64]\nnodes:\n"
                    "  a: {op: conv2d, out_channels: 1, kernel_size: 3, dilation: 2, padding: 2}\n"
                    "  b: {op: conv2d, in: input, out_channels: 1, kernel_size: 1}\n"
                    "  c: {op: add, in: [a, b]}\n"
                    "  d: {op: max_pool2d, kernel_size: 2}\n"
                    "  e: {op: conv2d, out_channels: 1, kernel_size: 3, padding: 1}\n")
    a = archc.check(spec)
    assert a.info["c"].rf.pixels == 5  # dilated 3x3 spans 5; the 1x1 branch is narrower
    assert a.info["e"].rf.pixels == 5 + 1 + 2 * 2  # pool adds 1, then a 3x3 at jump 2 adds 4


# Activations a training step keeps for backward: archc's estimate against what autograd really
# saves (saved_tensors_hooks, unique storages, parameters excluded). Stated tolerance: ±35%.
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "vgg11_bn", "convnext_tiny", "vit_b_32",
                                  "densenet121", "efficientnet_b0", "googlenet"])
def test_training_memory_estimate(name):
    import torch

    from archc.analyze.memory import memory

    shape = None if name.startswith("vit") else [3, 64, 64]
    a = archc.check(name, input_shape=shape)
    model = archc.compile(name, input_shape=shape).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(2, *a.graph.inputs[0][1]))
    real = sum(v for k, v in saved.items() if k not in params)
    estimate = memory(a, batch=2)["training_activation_bytes"]
    assert 0.65 <= estimate / real <= 1.35


def test_memory_scales_with_batch_and_dtype():
    from archc.analyze.memory import memory

    a = archc.check("resnet50")
    one, eight, half = memory(a, 1), memory(a, 8), memory(a, 8, "bf16")
    assert one["param_bytes"] == 4 * 25_557_032 == eight["param_bytes"]
    assert eight["training_activation_bytes"] == 8 * one["training_activation_bytes"]
    assert half["inference_peak_activation_bytes"] * 2 == eight["inference_peak_activation_bytes"]
    assert one["inference_peak_activation_bytes"] < one["training_activation_bytes"]




def test_frozen_paths_counted_and_applied():
    a = archc.check("yolo_resnet18")
    backbone = sum(i.params for p, i in a.info.items() if p.split(".")[0] in ("conv1", "bn1", "layer1", "layer2"))
    assert a.frozen_params == backbone > 0
    model = archc.compile("yolo_resnet18", device="meta")
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == backbone
    assert all(p.requires_grad for p in model.detect.parameters())


def test_a_node_read_before_it_is_analysed_is_an_internal_error():
    """The execution order puts producers first; if it ever did not, the analysis must not skip the
    readers silently as if their producer had failed (a cyclic spec once passed that way)."""
    from dataclasses import replace

    from archc.analyze.shapes import analyze
    from archc.resolve import resolve

    graph = resolve("lenet5").graph
    with pytest.raises(AssertionError, match="before they are analysed"):
        analyze(replace(graph, nodes=graph.nodes[::-1]))
