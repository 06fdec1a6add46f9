#!/bin/bash
# After run.sh: the proxy curve on the held-out windows; the chosen checkpoint exported with
# ir2i-compact-6's post-filter, its bit tables counted on training photos, that filter
# fine-tuned 20 min on the new model's pictures (as pf-compact5/run.sh did for compact-5),
# then the whole held-out photos at 0.65x against JPEG, beside compact-6's kept rows.
# Resumable: each step is skipped when its output exists.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
D=results/training/ra5b-compact6-ladder4
B=$HOME/ir2i-runs/bundles/ra5b
P=$HOME/ir2i-runs/pairs-ra5b
F=$HOME/ir2i-runs/pf-ra5b
cp ~/ir2i-runs/ra5b/log.jsonl ~/ir2i-runs/ra5b/config.json $D/
python -m experiments.rate_curve --log $D/log.jsonl > $D/rate_curve.txt
[ -f $B/model.json ] || python -m ir2icodec export ~/ir2i-runs/ra5b/best.pt $B \
    --name ir2i-compact-7 --postfilter-from models/ir2i-compact-6
grep -q bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
# (a marker, not the folder: a run stopped half-way leaves the folder behind)
[ -f $P/done ] || { rm -rf $P && python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model $B --out $P --limit 300 && touch $P/done; }
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs $P \
    --out $F --init models/ir2i-compact-6 --loss mix --minutes 20 \
    --batch 8 --lr 1.5e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/postfilter-log.jsonl
mkdir -p results/heldout/ra5b
[ -f results/heldout/ra5b/compact7-065/rd_points.csv ] || python -m ir2icodec.bench.rd \
    --data ~/ir2i-runs/heldout065 --codecs ir2i --model $B \
    --keep results/heldout/ra4/compact6-065/rd_points.csv --keep-as ir2i=compact-6 \
    --out results/heldout/ra5b/compact7-065 --jobs 2
