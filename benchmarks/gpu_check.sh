#!/usr/bin/env bash
# One GPU check, under 8 minutes on one GPU (H100-class): the CUDA path has never run.
#   bash benchmarks/gpu_check.sh            (from the repository root, package installed)
# Prints: the CUDA tests' result, embedding throughput of ResNet-50 at 224 px (bf16
# autocast, channels_last) against a bare torch loop, and the linear probe on the GPU
# against the CPU at N_train=50,000, D=2,048. k-means has no GPU path in ssl-eval
# (scikit-learn on the CPU), so there is no k-means row.
set -u
PY=${PY:-python}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
status=0
step() { echo; echo "=== $1 ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || status=1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" || status=1

step "CUDA tests (tests that name cuda or gpu; 150 s cap)"
timeout 150 $PY -m pytest -q -x -k "cuda or gpu" tests/core 2>&1 | tail -5 || status=1

step "embedding: ResNet-50, 224 px, 4,096 images, batch 256 (ratio ssl-eval / best bare loop; goal >= 0.9)"
timeout 180 $PY benchmarks/embedding.py --arch resnet50 --size 224 --n 4096 --batch-size 256 --rounds 2 || status=1

step "linear probe: GPU vs CPU, N_train=50,000, D=2,048"
timeout 150 $PY benchmarks/probe_devices.py --n 50000 --d 2048 || status=1

step "done, status $status"
exit $status
