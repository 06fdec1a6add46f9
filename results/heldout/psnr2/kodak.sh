#!/bin/bash
# ir2i-psnr-2 (--tune psnr) on Kodak (reported only), its uniform twin beside, ir2i-psnr-1's
# rows kept (renamed psnr-1*) with the other codecs' points from the compact-7 run.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
python -m ir2icodec.bench.rd --data ../shared/data/kodak --codecs ir2i-psnr,ir2i-psnr-uniform \
    --keep results/kodak/rd-compact-7/rd_points.csv --keep-as ir2i-psnr=psnr-1 \
    --keep-as ir2i-psnr-uniform=psnr-1-uniform --out results/kodak/rd-psnr-2 --jobs 2
