#!/bin/bash
# Issue 20: compact-4 trained on with a rate weight per stage that follows the operating
# points: decoding s stages costs the bits of stages 1..s, so a loss summed over the 8
# operating points (D_s + lambda * R_1..s) counts stage j's rate 9 - j times. lambda 0.01:
# stage 8 at half of ra1's 0.02 (which cut it to a quarter of its raw bits), stage 1 at 0.08.
# Resumable: run again to continue.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra3/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra3 --init models/ir2i-compact-4 \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 60 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.01 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
