#!/bin/bash
# Issue 23, step 3: ir2i-compact-8 trained on jointly for longer (a second cycle of
# run-joint.sh's recipe: LR 1e-4 then 1e-5 from 70% and 1e-6 from 90% of the time), to win
# back the 0.033 of held-out proxy objective it stayed above compact-7 (2.186 vs 2.153).
# Resumable: run again.
MINUTES=${MINUTES:-70}
cd /work/main || exit 1
. ~/venv/bin/activate
out=~/ir2i-runs/cyc8-joint2
RESUME=""; [ -f $out/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out $out --init models/ir2i-compact-8 \
  --preset compact --inpaint-kind cycled --inpaint-layers 5 --inpaint-dilations 16,8,4,2,1 \
  --filters-per-dilation 8 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes $MINUTES --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.04 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
