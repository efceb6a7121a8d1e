#!/usr/bin/env bash
# The 35M protein model on one GPU, as one bounded run of about MINUTES + 5 minutes (a lent GPU
# gives 15 minutes of device time, the machine's start included):
#   1. the input pipeline alone, one thread: real tokens/s of training batches (bench_speed loader);
#   2. training steps of the 35M shape (ESM-2 t12: 12 x 480, 20 heads), bf16 autocast, compiled and
#      eager: tokens/s, model FLOPs utilisation against the measured bf16 matmul peak, an operator
#      profile; the compiled step rate sizes step 3;
#   3. pipelines/configs/protein_35m_gpu.yaml trained for MINUTES (compile included), then its best
#      EMA weights evaluated on the CATH S40 test split (NELBO, perplexity, 2 Monte-Carlo passes).
# Data: the shard folders of pipelines/prepare_protein_mix.py in MIX (default runs/protein-mix),
# prepared beforehand and carried to the GPU machine (pyhmmer is not there); without them, CATH
# S40 train / valid FASTA. Every stage has a time limit and a failed stage does not stop the
# later ones. OUT receives at most 6 files: speed_gpu.json, eval_35m.json, metrics_35m.csv,
# bundle_config_35m.json, session.json (what ran, on what data) and logs.tar.gz (every stage's log).
#
# Usage: pipelines/gpu_session.sh OUT [MINUTES]   (MINUTES of training, default 4.5)
#        DEVICE=cpu PYTHON=.venv/bin/python TOKENS=1024 SECONDS_PER_VARIANT=2 LOADER_SECONDS=1 VARIANTS=bf16 \
#            EXTRA="data.max_tokens=1024 model.dim=32 model.n_layers=1 model.n_heads=2 trainer.compile=false" \
#            pipelines/gpu_session.sh /tmp/out 0.3    # a dry run on a CPU
set -u
OUT=${1:?usage: pipelines/gpu_session.sh OUT [MINUTES]}
MINUTES=${2:-4.5}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TOKENS=${TOKENS:-65536}  # the 35M config's data.max_tokens, so the measured step rate applies to it
SECONDS_PER_VARIANT=${SECONDS_PER_VARIANT:-12}
LOADER_SECONDS=${LOADER_SECONDS:-10}
VARIANTS=${VARIANTS:-bf16_compiled bf16}  # bench_speed training variants, the first sizes the training
MIX=${MIX:-runs/protein-mix}
CONFIG=pipelines/configs/protein_35m_gpu.yaml
RUN=runs/protein-35m-gpu
CATH=../shared/data/protein/general
# EXTRA: more config overrides for the training, e.g. a small model for a dry run on a CPU
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

if [ -f "$MIX/train/meta.json" ] && [ -f "$MIX/valid/meta.json" ]; then
    TRAIN=$MIX/train VALID=$MIX/valid
else
    echo "== no prepared mix in $MIX: training on CATH S40 train (FASTA)"
    TRAIN=$CATH/cath_v4_1_0_S40.train.fasta VALID=$CATH/cath_v4_1_0_S40.valid.fasta
fi

bench() {  # bench NAME LIMIT ARGS...: one bench_speed run whose sections merge into OUT/speed_gpu.json
    local name=$1 limit=$2
    shift 2
    stage "$name" "$limit" $PY pipelines/bench_speed.py --device "$DEVICE" --out "$OUT/speed_gpu.json" \
        --train-tokens "$TOKENS" --threads "$(nproc)" "$@"
}

bench bench_loader 60 --sections loader --seconds "$LOADER_SECONDS" --loader-source "$TRAIN"
# Compiled first: its rate sizes the training. Its limit leaves room for compilation.
read -r -a VARIANT_LIST <<<"$VARIANTS"
bench bench_training 240 --sections training --shape t12 --variants "${VARIANT_LIST[@]}" \
    --seconds "$SECONDS_PER_VARIANT" --profile

# A solo run (nothing beside it): the training step rate is near the benchmark's, less validation,
# logging and the compile at the start, which max_minutes absorbs; 0.8 of it fills the minutes.
STEPS=$($PY - "$OUT/speed_gpu.json" "$MINUTES" "${VARIANT_LIST[0]}" <<'EOF'
import json, sys
from pathlib import Path
report, minutes, variant = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
runs = json.loads(report.read_text()) if report.exists() else {}
rate = runs.get(f"training_width480_{variant}", {}).get("steps_per_s", 0.0)
print(min(20000, max(300, int(0.8 * rate * minutes * 60))))
EOF
)
echo "== training the 35M model for $STEPS steps (at most $MINUTES minutes) on $TRAIN"
SET=(--set "data.train=$TRAIN" --set "data.valid=$VALID" --set "trainer.max_steps=$STEPS"
    --set "optim.total_steps=$STEPS" --set "trainer.max_minutes=$MINUTES" --set trainer.progress_bar=false
    --set "out=$RUN")
for item in "${EXTRA[@]}"; do SET+=(--set "$item"); done
TRAIN_LIMIT=$($PY -c "print(int(float('$MINUTES') * 60 + 120))")
stage train_35m "$TRAIN_LIMIT" $PY -m seqdiff.cli train --config "$CONFIG" "${SET[@]}"
stage eval_35m 120 sh -c '"$0" -m seqdiff.cli eval "$1" --checkpoint "$2" --passes 2 --device "$3" >"$4"' \
    "$PY" "$CATH/cath_v4_1_0_S40.test.fasta" "$RUN/model" "$DEVICE" "$OUT/eval_35m.json"

cp "$RUN/model/config.json" "$OUT/bundle_config_35m.json" 2>/dev/null
cp "$RUN/logs/version_0/metrics.csv" "$OUT/metrics_35m.csv" 2>/dev/null
$PY - "$OUT/session.json" "$TRAIN" "$VALID" "$STEPS" "$MINUTES" "$DEVICE" <<'EOF'
import json, sys
out, train, valid, steps, minutes, device = sys.argv[1:]
record = {"train": train, "valid": valid, "steps": int(steps), "minutes": float(minutes), "device": device}
open(out, "w").write(json.dumps(record, indent=1))
EOF
tar -C "$WORK" -czf "$OUT/logs.tar.gz" .
rm -rf "$WORK"
echo "== $(date +%T) done"
ls -la "$OUT"
