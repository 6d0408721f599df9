#!/usr/bin/env bash
# Regenerate the README's diagrams with archc's own commands.
set -euo pipefail
cd "$(dirname "$0")/.."
archc render resnet50 --svg -o docs/images/resnet50.svg
archc render unet --svg -o docs/images/unet.svg
archc render densenet121 --svg -o docs/images/densenet121.svg
