#!/usr/bin/env bash
# gpu.sh under another torch, on this CPU: the GPU machine's image carries its own torch (2.11.0 with torchvision
# 0.26.0 when last read), older than the 2.14.1 this project pins, and gpu.sh runs the source tree with it.
#   bash benchmarks/gpu_torch_check.sh                 (torch 2.11.0 + torchvision 0.26.0)
#   bash benchmarks/gpu_torch_check.sh 2.12.0 0.27.0   (another pair)
# In a throw-away virtual environment with that pair and the packages gpu.sh's path and these tests import (all on
# the GPU image; versions from constraints.txt), it runs every gpu.sh part at small sizes on the CPU, the compiled
# variants, the concurrent runs' compiled steps and the hand-blocked QR included (bf16 autocast is CUDA's only),
# then the tests of the training, A(base), resume and certificate modules and of the benchmarks, all from src/
# without installing the project. It checks the code runs under that torch; its records are not measurements
# (tiny, on a shared CPU) and are thrown away. The CUDA branches themselves only run on a GPU, and this machine's
# Python and NumPy may differ from the image's (3.12 and NumPy 2.5 when last read).
set -euo pipefail
cd "$(dirname "$0")/.."
torch_version=${1:-2.11.0}
vision_version=${2:-0.26.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT  # torch with its CUDA libraries is 5 GB: never leave one behind
export PIP_NO_CACHE_DIR=1  # nor a copy of those wheels in pip's cache
python3 -m venv "$work/venv"
py=$work/venv/bin/python
# constraints.txt pins torch 2.14.1 and what comes with it; the pair asked for brings its own
grep -v -E '^(torch|torchvision|triton|nvidia-|cuda-)' constraints.txt > "$work/constraints.txt"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q -c "$work/constraints.txt" "torch==$torch_version" "torchvision==$vision_version" \
  numpy scipy pandas scikit-learn matplotlib seaborn jinja2 pyyaml tqdm threadpoolctl pytest psutil
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PATH="$work/venv/bin:$PATH"  # gpu.sh's python3 is this one
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
rec=$work/records
mkdir "$rec"
set -x
python3 benchmarks/train_throughput.py --device cpu --parts steps --shapes digits paper \
  --compile-modes default reduce-overhead --seconds 1 --warmup 2 --out "$rec/steps.json"
python3 benchmarks/train_throughput.py --device cpu --parts concurrent --concurrent 1 2 --concurrent-shape digits \
  --concurrent-compile default --concurrent-delay 30 --seconds 2 --out "$rec/concurrent.json"
python3 benchmarks/certificate_time.py --device cpu --sizes 1000 3000 --reference-max 1000 --factorisation blocked \
  --out "$rec/certificate.json"
python3 benchmarks/project_paper_cost.py --measured "$rec/steps.json" --measured-certificate "$rec/certificate.json" \
  --out "$rec/cost.json"
python3 -m pytest -q -p no:cacheprovider tests/test_base.py tests/test_recipe.py tests/test_resume.py \
  tests/test_certificate.py tests/test_benchmarks.py
