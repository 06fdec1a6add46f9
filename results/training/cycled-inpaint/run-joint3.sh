#!/bin/bash
# A third cycle of run-joint.sh's recipe, from ir2i-compact-9's checkpoint (run-joint2.sh's
# best): the second cycle won back 0.011 of held-out proxy objective (2.186 -> 2.1757; compact-7
# 2.1534) and was still improving. Peak LR halved (5e-5), then 1e-5.. from 70% and 90% of the
# time. A better float base for compact-9's successors (an int8-decoder twin spends quality).
# Resumable: run again.
MINUTES=${MINUTES:-90}
cd /work/main || exit 1
. ~/venv/bin/activate
out=~/ir2i-runs/cyc8-joint3
RESUME=""; [ -f $out/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out $out --init ~/ir2i-runs/cyc8-joint2/best.pt \
  --preset compact --inpaint-kind cycled --inpaint-layers 5 --inpaint-dilations 16,8,4,2,1 \
  --filters-per-dilation 8 --loss mix --batch 256 --lr 5e-5 --steps 0 \
  --max-minutes $MINUTES --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.04 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
