#!/bin/bash
# The PSNR-tuned model's bundle and post-filter (issue 20, item 4), after ps1-compact4-l2:
# export its chosen checkpoint as ir2i-psnr-1 (rate control: squared error), decode 300
# training photos with it, and fine-tune ir2i-compact-4's filter on them for squared error.
# Resumable: each step is skipped when its output exists (the filter resumes from last.pt).
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
BUNDLE=models/ir2i-psnr-1
[ -f $BUNDLE/model.json ] || python -m ir2icodec.training.export ~/ir2i-runs/ps1/best.pt $BUNDLE --name ir2i-psnr-1 \
    --tune psnr --postfilter-from models/ir2i-compact-4
[ -d ~/ir2i-runs/pairs-psnr1/heldout ] || python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model $BUNDLE --out ~/ir2i-runs/pairs-psnr1 --limit 300
RESUME=""; [ -f ~/ir2i-runs/pf-psnr1/last.pt ] && RESUME="--resume"
python -m ir2icodec.training.train_postfilter --pairs ~/ir2i-runs/pairs-psnr1 \
    --out ~/ir2i-runs/pf-psnr1 --init models/ir2i-compact-4 --loss mse --minutes 25 \
    --batch 8 --lr 1.5e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $BUNDLE $RESUME
