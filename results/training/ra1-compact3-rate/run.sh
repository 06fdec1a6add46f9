#!/bin/bash
# Rate-aware fine-tune of ir2i-compact-3 (issue 20). Resumable: run again to continue.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra1/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra1 --init models/ir2i-compact-3 \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 80 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.02 --checkpoint-minutes 4 $RESUME
