#!/bin/bash
# Issue "viewer speed": a cheaper post-filter for ir2i-compact-7's pictures. The 64-channel
# filter is 0.36 of the 1.1-1.4 CPU seconds of an 8-stage 768x512 decode; a 48-channel one
# of the same depth runs a 256x768 band in 102 ms against 170 (one thread). compact-7's
# filter cut to its 48 most used channels per layer (train_postfilter --shrink), fine-tuned
# 30 minutes on compact-7's decoded training photos (ra5b's pairs, made by
# experiments/evaluate_candidate.sh) with compact-7's loss, chosen on the same 40 held-out
# photos; then the held-out photos at 0.65x beside compact-7's rows (the same files: only
# the filter differs). Resumable: each step is skipped when its output exists.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
R=$HOME/ir2i-runs
B=$R/bundles/shrink48
F=$R/pf-shrink48
D=results/training/pf-shrink48
OUT=results/heldout/shrink48
[ -f $B/model.json ] || python -m ir2icodec export $R/ra5b/best.pt $B \
    --name ir2i-compact-8 --postfilter-from models/ir2i-compact-7
# the same networks as compact-7, so the same codes: its bit tables (file and manifest entry;
# outside the bundle digest) instead of counting them again
grep -qs bit_tables $B/model.json || python - $B <<'PY'
import json, shutil, sys
src, dst = "models/ir2i-compact-7", sys.argv[1]
entry = json.load(open(f"{src}/model.json"))["bit_tables"]
shutil.copy(f"{src}/{entry['file']}", dst)
manifest = json.load(open(f"{dst}/model.json"))
manifest["bit_tables"] = entry
json.dump(manifest, open(f"{dst}/model.json", "w"), indent=2)
PY
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs $R/pairs-ra5b \
    --out $F --init models/ir2i-compact-7 --shrink --width 48 --loss mix --minutes 30 \
    --batch 8 --lr 3e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/log.jsonl
[ -f $OUT/065/rd_points.csv ] || python -m ir2icodec.bench.rd \
    --data $R/heldout065 --codecs ir2i --model $B \
    --keep results/heldout/ra5b/compact7-065/rd_points.csv --keep-as ir2i=compact-7 \
    --out $OUT/065 --jobs 2
