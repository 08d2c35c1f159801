#!/usr/bin/env bash
# Every GPU measurement of the project, on a machine with CUDA and this project's source:
#   bash benchmarks/gpu.sh                  (all four parts, in this order; not yet timed on a GPU)
#   bash benchmarks/gpu.sh steps            (or any of: steps concurrent certificate cost; one at a time fits a
#                                            short job-time limit; `cost` reads what `steps` and `certificate` wrote)
# Writes benchmarks/results/*-<gpu>.json:
#   steps        train-throughput-<gpu>.json: images/s and MFU of the project's training against the plain loop,
#                each compile mode;
#   concurrent   train-concurrent-<gpu>.json: total images/s of 1, 2 and 4 training processes sharing the GPU, and
#                the best number of jobs per GPU (the gpu_slots resource);
#   certificate  certificate-<gpu>.json: the QR certificate up to SVHN's n = 73,257 with its peak memory;
#   cost         paper-cost-projection-<gpu>.json: the paper profile's cost from the measured training rate and
#                certificate times.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # the package without installing it (GPU machines)
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(steps concurrent certificate cost)
for part in "${parts[@]}"; do
  case $part in steps|concurrent|certificate|cost) ;;
    *) echo "gpu.sh: unknown part '$part'; name any of: steps concurrent certificate cost" >&2; exit 2 ;;
  esac
done
if ! python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu.sh: torch sees no CUDA device here; run it on a machine with an NVIDIA GPU" >&2
  exit 1
fi
gpu=$(python3 -c "import re, torch; m = re.search(r'\b([A-Z]+[0-9]+)\b', torch.cuda.get_device_name()); print(m[1].lower() if m else 'gpu')")
out=benchmarks/results
for part in "${parts[@]}"; do
  case $part in
    steps) python3 benchmarks/train_throughput.py --device cuda --parts steps --shapes digits paper \
             --out "$out/train-throughput-$gpu.json" ;;
    concurrent) python3 benchmarks/train_throughput.py --device cuda --parts concurrent \
             --out "$out/train-concurrent-$gpu.json" ;;
    certificate) python3 benchmarks/certificate_time.py --device cuda --sizes 4000 8000 16000 32000 73257 \
             --out "$out/certificate-$gpu.json" ;;
    cost) python3 benchmarks/project_paper_cost.py --measured "$out/train-throughput-$gpu.json" \
             --measured-certificate "$out/certificate-$gpu.json" --out "$out/paper-cost-projection-$gpu.json" ;;
  esac
done
