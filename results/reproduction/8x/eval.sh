#!/bin/bash
# Issue 21: export the 8x-budget runs that have finished (run.sh) and measure the paper's
# tables on Kodak (the paper's evaluation set; used for these tables only, nothing is chosen
# on it). Each finished model is measured once (points/NAME/rd_points.csv, kept: delete it
# to measure again); the tables are then built from those points at the paper's rate (raw
# code bits, no entropy coding) and, beside, at the files' entropy-coded rate. Models that
# have not finished are left out. Seed 1 runs are named NAME-s1. Re-runnable.
cd /work/main || exit 1
. ~/venv/bin/activate
R=$HOME/ir2i-runs
B=$R/8x-bundles
OUT=results/reproduction/8x
KODAK=${KODAK:-../shared/data/kodak}
mkdir -p "$B"
finished() {  # finished RUN_DIR: its log reached step 2500
    [[ -f $1/log.jsonl ]] && grep -q '"step": 2500,' "$1/log.jsonl"
}
declare -A DONE=()
for seed in "" -seed1; do
    for name in residual prediction full decoding sep-inp ir2i ir2i-wide; do
        run=$R/8x$seed/$name
        label=$name${seed:+-s1}
        points=$OUT/points/$label
        # a model measured once stays in the tables when its run is gone (a lost home
        # directory took the seed-0 checkpoints on 2026-12-07; their points are kept here)
        if [[ -f $points/rd_points.csv ]]; then DONE[$label]=1; continue; fi
        finished "$run" || continue
        DONE[$label]=1
        python -m ir2icodec.training.export "$run/best.pt" "$B/$label" --name "$label" >/dev/null
        python -m experiments.rd_variants --data "$KODAK" --out "$points" --anchor "$label" \
            --bundle "$label=$B/$label" --jobs 2
    done
done
# logs and budgets of every run so far (finished or not)
for seed in "" -seed1; do
    for run in "$R"/8x$seed/*/; do
        [[ -f $run/log.jsonl ]] || continue
        name=$(basename "$run")${seed:+-s1}
        kept=$OUT/logs/$name/log.jsonl
        # a run trained again after its checkpoints were lost replaces its kept log only
        # once it has come as far
        if [[ -f $kept ]] && (($(wc -l < "$run/log.jsonl") < $(wc -l < "$kept"))); then
            continue
        fi
        mkdir -p "$OUT/logs/$name"
        cp "$run"/log.jsonl "$run"/config.json "$OUT/logs/$name/" 2>/dev/null
    done
done
python -m experiments.budgets "$OUT"/logs/*/ --out "$OUT/budgets.md"

table() {  # table OUT_DIR ANCHOR PAPER_TABLE NAME...: the tables of those finished models
    local dir=$1 anchor=$2 paper=$3 name
    shift 3
    [[ -n ${DONE[$anchor]:-} ]] || return 0
    mkdir -p "$dir" "$dir-file"
    head -1 "$OUT/points/$anchor/rd_points.csv" > "$dir/rd_points.csv"
    for name in "$@"; do
        [[ -n ${DONE[$name]:-} ]] && tail -n +2 "$OUT/points/$name/rd_points.csv" >> "$dir/rd_points.csv"
    done
    cp "$dir/rd_points.csv" "$dir-file/"
    python -m experiments.rd_variants --out "$dir" --anchor "$anchor" --paper-table "$paper" \
        --report-only --data "$KODAK"
    python -m experiments.rd_variants --out "$dir-file" --anchor "$anchor" --paper-table "$paper" \
        --report-only --rate file
}
table "$OUT/rd_variants_fig3a" residual fig3a residual prediction full decoding residual-s1 decoding-s1
# the same points against the other seed's residual encoder
table "$OUT/rd_variants_fig3a_s1" residual-s1 fig3a residual-s1 decoding-s1 residual decoding
table "$OUT/rd_variants_fig5a" residual fig5a residual decoding sep-inp ir2i ir2i-wide sep-inp-s1 ir2i-s1

# Table 2: the same models against JPEG (measured again beside them), at the paper's rate
if [[ -f $OUT/rd_variants_fig5a/rd_points.csv ]]; then
    python -m experiments.rd_variants --out "$OUT/rd_variants_fig5a" --anchor residual \
        --paper-table fig5a --report-only --data "$KODAK" \
        --points-at-rate "$OUT/table2/variants_raw.csv"
    python -m ir2icodec.bench.rd --data "$KODAK" --out "$OUT/table2" --codecs jpeg \
        --keep "$OUT/table2/variants_raw.csv"
fi

# both budgets: the 80 k-window runs of results/reproduction/80k-curves/run.sh when they are
# there, else decoding-zero (the 80 k-window R2I-decoding run of link-init)
SHORT=(results/reproduction/80k-curves/logs/*/)
[[ -d ${SHORT[0]} ]] || SHORT=(results/reproduction/link-init/decoding-zero)
python -m experiments.learning_curves "$OUT"/logs/*/ "${SHORT[@]}" \
    --out docs/8x-curves.png --csv "$OUT/learning_curves.csv"
