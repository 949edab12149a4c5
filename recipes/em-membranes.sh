#!/usr/bin/env bash
# Train the shipped em-membranes model on ISBI 2012 slices 0-23 (24-29 held out for validation).
# Usage: bash recipes/em-membranes.sh [DATA_DIR]   (DATA_DIR holds isbi2012/; default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}/isbi2012
unet-loop train \
  --images "$data/train-volume.tif" --labels "$data/train-labels.tif" \
  --slices 0-23 --val-slices 24-29 --label-map 255:0,0:1 --classes interior,membrane \
  --depth 4 --base-channels 16 --patch-size 256 --batch-size 4 \
  --iterations 1200 --val-every 100 --learning-rate 1e-3 --seed 0 --half \
  --name em-membranes -o src/napari_unet_loop/models/em-membranes.safetensors
