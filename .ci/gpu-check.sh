#!/usr/bin/env bash
# GPU check, run on a lent CUDA machine (see README "GPU"), sized to finish in under 5 minutes: the
# CUDA tests, masked vs dense throughput in fp32 / bf16 / bf16+compile, the demo on the GPU and a
# torchrun compress of the demo's parent (1 process, and 2 when the machine has 2 GPUs). Uses the
# machine's own python3 (with torch) and this checkout on PYTHONPATH; results go to $OUT (or
# ./gpu-check-out). Every step has its own timeout, so one slow step never hides the others.
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
timeout 60 "$PY" -m pytest -q -p no:cacheprovider -p no:xdist -m gpu tests/sparse tests/attacks tests/driver/test_precision_compile.py 2>&1 | tail -5 | tee "$OUT/gpu-tests.txt"
echo "== sparse engine: dense vs masked throughput, fp32 and bf16 (cuda)"
timeout 45 "$PY" -m safecompress bench sparse --device cuda --quick --repeats 3 --modes fp32,bf16 --json "$OUT/bench-sparse-cuda.json" --markdown "$OUT/bench-sparse-cuda.md" > "$OUT/bench-sparse-cuda.log" 2>&1; echo "exit $?"
head -12 "$OUT/bench-sparse-cuda.md" 2>/dev/null
echo "== the same under torch.compile (bf16; compilation time reported as warmup_s)"
timeout 100 "$PY" -m safecompress bench sparse --device cuda --quick --repeats 3 --modes bf16+compile --json "$OUT/bench-sparse-compile.json" --markdown "$OUT/bench-sparse-compile.md" > "$OUT/bench-sparse-compile.log" 2>&1; echo "exit $?"
head -9 "$OUT/bench-sparse-compile.md" 2>/dev/null | tail -4
"$PY" -c "import json; print([(r['model'], round(r['warmup_s'], 1)) for r in json.load(open('$OUT/bench-sparse-compile.json'))['throughput']])" 2>&1
echo "== demo on cuda"
/usr/bin/time -v timeout 60 "$PY" -m safecompress demo --device cuda --out "$OUT/demo" -q > "$OUT/demo.log" 2> "$OUT/demo.time"; echo "exit $?"
tail -4 "$OUT/demo.log"
grep -E "Elapsed|Maximum resident" "$OUT/demo.time"
"$PY" -c "import json; r=json.load(open('$OUT/demo/report.json')); print('timings', r['timings']); print('device', r['device'])" 2>&1
GPUS=$(nvidia-smi --list-gpus | wc -l)
for N in 1 2; do
  [ "$N" -le "$GPUS" ] || continue
  echo "== torchrun --nproc-per-node $N compress of the demo's parent (1 attempt)"
  timeout 45 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$N" -m safecompress compress "$OUT/demo/dense_parent.pt" \
    --arch safecompress.models:small_cnn --num-classes 10 --device cuda --attempts 1 --out "$OUT/torchrun-$N" -q > "$OUT/torchrun-$N.log" 2>&1; echo "exit $?"
  "$PY" -c "import json, statistics; r=json.load(open('$OUT/torchrun-$N/report.json')); print('processes', r['processes'], 'timings', r['timings'], 'candidate phase per update', round(statistics.mean(u['candidates_seconds'] for u in r['updates']), 3))" 2>&1
done
rm -rf "$OUT/cache" "$OUT"/demo/checkpoint.pt "$OUT"/torchrun-*/checkpoint.pt
