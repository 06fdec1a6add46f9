#!/bin/bash
# After run-joint2.sh: the candidate ir2i-compact-9 (compact-8 trained on jointly for longer,
# with an int8 post-filter) from the run's best checkpoint to its held-out score. Steps (each
# skipped when its output exists; resumable):
#  1. the run's log, config and proxy curve copied here;
#  2. exported, with compact-8's float filter as a stand-in, and its own bit tables;
#  3. 300 training photos decoded by it (the filter's training pairs);
#  4. compact-8's filter fine-tuned on them quantisation-aware (--int8: trained as its int8
#     graph runs it; 2 threads, 20 minutes), its int8 graph written into the bundle;
#  5. a twin bundle with the same fine-tuned weights as a float graph (what int8 costs);
#  6. python -m benchmarks.twins against compact-7 and compact-8 (every 4th held-out photo at
#     0.65x, 3 and 8 stages; kodim23's decode time), then the held-out photos at 0.65x
#     against JPEG beside compact-7's kept rows.
cd "$(dirname "$0")/../../.." || exit 1
. ~/venv/bin/activate
set -euo pipefail
RUN=cyc8-joint2
R=$HOME/ir2i-runs
B=$R/bundles/$RUN
BF=$R/bundles/$RUN-float-filter
P=$R/pairs-$RUN
F=$R/pf-$RUN-int8
D=results/training/cycled-inpaint
cp $R/$RUN/log.jsonl $D/joint2-log.jsonl
cp $R/$RUN/config.json $D/joint2-config.json
python -m experiments.rate_curve --log $D/joint2-log.jsonl > $D/joint2-rate_curve.txt
[ -f $B/model.json ] || python -m ir2icodec export $R/$RUN/best.pt $B --name ir2i-compact-9 \
    --postfilter-from models/ir2i-compact-8
grep -qs bit_tables $B/model.json || python -m ir2icodec.training.bit_tables --model $B \
    --data ../shared/data/train
[ -f $P/done ] || { rm -rf $P && python -m ir2icodec.training.postfilter_pairs \
    --data ../shared/data/train --model $B --out $P --limit 300 && touch $P/done; }
RESUME=""; [ -f $F/last.pt ] && RESUME="--resume"
[ -f $F/done ] || python -m ir2icodec.training.train_postfilter --pairs $P --out $F \
    --init models/ir2i-compact-8 --int8 --loss mix --minutes ${FILTER_MINUTES:-20} --batch 8 \
    --lr 1e-4 --threads 2 --val-every 200 --val-photos 40 --bundle $B $RESUME
touch $F/done
cp $F/log.jsonl $D/int8-postfilter-log.jsonl
[ -f $BF/model.json ] || { rm -rf $BF && cp -r $B $BF && python -c "
import sys
from ir2icodec.training.export import export_postfilter
from ir2icodec.training.train_postfilter import load_postfilter
net, ckpt = load_postfilter(sys.argv[1])
export_postfilter(net, sys.argv[2], {'step': ckpt['step'], 'note': 'int8-trained weights, float graph'})
" $F/best.pt $BF; }
[ -f $D/twins-compact9.md ] || python -m benchmarks.twins --data $R/heldout065 --every 4 \
    --bundle compact-7=models/ir2i-compact-7 --bundle compact-8=models/ir2i-compact-8 \
    --bundle compact-9-float-filter=$BF --bundle compact-9=$B --rounds 11 \
    --out $D/twins-compact9.md
O=results/heldout/compact9/065
[ -f $O/rd_points.csv ] || python -m ir2icodec.bench.rd --data $R/heldout065 --codecs ir2i \
    --model $B --keep results/heldout/ra5b/compact7-065/rd_points.csv --keep-as ir2i=compact-7 \
    --out $O --jobs 2
