#!/usr/bin/env bash
# Every GPU measurement of the project, on a machine with CUDA and this project's source:
#   bash benchmarks/gpu.sh                  (all four parts, in this order; not yet timed on a GPU)
#   bash benchmarks/gpu.sh steps            (or any of: steps concurrent certificate cost; one at a time fits a
#                                            short job-time limit; `cost` reads what `steps` and `certificate` wrote)
#   RESULTS=/some/folder bash benchmarks/gpu.sh steps
#                                           (records go to, and `cost` reads from, RESULTS, default
#                                            benchmarks/results: where a job's time limit may cut a part short and
#                                            only one folder comes back, name that folder, since each part rewrites
#                                            its record there after every measurement)
# Writes $RESULTS/*-<gpu>.json:
#   steps        train-throughput-<gpu>.json: images/s and MFU of the project's training against the plain loop,
#                each compile mode;
#   concurrent   train-concurrent-<gpu>.json: total images/s of 1, 2 and 4 training processes sharing the GPU, and
#                the best number of jobs per GPU (the gpu_slots resource);
#   certificate  certificate-<gpu>.json: the QR certificate up to SVHN's n = 73,257 with its peak memory;
#   cost         paper-cost-projection-<gpu>.json: the paper profile's cost from the measured training rate and
#                certificate times.
set -euo pipefail
out=$(realpath -m "${RESULTS:-$(dirname "$0")/results}")  # a relative RESULTS is the caller's, resolved before the cd
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
mkdir -p "$out"
for part in "${parts[@]}"; do
  case $part in
    # paper first: `cost` reads it, and a part cut short keeps the shapes it finished. 5 s per variant: at an
    # H100's rate that is hundreds of steps, and the part is meant to fit a 10-minute job (not yet timed)
    steps) python3 benchmarks/train_throughput.py --device cuda --parts steps --shapes paper digits --seconds 5 \
             --out "$out/train-throughput-$gpu.json" ;;
    # k processes get 30 (1 + k/3) s to start and warm up (uncompiled); the record says how late any started timing
    concurrent) python3 benchmarks/train_throughput.py --device cuda --parts concurrent --concurrent-delay 30 \
             --out "$out/train-concurrent-$gpu.json" ;;
    # NumPy's CPU SVD as the reference up to n = 4,000 only: at 8,000 it took 90 s of a 2-core CPU
    certificate) python3 benchmarks/certificate_time.py --device cuda --sizes 4000 8000 16000 32000 73257 \
             --reference-max 4000 --out "$out/certificate-$gpu.json" ;;
    cost) python3 benchmarks/project_paper_cost.py --measured "$out/train-throughput-$gpu.json" \
             --measured-certificate "$out/certificate-$gpu.json" --out "$out/paper-cost-projection-$gpu.json" ;;
  esac
done
