#!/bin/bash
# ir2i-psnr-3 (--tune psnr since 2026-12-08) on Kodak (reported only), its uniform twin
# beside, ir2i-psnr-2's rows kept (renamed psnr-2*) with the other codecs' points of that run
# (its "ir2i" rows were compact-7's, the default then).
set -euo pipefail
cd "$(dirname "$0")/../../.."
. ~/venv/bin/activate
python -m ir2icodec.bench.rd --data ../shared/data/kodak --codecs ir2i-psnr,ir2i-psnr-uniform \
    --keep results/kodak/rd-psnr-2/rd_points.csv --keep-as ir2i-psnr=psnr-2 \
    --keep-as ir2i-psnr-uniform=psnr-2-uniform --keep-as ir2i=compact-7 \
    --keep-as ir2i-uniform=compact-7-uniform --out results/kodak/rd-psnr-3 --jobs 2
