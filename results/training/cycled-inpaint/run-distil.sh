#!/bin/bash
# Step 1b (after run-alone.sh): the 8-filter cycled network, as trained alone, taught to
# predict what compact-7's own inpainting network predicts (--inpaint-teacher, --stages 0):
# compact-7's stages were trained on that network's predictions, so the joint run starts
# near compact-7 instead of re-learning them. (Started from the network trained alone, the
# joint run began 0.37 above compact-7's held-out objective and closed a third of that in
# 25 minutes: joint-nodistil/.) Two one-thread processes, 12 minutes. Resumable.
cd /work/main || exit 1
. ~/venv/bin/activate
out=~/ir2i-runs/cyc8-distil
RESUME=""; [ -f $out/last.pt ] && RESUME="--resume"
OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m ir2icodec.training.train \
  --pack ~/ir2i-runs/train85.npz --out $out --preset compact --stages 0 \
  --inpaint-kind cycled --inpaint-layers 5 --inpaint-dilations 16,8,4,2,1 \
  --filters-per-dilation 8 --inpaint-teacher models/ir2i-compact-7 \
  --init-inpaint ~/ir2i-runs/cyc8-alone/best.pt --loss l2 --batch 128 --lr 1e-3 --steps 0 \
  --max-minutes 12 --lr-drops 0.6,0.85 --val-every 200 --threads 1 --precision bf16 \
  --checkpoint-minutes 4 $RESUME
