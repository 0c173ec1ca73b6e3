#!/usr/bin/env bash
# Installs a torch build that fits this machine into the environment of the
# given python, before the project itself, so that pip never swaps it:
# - an NVIDIA GPU (nvidia-smi lists one): PyPI's torch, a CUDA build;
# - otherwise a CPU build: from PyTorch's CPU index when it can be reached,
#   else the pinned release from the ordinary indexes (which is a CPU build on
#   macOS, Windows and machines that keep one on disk).
# RESNAS_TORCH=cpu|cuda overrides the detection; TORCH_VERSION the CPU pin.
set -euo pipefail
python=${1:?usage: install-torch.sh PYTHON}
cpu_version=${TORCH_VERSION:-2.13.0}
cpu_index=https://download.pytorch.org/whl/cpu

if "$python" -c 'import torch' 2>/dev/null; then
    echo "torch already installed: $("$python" -c 'import torch; print(torch.__version__)')"
    exit 0
fi

kind=${RESNAS_TORCH:-}
if [ -z "$kind" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        kind=cuda
    else
        kind=cpu
    fi
fi

pip=("$python" -m pip install --quiet)
case "$kind" in
cuda)
    echo "installing torch with CUDA (GPU found)"
    "${pip[@]}" "torch>=2.4"
    ;;
cpu)
    if [ "$(uname -s)" = Linux ] && "$python" - "$cpu_index" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/", timeout=5)
PY
        echo "installing torch $cpu_version, CPU build, from PyTorch's CPU index"
        "${pip[@]}" "torch==$cpu_version" --extra-index-url "$cpu_index"
    else
        echo "installing torch $cpu_version"
        "${pip[@]}" "torch==$cpu_version"
    fi
    ;;
*)
    echo "RESNAS_TORCH must be cpu or cuda, not '$kind'" >&2
    exit 2
    ;;
esac
