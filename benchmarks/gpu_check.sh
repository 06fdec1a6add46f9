#!/usr/bin/env bash
# The CUDA measurements of a lent GPU machine, in one call (issue "Decoding at viewer speed"):
# benchmarks.speed with --device cuda on kodim23 (768x512) and on a 4K picture (kodim23
# upscaled to 3840x2560), and benchmarks.drift (PSNR of CUDA decodes against CPU decodes of
# the same files). Writes OUT/speed-768x512.md, OUT/speed-4k.md, OUT/drift.md, OUT/env.txt.
#
#   usage: benchmarks/gpu_check.sh OUT [DEVICE]      # DEVICE: cuda (default) or cpu
#   on the GPU machine: pip install '.[gpu]' (onnxruntime-gpu, not onnxruntime) first.
# DEVICE=cpu, REPEAT=1, ROUNDS=1, IMAGE (default examples/kodim23.png) and SCALE (the big
# picture's scale of IMAGE, default 5) make the CPU dry run of the tests.
set -euo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT [DEVICE]}
device=${2:-cuda}
repeat=${REPEAT:-3}
rounds=${ROUNDS:-11}
scale=${SCALE:-5}
image=${IMAGE:-examples/kodim23.png}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$out"
{
    "$python" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
} > "$out/env.txt"
big="$out/big-x$scale.png"
"$python" - "$big" "$scale" "$image" <<'PY'
import sys
from PIL import Image
with Image.open(sys.argv[3]) as im:
    s = float(sys.argv[2])
    im.convert("RGB").resize((round(im.width * s), round(im.height * s)), Image.LANCZOS).save(sys.argv[1])
PY
"$python" -m benchmarks.speed --device "$device" --repeat "$repeat" --decode-rounds "$rounds" \
    --image "$image" --out "$out/speed-768x512.md"
"$python" -m benchmarks.speed --device "$device" --repeat "$repeat" --decode-rounds "$rounds" \
    --image "$big" --out "$out/speed-4k.md"
rm -f "$big"
"$python" -m benchmarks.drift --image "$image" > "$out/drift.md"
