#!/bin/bash
# Issue 20: ra5 again. ra5 (results/training/ra5-compact6-ladder4) trained to step 2,881 but its
# checkpoints were lost with the home directory before its evaluation. The same recipe (the
# ladder 0.04 x 9 - j for stage j), warm-started from the shipped ir2i-compact-6 bundle (ra4's
# best weights; its bit-model twin starts fresh, as ra4's did from compact-5), and 60 minutes
# instead of 75: ra5's proxy BD had reached -3.7% by step 1,900. Resumable: run again.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra5b/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra5b --init models/ir2i-compact-6 \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 60 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.04 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
