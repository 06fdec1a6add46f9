#!/usr/bin/env bash
# Train a coder for a fixed number of minutes from packed photos, on a GPU when torch sees one
# (bf16 autocast; CPU otherwise), then leave in OUT, each file under 16 MiB for the shipped
# presets:
#   checkpoint.pt   weights of the best held-out checkpoint (no optimizer state; --init takes it)
#   bundle/         the same weights exported as an ONNX model bundle (ir2i encode --model)
#   log.jsonl, config.json, train.out   the run's held-out log, its settings, its output
# OUT/run/ keeps the full checkpoints (last.pt with Adam state) for --resume on the same machine.
#
# usage: experiments/gpu_train.sh PACK OUT MINUTES NAME [train options...]
#   PACK: python -m ir2icodec.training.pack --data ../shared/data/train --out .gpu/train.npz
#   e.g.  experiments/gpu_train.sh .gpu/train.npz /tmp/large 8 ir2i-large --preset large \
#             --loss mix --batch 512 --lr 1e-3 --lr-drops 0.6,0.85
# The LR drops are fractions of MINUTES (the run is time-boxed: --steps 0).
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
pack=$1 out=$2 minutes=$3 name=$4
shift 4
python=${PYTHON:-python3}
mkdir -p "$out"
status=0
"$python" -m ir2icodec.training.train --pack "$pack" --out "$out/run" --steps 0 \
    --max-minutes "$minutes" --checkpoint-minutes 1 "$@" > "$out/train.out" 2>&1 || status=$?
cp "$out/run/config.json" "$out/run/log.jsonl" "$out/" 2>/dev/null || true
if [ ! -f "$out/run/best.pt" ]; then
    echo "gpu_train: no checkpoint was written (training exit $status); see $out/train.out" >&2
    tail -5 "$out/train.out" >&2
    exit 1
fi
"$python" -m ir2icodec.training.checkpoints "$out/run/best.pt" "$out/checkpoint.pt"
"$python" -m ir2icodec.training.export "$out/checkpoint.pt" "$out/bundle" --name "$name"
exit "$status"
