#!/bin/bash
# --tune psnr (issue 20, item 4): ir2i-compact-4 fine-tuned for squared error with the rate
# term. --rate-weight 0.0004 = 0.02 / 50: the mix loss weighs MSE by 50 (losses.coder_loss),
# so this is ra1's rate weight on the squared-error scale. Resumable: run again to continue.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ps1/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ps1 --init models/ir2i-compact-4 \
  --preset compact --inpaint-layers 4 --loss l2 --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 80 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --rate-weight 0.0004 --checkpoint-minutes 4 $RESUME
