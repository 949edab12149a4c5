#!/usr/bin/env bash
# Train the shipped wbc model (RGB; background, cytoplasm, nucleus) on the wbc train split.
# Stray anti-aliasing values in 5 masks of dataset2 (at most 179 pixels each) count as background.
# Usage: bash recipes/wbc.sh [DATA_DIR]   (DATA_DIR holds wbc/; default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}/wbc
unet-loop train \
  --images "$data/dataset1/images" --labels "$data/dataset1/masks" \
  --images "$data/dataset2/images" --labels "$data/dataset2/masks" \
  --label-map '0:0,128:1,255:2,*:0' \
  --slices @recipes/splits/wbc-train.txt --val-slices @recipes/splits/wbc-val.txt \
  --classes background,cytoplasm,nucleus \
  --depth 4 --base-channels 16 --patch-size 128 --batch-size 8 \
  --iterations 400 --val-every 100 --learning-rate 1e-3 --seed 0 --half \
  --name wbc -o src/napari_unet_loop/models/wbc.safetensors

# Then fine-tuning stages from the previous weights, each keeping the weights of its best
# validation check: 600 iterations at half the learning rate, then, as validation Dice was
# still rising, 1000 at 3e-4 and 1500 at 2e-4.
for stage in "600 5e-4 1" "1000 3e-4 2" "1500 2e-4 3"; do
  read -r iterations rate seed <<<"$stage"
  unet-loop train --from src/napari_unet_loop/models/wbc.safetensors \
    --images "$data/dataset1/images" --labels "$data/dataset1/masks" \
    --images "$data/dataset2/images" --labels "$data/dataset2/masks" \
    --label-map '0:0,128:1,255:2,*:0' \
    --slices @recipes/splits/wbc-train.txt --val-slices @recipes/splits/wbc-val.txt \
    --patch-size 128 --batch-size 8 \
    --iterations "$iterations" --val-every 100 --learning-rate "$rate" --seed "$seed" --half \
    --name wbc -o src/napari_unet_loop/models/wbc.safetensors
done

# The scale the loop's object-size setting compares images with (README "Object scale").
python recipes/record_scale.py wbc \
  --images "$data/dataset1/images" --labels "$data/dataset1/masks" \
  --images "$data/dataset2/images" --labels "$data/dataset2/masks" \
  --slices @recipes/splits/wbc-train.txt
