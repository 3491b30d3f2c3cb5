#!/usr/bin/env bash
# Every GPU check, for a GPU machine lent for a few minutes, without network, in two parts that
# each fit one call with time to spare, logs and gpu.json to $OUT:
#   targets  the GPU tests (captured step, sync-free batches, background state writes), then
#            benchmarks/gpu.py (the speed targets): about 6.5 minutes
#   suite    the whole test suite with its runs on CUDA: about 4 minutes
# (no argument: both, one after the other, about 10 minutes: more than one call of the device tool
# allows). The exit status is non-zero when a part failed or ran out of time.
#
# On a machine with network, once per checkout: the four Fashion-MNIST files (Debian's
# dataset-fashion-mnist) and the wheels the GPU machine may lack (pythae and pydantic for gpu.py's
# VAE comparison, umap-learn for the tests) go to .devdata and .whl, which git ignores:
#   bash benchmarks/device_check.sh --prepare
# Then copy the checkout with both folders to the GPU machine and run there (its python3 holding
# torch with CUDA, numpy, scikit-learn, safetensors, matplotlib, tqdm, pytest; pytest-xdist runs
# the tests in parallel where it is there):
#   bash benchmarks/device_check.sh targets; bash benchmarks/device_check.sh suite
set -uo pipefail
cd "$(dirname "$0")/.."
# pytest-xdist (and its execnet) too: the machine may lack them, and the GPU tests one by one would
# outrun their two minutes
WHEELS="pythae==0.1.2 pydantic==2.10.6 pydantic-core==2.27.2 annotated-types==0.7.0 umap-learn==0.5.12 pynndescent==0.7.0
  pytest-xdist==3.8.0 execnet==2.1.2"

if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  mkdir -p .devdata/fashion-mnist
  cp /usr/share/datasets/fashion-mnist/*.gz .devdata/fashion-mnist/
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")" && touch "$exclude"
  for folder in /.devdata/ /.whl/; do
    grep -qxF "$folder" "$exclude" || echo "$folder" >>"$exclude"
  done
  # the GPU machine's Python is 3.12; --no-deps: each wheel it lacks is named above
  # shellcheck disable=SC2086
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl $WHEELS
  du -sh .devdata .whl
  exit 0
fi

part=${1:-all}
case "$part" in targets | suite | all) ;; *) echo "usage: $0 [--prepare | targets | suite | all]" >&2; exit 2 ;; esac
# without them gpu.py would try to download Fashion-MNIST, with no network, and measure nothing;
# the suite's umap tests need the wheels
if [[ ! -d .whl || ( "$part" != suite && ! -f .devdata/fashion-mnist/train-images-idx3-ubyte.gz ) ]]; then
  echo "no .devdata/fashion-mnist or .whl here: run $0 --prepare where there is network, and carry both" >&2
  exit 2
fi
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 AUTOENCODERS_DATA=${AUTOENCODERS_DATA:-$PWD/.devdata} AUTOENCODERS_CACHE=/tmp/ae-cache
# the project (for its `autoencoders` command) and the wheels, beside the machine's packages;
# should its setuptools be too old to build the project, the source folder serves the imports
rm -rf /tmp/site  # a rerun on the same machine installs this checkout, not the last one
install="python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site"
$install . .whl/*.whl || $install .whl/*.whl || $install .
export PYTHONPATH=/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 -c \
  "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"; } \
  2>&1 | tee "$OUT/machine.txt"

# each part under a time limit that lets it report what it has: SIGINT (pytest prints its summary,
# gpu.py has saved every part it finished), a kill 15 s later; the logs go whole to $OUT
limit() { local seconds=$1; shift; timeout -s INT -k 15 "$seconds" "$@"; }
# pytest's -n N where pytest-xdist is there; without it the tests run one by one, not refused
workers() { python3 -c "import xdist" 2>/dev/null && echo "-n $1"; }
failed=()
if [[ "$part" != suite ]]; then
  # the GPU's own tests first, two minutes at most: captured steps give the eager losses without a
  # host sync, every kind, variant piece and classifier step replays to its eager run's losses,
  # states written in the background hold what the queued kernels left
  limit 120 python3 -m pytest -p no:randomly $(workers 4) -m gpu -rfEs --tb=short tests/test_device.py 2>&1 \
    | tee "$OUT/tests_gpu.log"
  (( PIPESTATUS[0] == 0 )) || failed+=("GPU tests")
  # the targets; the eager reference last, so that the limit cuts it first
  limit 240 python3 benchmarks/gpu.py --out-dir "$OUT" 2>&1 | tee "$OUT/gpu.log"
  (( PIPESTATUS[0] == 0 )) || failed+=("gpu.py")
fi
if [[ "$part" != targets ]]; then
  # the suite's training on the GPU (tests/helpers.py): every kind's batches free of host reads, ...
  AUTOENCODERS_TEST_DEVICE=cuda limit 210 python3 -m pytest -p no:randomly $(workers 16) -m "not slow and not gpu" \
    -rfE --tb=line 2>&1 | tee "$OUT/tests.log"
  (( PIPESTATUS[0] == 0 )) || failed+=("the suite")
fi
if (( ${#failed[@]} )); then
  echo "failed or out of time: ${failed[*]} (logs in $OUT)" >&2
  exit 1
fi
