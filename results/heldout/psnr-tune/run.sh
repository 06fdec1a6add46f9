#!/bin/bash
# --tune psnr, each lever alone on the 73 held-out photos at 0.65x (docs/rate-aware.md), the
# JPEG points kept from results/heldout/rate-aware/compact-4-065/:
#   c4-mse:        ir2i-compact-4, rate control on squared error (ir2i-mse)
#   psnr1-c4filter: ir2i-psnr-1 (trained for squared error), compact-4's post-filter
#   psnr1:         ir2i-psnr-1 with its own filter: ir2i (rate control), uniform, no filter
# HELDOUT065: python -m ir2icodec.training.holdout --data ../shared/data/train --out HELDOUT065
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
H=${HELDOUT065:-$HOME/ir2i-runs/heldout065}
KEEP=results/heldout/rate-aware/compact-4-065/rd_points.csv
OUT=results/heldout/psnr-tune
python -m ir2icodec.bench.rd --data $H --codecs ir2i-mse --model models/ir2i-compact-4 \
    --keep $KEEP --out $OUT/c4-mse-065 --jobs 2
# ir2i-psnr-1's networks with compact-4's filter (the bundle as exported, before its own)
TMP=$(mktemp -d); cp -r models/ir2i-psnr-1 $TMP/; rm $TMP/ir2i-psnr-1/postfilter.onnx
python -c "from ir2icodec.training.export import copy_postfilter; copy_postfilter('models/ir2i-compact-4', '$TMP/ir2i-psnr-1')"
python -m ir2icodec.bench.rd --data $H --codecs ir2i --model $TMP/ir2i-psnr-1 \
    --keep $KEEP --out $OUT/psnr1-c4filter-065 --jobs 2
rm -r $TMP
python -m ir2icodec.bench.rd --data $H --codecs ir2i,ir2i-uniform,ir2i-nofilter \
    --model models/ir2i-psnr-1 --keep $KEEP --out $OUT/psnr1-065 --jobs 2
