#!/usr/bin/env bash
# One-shot checks on a lent GPU machine, run from the repository root:
#
#     OUT=/some/folder bash scripts/gpu-check.sh
#
# Needs python3 with torch (CUDA build), numpy, pyyaml, scikit-learn and pytest.
# Ray, Optuna, plotly and the rest of what `nas search` needs come as wheels from
# .whl (scripts/gpu-wheelhouse.sh builds it here; run with `carry: [".whl"]`), installed
# into /tmp/site; without that folder the search step is skipped. No network is used.
# Every step runs even if an earlier one failed; each writes $OUT/<step>.log and
# appends its exit status and seconds to $OUT/summary.txt. Each step has a time
# limit, and all steps together stay under $BUDGET seconds (default 540), so the
# whole script ends inside 9 minutes.
#
# A dry run of the search step on a CPU machine, in a Python 3.12 like the GPU one's:
#     ONLY=f OUT=/tmp/out PYTHON=py312/bin/python SEARCH_TRIALS=2 SEARCH_EPOCHS=1 \
#         SEARCH_SAMPLES=2000 SEARCH_GPUS_PER_TRIAL=0 SEARCH_GPU_NAME= bash scripts/gpu-check.sh
set -u -o pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the logs}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-540}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"

# step NAME LIMIT_S COMMAND...: run COMMAND under a time limit, log it, record its status.
step() {
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    [[ -n ${ONLY:-} && ! $name =~ $ONLY ]] && return  # ONLY=regex: a dry run of some steps
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

# (f) a whole nas search on the GPU: Ray Tune runs the trials, four to a GPU, an Optuna
# study keeps them; CIFAR-shaped synthetic data, ResNet-20 to ResNet-56 (basic and
# pre-activation blocks, 3 to 9 a stage). A rerun on the same machine starts afresh.
SEARCH_TRIALS=${SEARCH_TRIALS:-16} SEARCH_EPOCHS=${SEARCH_EPOCHS:-8}
GPU_NAME=${SEARCH_GPU_NAME-H200}  # every trial must record a GPU of this name
if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >"$OUT/f0-wheels.log" 2>&1 \
        && export PYTHONPATH="/tmp/site:$PYTHONPATH"
    rm -rf /tmp/gpu-search.db /tmp/gpu-results
    cat >"$OUT/gpu-search.yaml" <<EOF
name: gpu-search
dataset: synthetic
data: {channels: 3, image_size: 32, classes: 10, samples: ${SEARCH_SAMPLES:-20000}}
epochs: $SEARCH_EPOCHS
trials: $SEARCH_TRIALS
space:
  blocks_per_stage: {type: categorical, choices: [3, 5, 7, 9]}
  block: {type: categorical, choices: [basic, preact]}
  shortcut: {type: categorical, choices: [identity, projection]}
  width: 16
  lr: {type: float, low: 0.05, high: 0.4, log: true}
  batch_size: 128
sampler: {name: tpe, seed: 0}
pruner: {name: none}
trial_resources: {cpu: 2, gpu: 0.25}
EOF
    step f1-gpu-search 300 "$PY" -m nas.cli search --space "$OUT/gpu-search.yaml" \
        --storage "sqlite:////tmp/gpu-search.db" --results /tmp/gpu-results \
        --gpus-per-trial "${SEARCH_GPUS_PER_TRIAL:-0.25}" --progress lines
    step f2-gpu-study 60 "$PY" scripts/check_gpu_study.py "sqlite:////tmp/gpu-search.db" \
        gpu-search "$SEARCH_TRIALS" "$SEARCH_EPOCHS" ${GPU_NAME:+--gpu "$GPU_NAME"}
else
    echo "=== f-gpu-search: skipped, no .whl folder (scripts/gpu-wheelhouse.sh)" | tee -a "$SUMMARY"
fi

# (e) 1, 2 and 4 concurrent trainings on the one GPU
step e-gpu-packing 240 "$PY" benchmarks/gpu_packing.py --device cuda --images 50000 --epochs 3 \
    --counts 1,2,4

echo "=== all steps done in ${SECONDS}s" | tee -a "$SUMMARY"
