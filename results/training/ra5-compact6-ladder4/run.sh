#!/bin/bash
# Issue 20: ir2i-compact-6 (ra4) trained on with the operating-point ladder of rate weights
# doubled again (0.04 x 9 - j for stage j): 0.01 (ra3) gave 2.1 points of held-out MS-SSIM
# BD-rate, 0.02 (ra4) 3.9 more; where does it turn? Resumable: run again.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra5/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra5 --init ~/ir2i-runs/ra4/best.pt \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 75 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.04 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
