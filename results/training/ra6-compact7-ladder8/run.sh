#!/bin/bash
# Issue 20: the operating-point ladder doubled once more (0.08 x 9 - j for stage j), from the
# shipped ir2i-compact-7 (ra5b, 0.04 x 9 - j; its bit-model twin starts fresh, as before), 60
# minutes: each doubling so far bought more (compact-5 -> 6 -> 7); this finds where it turns.
# NOT RUN, and not to be run as is: each doubling also lowered the top of the curve (Kodak,
# all 8 stages: 0.46 bpp / 29.6 dB for compact-6, 0.29 / 28.2 for compact-7), which flatters
# BD-rates against JPEG (docs/rate-aware.md, "Where the curves end"); judge any rerun against
# compact-7 directly and by the top of its curve.
# Resumable: run again.
cd /work/main
. ~/venv/bin/activate
RESUME=""; [ -f ~/ir2i-runs/ra6/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out ~/ir2i-runs/ra6 --init models/ir2i-compact-7 \
  --preset compact --inpaint-layers 4 --loss mix --batch 256 --lr 1e-4 --steps 0 \
  --max-minutes 60 --lr-drops 0.7,0.9 --val-every 100 --threads 1 --precision bf16 \
  --compile-loss --rate-weight 0.08 --rate-stage-scales 8,7,6,5,4,3,2,1 \
  --checkpoint-minutes 4 $RESUME
