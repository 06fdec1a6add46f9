#!/bin/bash
# Issue 21: what run.sh still had to train when the home directory was lost (2026-12-07):
# the seed-0 runs and seed 1's residual, decoding and inpaint-only had finished and been
# measured (their logs in logs/, their Kodak points in points/), but their checkpoints went
# with ~/ir2i-runs. Seed 1's joint model first (the disputed Fig. 5a pair's second seed),
# then seed 1's Sep-Inp (its inpainting network trained again first: Sep-Inp needs its
# checkpoint), then Table 1's vanilla network. Same settings as run.sh.
# Resumable: re-run this script (finished runs are skipped in seconds).
cd /work/main || exit 1
. ~/venv/bin/activate
export OMP_NUM_THREADS=1 STEPS=2500 BATCH=128
export LAUNCH="torchrun --standalone --nproc_per_node 2"
export TRAIN_ARGS="--pack $HOME/ir2i-runs/train85.npz --threads 1 --precision bf16 --lr 1e-3 --val-every 250 --checkpoint-minutes 4"
set -e
SEED=1 RUNS=$HOME/ir2i-runs/8x-seed1 bash experiments/train_variants.sh train ir2i
SEED=1 RUNS=$HOME/ir2i-runs/8x-seed1 bash experiments/train_variants.sh train inpaint-only sep-inp
RUNS=$HOME/ir2i-runs/8x bash experiments/train_variants.sh train inpaint-vanilla
# The wide pair (24 filters per dilation, ~150x the inpainting network's work) would take
# days at 640 k windows on these 2 cores: it is for a GPU (experiments/gpu_variants.py).
