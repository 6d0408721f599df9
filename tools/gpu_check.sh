#!/usr/bin/env bash
# Twin check on a GPU (one H200, about a minute): archc vs torchvision on random weights for a few
# specs, fp32 without TF32; exits non-zero on a mismatch. Arguments go to tools/gpu_check.py:
#   bash tools/gpu_check.sh                      # CUDA, resnet50 vit_b_16 efficientnet_b0 convnext_tiny
#   bash tools/gpu_check.sh --device cpu         # same check without a GPU
#   bash tools/gpu_check.sh --specs resnet18,vgg16_bn
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH=. exec python tools/gpu_check.py "$@"
