#!/bin/bash
# Issue 20: compact-4 trained on with a doubled rate weight (0.04): does it reach the early stages?
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra2/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra2 --init models/ir2i-compact-4 \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 25 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.04 --checkpoint-minutes 4 $RESUME
