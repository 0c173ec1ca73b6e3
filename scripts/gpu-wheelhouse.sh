#!/usr/bin/env bash
# A folder of the wheels a GPU machine without Ray and Optuna needs to run `nas search`,
# small enough to travel with a run (under 60 MiB), for its Python (3.12 by default):
#
#     bash scripts/gpu-wheelhouse.sh [FOLDER]        # default: .whl (git ignores it)
#
# There: python3 -m pip install --no-index --no-deps --target /tmp/site FOLDER/*.whl and
# PYTHONPATH=/tmp/site:. (scripts/gpu-check.sh does it when it finds the folder).
#
# Which packages: what resnas, Ray Tune, Optuna and optuna-dashboard need that the GPU
# image lacks. Its list (../.library KINDS.md, read 2026-11-17) has torch, numpy, pandas,
# pyarrow, fsspec, grpcio, protobuf, aiohttp, msgpack, pyyaml, requests, click, filelock,
# attrs, packaging, tqdm, rich, scikit-learn, pillow, narwhals, markupsafe and
# typing-extensions; the rest is below. Versions are this checkout's .venv's (what CI
# tests), else the floor that resnas was last tested with.
#
# Ray's wheel (79 MB) carries ray/jars/ray_dist.jar (31 MB), Java support the Python API
# never loads, and libraries a search never imports: RLlib, Serve, Ray LLM and the web
# client of Ray's dashboard (the search starts Ray with include_dashboard=False). The
# wheel is repacked without them (their RECORD lines removed too): 45 MB -> 40 MB.
# Plotly's JupyterLab extension (1.4 MB, twice) goes the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PYVER=${GPU_PYTHON_VERSION:-3.12}
LIMIT_MIB=60
HOST_PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && HOST_PY=.venv/bin/python

PACKAGES=(ray optuna sqlalchemy alembic mako colorlog plotly optuna-dashboard bottle
          tensorboardx jsonschema jsonschema-specifications referencing rpds-py
          pydantic pydantic-core annotated-types typing-inspection)
declare -A FALLBACK=([ray]=2.60.0 [optuna]=5.1.0 [sqlalchemy]=2.1.9 [alembic]=1.20.1
                     [mako]=1.4.3 [colorlog]=6.12.0 [plotly]=7.1.0 [optuna-dashboard]=0.21.0
                     [bottle]=0.13.4 [tensorboardx]=2.6.5 [jsonschema]=4.26.0
                     [jsonschema-specifications]=2025.9.1 [referencing]=0.37.0
                     [rpds-py]=2026.9.1 [pydantic]=2.14.4 [pydantic-core]=2.50.5
                     [annotated-types]=0.8.0 [typing-inspection]=0.4.5)

version_of() {  # the version installed here, else the fallback
    "$HOST_PY" -c 'import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass' "$1" 2>/dev/null || true
}

rm -rf "$DEST"
mkdir -p "$DEST"
PLATFORMS=()
for n in 17 24 27 28 31 34 35; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for name in "${PACKAGES[@]}"; do
    version=$(version_of "$name")
    version=${version:-${FALLBACK[$name]}}
    "$HOST_PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
        --implementation cp "${PLATFORMS[@]}" -d "$DEST" "$name==$version"
done

# Ray without its Java jar and the libraries a search never imports; Plotly without
# its JupyterLab extension.
for wheel in "$DEST"/ray-*.whl "$DEST"/plotly-*.whl; do
    "$HOST_PY" - "$wheel" <<'EOF'
import os, sys, zipfile
path = sys.argv[1]
dropped = (("ray/jars/", "ray/rllib/", "ray/serve/", "ray/llm/", "ray/dashboard/client/")
           if os.path.basename(path).startswith("ray-") else ("plotly/labextension/", "plotly-"))


def gone(name: str) -> bool:
    return name.startswith(dropped) and ".dist-info/" not in name


tmp = path + ".tmp"
with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
    for item in src.infolist():
        if gone(item.filename):
            continue
        data = src.read(item.filename)
        if item.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines(keepends=True)
            data = "".join(line for line in lines if not gone(line.split(",")[0])).encode()
        out.writestr(item, data)
os.replace(tmp, path)
EOF
done

size_kib=$(du -sk "$DEST" | cut -f1)
echo "wheelhouse $DEST: $(ls "$DEST" | wc -l) wheels, $((size_kib / 1024)) MiB (limit ${LIMIT_MIB} MiB)"
ls -l "$DEST" | awk 'NR > 1 {printf "  %6.1f MiB  %s\n", $5 / 1048576, $9}'
if ((size_kib > LIMIT_MIB * 1024)); then
    echo "gpu-wheelhouse: $DEST is over ${LIMIT_MIB} MiB; it would not travel" >&2
    exit 1
fi
