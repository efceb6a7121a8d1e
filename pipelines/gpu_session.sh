#!/usr/bin/env bash
# Everything seqdiff measures and trains on a GPU, as one bounded run (a lent H200 gives 15 minutes):
#   1. training throughput, bf16 autocast and fp32, eager: tokens/s, model FLOPs utilisation and a
#      profile of the operators; the bf16 step rate sizes step 2;
#   2. the larger default MD4 model (pipelines/configs/protein_default_gpu.yaml) and its same-shape
#      autoregressive baseline (protein_ar_gpu.yaml), trained side by side for the same steps, then
#      both evaluated on the CATH S40 test split;
#   3. sampling on the GPU: 16 designs of length 256, MD4 (with and without MDLM's cache) against the
#      autoregressive model with a KV cache, each judged by the other model.
# Every stage has a time limit and a failed stage does not stop the later ones, so the whole run ends
# in about MINUTES + 3 minutes. Reports and logs go to OUT; models and training logs are packed
# into OUT/session.tar.part-* (pieces of at most 15 MiB): `cat OUT/session.tar.part-* | tar -x`.
#
# Usage: pipelines/gpu_session.sh OUT [MINUTES]   (MINUTES of training, default 5)
#        DEVICE=cpu PYTHON=.venv/bin/python TOKENS=1024 SECONDS_PER_VARIANT=2 \
#            EXTRA="data.max_tokens=1024 model.dim=32 model.n_layers=1 model.n_heads=2 data.num_workers=0" \
#            pipelines/gpu_session.sh /tmp/out 0.3    # a dry run on a CPU (in a copy: it replaces the default model)
set -u
OUT=${1:?usage: pipelines/gpu_session.sh OUT [MINUTES]}
MINUTES=${2:-5}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TOKENS=${TOKENS:-131072}  # the training configs' data.max_tokens, so the measured step rate applies to them
SECONDS_PER_VARIANT=${SECONDS_PER_VARIANT:-12}
# EXTRA: more config overrides for both trainings, e.g. a small model for a dry run on a CPU
read -r -a EXTRA <<<"${EXTRA:-}"
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)  # absolute: the script changes directory
WORK="$OUT/work"
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's seqdiff, not an installed one

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log to WORK/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $(date +%T) $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$WORK/$name.log" 2>&1
    local rc=$?
    echo "== $(date +%T) $name exit $rc$([ $rc = 124 ] && echo ' (time limit)')"
    tail -n 4 "$WORK/$name.log"
}

echo "== $(date +%T) start: $MINUTES minutes of training on $DEVICE"
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"

bench() {  # bench LIMIT ARGS...: one bench_speed run whose sections merge into OUT/speed_gpu.json
    local name=$1 limit=$2
    shift 2
    stage "$name" "$limit" $PY pipelines/bench_speed.py --device "$DEVICE" --out "$OUT/speed_gpu.json" \
        --train-tokens "$TOKENS" --seconds "$SECONDS_PER_VARIANT" --threads "$(nproc)" "$@"
}

bench bench_training 75 --sections training --variants bf16 fp32 --profile

# The same number of steps for both models. On an H200 (2026-11-30) each of the two side-by-side
# Lightning runs made 5.2 steps/s of 131k tokens, where the profiled step took 69 ms of GPU time
# (14.5/s solo): 0.35 of the solo rate. max_minutes stops a slower run mid-schedule.
STEPS=$($PY - "$OUT/speed_gpu.json" "$MINUTES" <<'EOF'
import json, sys
from pathlib import Path
report = Path(sys.argv[1])
rate = json.loads(report.read_text()).get("training_width320_bf16", {}).get("steps_per_s", 0.0) if report.exists() else 0.0
print(min(6000, max(500, int(0.35 * rate * float(sys.argv[2]) * 60))))
EOF
)
echo "== training both models for $STEPS steps (at most $MINUTES minutes each)"
SET=(--set "trainer.max_steps=$STEPS" --set "optim.total_steps=$STEPS" --set "trainer.max_minutes=$MINUTES"
    --set trainer.progress_bar=false)
for item in "${EXTRA[@]}"; do SET+=(--set "$item"); done
TRAIN_LIMIT=$($PY -c "print(int(float('$MINUTES') * 60 + 90))")
stage train_md4 "$TRAIN_LIMIT" $PY pipelines/train_protein_default.py \
    --config pipelines/configs/protein_default_gpu.yaml "${SET[@]}" &
stage train_ar "$TRAIN_LIMIT" sh -c '"$0" -m seqdiff.cli train "$@" &&
    "$0" -m seqdiff.cli eval ../shared/data/protein/general/cath_v4_1_0_S40.test.fasta \
        --checkpoint runs/protein-ar-gpu/model --passes 1' \
    $PY --config pipelines/configs/protein_ar_gpu.yaml "${SET[@]}" &
wait

AR=runs/protein-ar-gpu/model
[ -f $AR/config.json ] || AR=""
bench sampling 75 --sections sampling --md4 seqdiff/models/protein-default ${AR:+--ar $AR}

mkdir -p "$WORK/md4" "$WORK/ar"
cp seqdiff/models/protein-default/* "$WORK/md4/"
cp runs/protein-default-gpu/logs/version_0/metrics.csv "$WORK/md4/metrics.csv" 2>/dev/null
[ -n "$AR" ] && cp $AR/* "$WORK/ar/"
cp runs/protein-ar-gpu/logs/version_0/metrics.csv "$WORK/ar/metrics.csv" 2>/dev/null
tar -C "$OUT" -cf - work | split -b 15M - "$OUT/session.tar.part-"
rm -rf "$WORK"
echo "== $(date +%T) done"
ls -la "$OUT"
