#!/bin/bash
# Issue 21: R2I-decoding with its links started as zero / identity / msra, at the short
# budget of docs/reproduction.md (2,500 steps of batch 32, L2, LR 1e-3 dropping at 60/85%),
# the same settings as experiments/train_variants.sh. Resumable.
cd /work/main; . ~/venv/bin/activate
for init in identity msra zero; do
  OMP_NUM_THREADS=2 python -m ir2icodec.training.train --data ../shared/data/train \
    --out ~/ir2i-runs/linkinit/decoding-$init --preset compact --steps 2500 --batch 32 \
    --seed 0 --resume --lr-drops 0.6,0.85 --inpaint-layers 8 --connections decoding \
    --inpainting none --link-init $init --threads 2 --val-every 500
done
