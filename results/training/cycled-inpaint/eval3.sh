#!/bin/bash
# After run-joint3.sh: the candidate successor of ir2i-compact-9 (its third joint cycle) from
# the run's best checkpoint to its held-out score, as eval2.sh did for compact-9. Steps (each
# skipped when its output exists; resumable; STOP_AFTER_FILTER=1 stops before the scoring):
#  1. the run's log, config and proxy curve copied here;
#  2. exported, with compact-9's int8 filter as a stand-in, and its own bit tables;
#  3. 300 training photos decoded by it (the filter's training pairs);
#  4. compact-9's int8 filter fine-tuned on them quantisation-aware at a lower LR than
#     compact-9's (3e-5: 1e-4 dipped first there), its int8 graph written into the bundle;
#  5. python -m benchmarks.twins against compact-9 (every 4th held-out photo at 0.65x, 3 and 8
#     stages; kodim23's decode time), then the held-out photos at 0.65x against JPEG beside
#     compact-9's kept rows.
cd "$(dirname "$0")/../../.." || exit 1
. ~/venv/bin/activate
set -euo pipefail
RUN=cyc8-joint3
NAME=${NAME:-ir2i-compact-10}
R=$HOME/ir2i-runs
B=$R/bundles/$RUN
P=$R/pairs-$RUN
F=$R/pf-$RUN-int8
D=results/training/cycled-inpaint
cp $R/$RUN/log.jsonl $D/joint3-log.jsonl
cp $R/$RUN/config.json $D/joint3-config.json
python -m experiments.rate_curve --log $D/joint3-log.jsonl > $D/joint3-rate_curve.txt
[ -f $B/model.json ] || python -m ir2icodec export $R/$RUN/best.pt $B --name $NAME \
    --postfilter-from models/ir2i-compact-9
grep -qs bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
[ -f $P/done ] || { rm -rf $P && python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model $B --out $P --limit 300 && touch $P/done; }
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs $P --out $F \
    --init models/ir2i-compact-9 --int8 --loss mix --minutes ${FILTER_MINUTES:-20} --batch 8 \
    --lr 3e-5 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/joint3-int8-postfilter-log.jsonl
[ -n "${STOP_AFTER_FILTER:-}" ] && exit 0
[ -f $D/twins-joint3.md ] || python -m benchmarks.twins --data $R/heldout065 --every 4 \
    --bundle compact-9=models/ir2i-compact-9 --bundle joint3=$B --rounds 11 \
    --out $D/twins-joint3.md
O=results/heldout/joint3/065
[ -f $O/rd_points.csv ] || python -m ir2icodec.bench.rd --data $R/heldout065 --codecs ir2i \
    --model $B --keep results/heldout/compact9/065/rd_points.csv --keep-as ir2i=compact-9 \
    --out $O --jobs 2
