#!/bin/bash
# Issue 21: export the 8x-budget runs that have finished (run.sh) and measure the paper's
# tables on Kodak (the paper's evaluation set; used for these tables only, nothing is chosen
# on it). Models that have not finished are left out of the tables. Seed 1 runs are named
# NAME-s1. Re-runnable; every step overwrites its own outputs.
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
declare -A DIRS=()
for seed in "" -seed1; do
    for name in residual prediction full decoding sep-inp ir2i ir2i-wide; do
        run=$R/8x$seed/$name
        label=$name${seed:+-s1}
        if finished "$run"; then
            python -m ir2icodec.training.export "$run/best.pt" "$B/$label" --name "$label" >/dev/null
            DIRS[$label]=$B/$label
        fi
    done
done
# logs and budgets of every run so far (finished or not)
for seed in "" -seed1; do
    for run in "$R"/8x$seed/*/; do
        name=$(basename "$run")${seed:+-s1}
        mkdir -p "$OUT/runs/$name"
        cp "$run"/log.jsonl "$run"/config.json "$OUT/runs/$name/" 2>/dev/null
    done
done
python -m experiments.budgets "$R"/8x/*/ "$R"/8x-seed1/*/ --out "$OUT/budgets.md"

bundles() { local a=(); for n in "$@"; do [[ -n ${DIRS[$n]:-} ]] && a+=(--bundle "$n=${DIRS[$n]}"); done; echo "${a[@]}"; }
FIG3=$(bundles residual prediction full decoding residual-s1 decoding-s1)
if [[ -n ${DIRS[residual]:-} ]]; then
    python -m experiments.rd_variants --data "$KODAK" --out "$OUT/rd_variants_fig3a" \
        --anchor residual $FIG3 --paper-table fig3a --jobs 2
fi
if [[ -n ${DIRS[residual-s1]:-} ]]; then  # the same points against the other seed's anchor
    mkdir -p "$OUT/rd_variants_fig3a_s1"
    cp "$OUT/rd_variants_fig3a/rd_points.csv" "$OUT/rd_variants_fig3a_s1/"
    python -m experiments.rd_variants --out "$OUT/rd_variants_fig3a_s1" --anchor residual-s1 \
        --paper-table fig3a --report-only
fi
FIG5=$(bundles residual decoding sep-inp ir2i ir2i-wide sep-inp-s1 ir2i-s1)
if [[ -n ${DIRS[ir2i]:-} || -n ${DIRS[sep-inp]:-} ]]; then
    python -m experiments.rd_variants --data "$KODAK" --out "$OUT/rd_variants_fig5a" \
        --anchor residual $FIG5 --paper-table fig5a --jobs 2
fi
# both budgets: decoding-zero is the 80k-window R2I-decoding run (link-init, the short tables'
# settings)
python -m experiments.learning_curves "$OUT"/runs/*/ results/reproduction/link-init/decoding-zero \
    --out docs/8x-curves.png --csv "$OUT/learning_curves.csv"
