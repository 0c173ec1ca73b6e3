#!/usr/bin/env bash
# One-shot checks on a lent GPU machine, run from the repository root:
#
#     OUT=/some/folder bash scripts/gpu-check.sh
#
# Needs python3 with torch (CUDA build), numpy, pyyaml, scikit-learn and pytest;
# Ray, Optuna and plotly are not needed (nothing below imports them) and no
# network is used. Every step runs even if an earlier one failed; each writes
# $OUT/<step>.log and appends its exit status and seconds to $OUT/summary.txt.
# Each step has a time limit, and all steps together stay under $BUDGET seconds
# (default 450), so the whole script ends well within 8 minutes.
set -u -o pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the logs}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-450}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"

# step NAME LIMIT_S COMMAND...: run COMMAND under a time limit, log it, record its status.
step() {
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    local left=$((BUDGET - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 10)); then
        echo "=== $name: skipped, time budget of ${BUDGET}s spent" | tee -a "$OUT/$name.log" "$SUMMARY"
        return
    fi
    echo "=== $name (limit ${limit}s): $*" | tee "$OUT/$name.log"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
    rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start))s" | tee -a "$OUT/$name.log" "$SUMMARY"
}

# (a) the machine, the driver and what torch sees
step a1-nvidia-smi 30 nvidia-smi
step a2-torch 60 "$PY" -c '
import importlib.util, os, sys
import torch
print("python", sys.version.split()[0], "cpus", len(os.sched_getaffinity(0)))
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
print("device", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
print("installed:", {m: importlib.util.find_spec(m) is not None
                     for m in ("numpy", "yaml", "sklearn", "pytest", "optuna", "ray", "plotly")})
'

# (b) the CUDA tests of the torch-only core (its tests import no Optuna, Ray or plotly)
step b-cuda-tests 120 "$PY" -m pytest -p no:cacheprovider -q -k "cuda or gpu" \
    tests/unit/models tests/unit/data tests/unit/training tests/unit/depth

# (c) nas train on the GPU: ResNet-20 on the bundled digits
step c-nas-train 120 "$PY" -m nas.cli train --config search_spaces/resnet20.yaml --device cuda \
    --save "$OUT/resnet20-cuda.pt"

step c2-nas-analyze 60 "$PY" -m nas.cli analyze "$OUT/resnet20-cuda.pt" --device cuda

# (d) nas.training (bf16, channels_last, data on the GPU) against an fp32 DataLoader loop
step d-train-throughput 150 "$PY" benchmarks/train_throughput.py --device cuda

# (e) 1, 2 and 4 concurrent trainings on the one GPU
step e-gpu-packing 240 "$PY" benchmarks/gpu_packing.py --device cuda --images 50000 --epochs 3 \
    --counts 1,2,4

echo "=== all steps done in ${SECONDS}s" | tee -a "$SUMMARY"
