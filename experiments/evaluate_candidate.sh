#!/bin/bash
# A trained candidate for the default model, from its checkpoint to its held-out score:
#
#   experiments/evaluate_candidate.sh RUN NAME FROM RESULTS KEEP OUT
#
#   RUN      the training run's folder under ~/ir2i-runs (best.pt, log.jsonl, config.json)
#   NAME     the new model's name (e.g. ir2i-compact-7)
#   FROM     the shipped model it was trained from (e.g. ir2i-compact-6): its post-filter is
#            the new filter's start, its held-out rows are kept beside the new ones
#   RESULTS  the run's folder in results/training/ (log, config and proxy curve copied there)
#   KEEP     FROM's held-out 0.65x rd_points.csv (JPEG and FROM's points, not measured again)
#   OUT      where the candidate's held-out 0.65x points and BD-rates go
#
# Steps: the proxy curve on the held-out windows; the checkpoint exported with FROM's
# post-filter; its bit tables counted on training photos; FROM's filter fine-tuned 20 min on
# the new model's pictures; the whole held-out photos at 0.65x against JPEG. Resumable: each
# step is skipped when its output exists. Bundle, pairs and filter run: ~/ir2i-runs/{bundles,
# pairs,pf}-RUN.
set -euo pipefail
[ $# -eq 6 ] || { sed -n 2,13p "$0" >&2; exit 2; }
RUN=$1 NAME=$2 FROM=$3 D=$4 KEEP=$5 OUT=$6
cd "$(dirname "$0")/.."
[ -f ~/venv/bin/activate ] && . ~/venv/bin/activate
R=$HOME/ir2i-runs
B=$R/bundles/$RUN
P=$R/pairs-$RUN
F=$R/pf-$RUN
mkdir -p "$D"
cp "$R/$RUN/log.jsonl" "$R/$RUN/config.json" "$D/"
python -m experiments.rate_curve --log "$D/log.jsonl" > "$D/rate_curve.txt"
[ -f "$B/model.json" ] || python -m ir2icodec export "$R/$RUN/best.pt" "$B" \
    --name "$NAME" --postfilter-from "models/$FROM"
grep -qs bit_tables "$B/model.json" || python -m ir2icodec.training.bit_tables --model "$B" \
    --data ../shared/data/train
# (a marker, not the folder: a run stopped half-way leaves the folder behind)
[ -f "$P/done" ] || { rm -rf "$P" && python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model "$B" --out "$P" --limit 300 && touch "$P/done"; }
RESUME=""; [ -f "$F/last.pt" ] && RESUME="--resume"
[ -f "$F/done" ] || python -m ir2icodec.training.train_postfilter --pairs "$P" \
    --out "$F" --init "models/$FROM" --loss mix --minutes 20 \
    --batch 8 --lr 1.5e-4 --threads 2 --val-every 200 --val-photos 40 --bundle "$B" $RESUME
touch "$F/done"
cp "$F/log.jsonl" "$D/postfilter-log.jsonl"
mkdir -p "$(dirname "$OUT")"
[ -f "$OUT/rd_points.csv" ] || python -m ir2icodec.bench.rd \
    --data "$R/heldout065" --codecs ir2i --model "$B" \
    --keep "$KEEP" --keep-as "ir2i=${FROM#ir2i-}" --out "$OUT" --jobs 2
