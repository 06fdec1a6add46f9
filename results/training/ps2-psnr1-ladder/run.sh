#!/bin/bash
# SUPERSEDED, never run: ir2i-psnr-2 (results/training/pf-psnr2/) took the default's networks
# instead, after ir2i-compact-7 passed ir2i-psnr-1 in PSNR (docs/rate-aware.md, lever 4).
# --tune psnr with the operating-point ladder (issue 20): ir2i-psnr-1 trained on for squared
# error with the rate weight per stage, 0.0004 x (9 - j) for stage j: ra4's ladder (0.02 x
# (9 - j), which made ir2i-compact-6) on the squared-error scale (/ 50, as ps1's 0.0004 was
# ra1's 0.02). Resumable: run again to continue.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ps2/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ps2 --init models/ir2i-psnr-1 \
  --preset compact --inpaint-layers 4 --loss l2 --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 75 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --rate-weight 0.0004 --rate-stage-scales 8,7,6,5,4,3,2,1 --checkpoint-minutes 4 $RESUME
