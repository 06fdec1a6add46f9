#!/bin/bash
# Issue 20: ir2i-compact-5 trained on with the operating-point ladder of rate weights
# doubled (0.02 x 9 - j for stage j): ra3's 0.01 took 3-23% of stages 2-6's cost at equal
# quality; does twice the weight take more, and at what quality? Resumable: run again.
# Time box 75 min (was 60): the first 60 counted ~12 min of pauses for CI.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra4/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra4 --init models/ir2i-compact-5 \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 75 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.02 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
