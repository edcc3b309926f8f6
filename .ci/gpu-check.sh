#!/usr/bin/env bash
# GPU check, run on a lent CUDA machine (see README "GPU"): the CUDA tests, the sparse-engine
# benchmark and the demo on the GPU. Uses the machine's own python3 (with torch) and this checkout
# on PYTHONPATH; results go to $OUT (or ./gpu-check-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD=1
export SAFECOMPRESS_CACHE_DIR="$OUT/cache"
PY="${PYTHON:-python3}"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0)); print('transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/env.txt"
echo "== CUDA tests"
timeout 180 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/sparse tests/attacks 2>&1 | tail -5 | tee "$OUT/gpu-tests.txt"
echo "== sparse engine benchmark (cuda)"
timeout 150 "$PY" -m safecompress bench sparse --device cuda --quick --repeats 5 --json "$OUT/bench-sparse-cuda.json" --markdown "$OUT/bench-sparse-cuda.md" > "$OUT/bench-sparse-cuda.log" 2>&1; echo "exit $?"
cat "$OUT/bench-sparse-cuda.md" 2>/dev/null | head -30
echo "== demo on cuda"
/usr/bin/time -v timeout 240 "$PY" -m safecompress demo --device cuda --out "$OUT/demo" -q > "$OUT/demo.log" 2> "$OUT/demo.time"; echo "exit $?"
tail -8 "$OUT/demo.log"
grep -E "Elapsed|Maximum resident" "$OUT/demo.time"
"$PY" -c "import json; r=json.load(open('$OUT/demo/report.json')); print('timings', r['timings']); print('device', r['device'])" 2>&1
rm -rf "$OUT/cache" "$OUT/demo/checkpoint.pt"
