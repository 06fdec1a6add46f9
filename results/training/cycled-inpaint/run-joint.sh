#!/bin/bash
# Issue 23, step 2: ir2i-compact-7 with the cycled inpainting network (WIDTH 8) trained alone
# and then taught compact-7's network's predictions (run-alone.sh, run-distil.sh) in its place,
# all of it trained on jointly with compact-7's last recipe (ra5b: the mix loss + 0.04 x the
# rate ladder 8..1, LR 1e-4 then 1e-5 from 70% and 1e-6 from 90% of the time).
# Resumable: run again.
WIDTH=${WIDTH:-8}
MINUTES=${MINUTES:-40}
cd /work/main || exit 1
. ~/venv/bin/activate
out=~/ir2i-runs/cyc$WIDTH-joint
RESUME=""; [ -f $out/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out $out --init models/ir2i-compact-7 \
  --init-inpaint ~/ir2i-runs/cyc$WIDTH-distil/last.pt \
  --preset compact --inpaint-kind cycled --inpaint-layers 5 --inpaint-dilations 16,8,4,2,1 \
  --filters-per-dilation $WIDTH --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes $MINUTES --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.04 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
