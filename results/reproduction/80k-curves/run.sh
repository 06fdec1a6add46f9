#!/bin/bash
# Issue 21, item 4: the learning curves at the short budget beside the 640 k runs. The 80 k
# tables' own run folders were not kept (only R2I-decoding's, link-init/decoding-zero), so the
# eight models train again at 80 k windows (2,500 steps of 2 x 16, the LR dropping at 60/85%
# of them as in the tables) with the 8x runs' fast layout and packed photos, validating every
# 250 steps (8 k windows). Their logs go to results/reproduction/80k-curves/logs/ and the
# figure docs/8x-curves.png draws both budgets. The disputed pairs' models first (residual vs
# R2I-decoding, Sep-Inp vs IR2I), then the rest. Resumable: re-run it.
cd /work/main || exit 1
. ~/venv/bin/activate
export OMP_NUM_THREADS=1 STEPS=2500 BATCH=16
export LAUNCH="torchrun --standalone --nproc_per_node 2"
export TRAIN_ARGS="--pack $HOME/ir2i-runs/train85.npz --threads 1 --precision bf16 --lr 1e-3 --val-every 250 --checkpoint-minutes 4"
R=$HOME/ir2i-runs/80k
OUT=results/reproduction/80k-curves
set -e
# `run.sh figure`: only the logs of the runs finished so far and the figure, no training
[[ ${1:-} == figure ]] || RUNS=$R bash experiments/train_variants.sh train residual decoding \
    inpaint-only sep-inp ir2i inpaint-vanilla prediction full
for run in "$R"/*/; do
    grep -qs '"step": 2500,' "$run/log.jsonl" || continue
    name=$(basename "$run")
    mkdir -p "$OUT/logs/$name"
    cp "$run"/log.jsonl "$run"/config.json "$OUT/logs/$name/"
done
python -m experiments.budgets "$OUT"/logs/*/ --out "$OUT/budgets.md"
python -m experiments.learning_curves results/reproduction/8x/logs/*/ "$OUT"/logs/*/ \
    --out docs/8x-curves.png --csv results/reproduction/8x/learning_curves.csv
