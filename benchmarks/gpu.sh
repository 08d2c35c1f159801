#!/usr/bin/env bash
# Every GPU measurement of the project in one call, on a machine with CUDA and this project installed:
#   bash benchmarks/gpu.sh            (about 15 minutes on one H100)
# Writes benchmarks/results/*-<gpu>.json: training throughput against the plain loop with MFU and the best
# number of jobs per GPU (train.gpu_slots), the QR certificate up to SVHN's n = 73,257 with peak memory, and
# the paper profile's cost projected from the measured training rate and certificate times.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # the package without installing it (GPU machines)
gpu=$(python -c "import re, torch; m = re.search(r'\b([A-Z]+[0-9]+)\b', torch.cuda.get_device_name()); print(m[1].lower() if m else 'gpu')")
out=benchmarks/results
python benchmarks/train_throughput.py --device cuda --parts steps concurrent --shapes digits paper \
  --out "$out/train-throughput-$gpu.json"
python benchmarks/certificate_time.py --device cuda --sizes 4000 8000 16000 32000 73257 \
  --out "$out/certificate-$gpu.json"
python benchmarks/project_paper_cost.py --measured "$out/train-throughput-$gpu.json" \
  --measured-certificate "$out/certificate-$gpu.json" --out "$out/paper-cost-projection-$gpu.json"
