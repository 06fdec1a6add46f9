#!/bin/bash
# Issue 23: a faster inpainting network for the next default model. "cycled": one convolution
# a layer at one dilation, 16, 8, 4, 2, 1 in turn (nets.InpaintNet; about 5x faster to run in
# onnxruntime than compact-7's four 2-filter convolutions a layer, at the same 32-pixel
# reach), trained alone first with eq. 3 (L2 to the block, --stages 0), two widths side by
# side: 8 and 16 filters. One process of one thread each. Resumable: run again.
cd /work/main || exit 1
. ~/venv/bin/activate
for width in 8 16; do
    out=~/ir2i-runs/cyc$width-alone
    RESUME=""; [ -f $out/last.pt ] && RESUME="--resume"
    OMP_NUM_THREADS=1 nohup python -m ir2icodec.training.train \
        --pack ~/ir2i-runs/train85.npz --out $out --preset compact --stages 0 \
        --inpaint-kind cycled --inpaint-layers 5 --inpaint-dilations 16,8,4,2,1 \
        --filters-per-dilation $width --loss l2 --batch 128 --lr 1e-3 --steps 0 \
        --max-minutes 22 --lr-drops 0.6,0.85 --val-every 100 --threads 1 --precision bf16 \
        --checkpoint-minutes 4 $RESUME > ~/ir2i-runs/cyc$width-alone.out 2>&1 &
done
wait
