#!/usr/bin/env bash
# Every GPU check in one call: the CUDA tests, the fixed anchor loop, the trainer's throughput, a table last.
#
# A session lent a GPU (device time is scarce, so everything runs in one call):
#   here:        bash benchmarks/gpu_check.sh --prepare     # wheels the GPU image lacks + the anchor, into .device/
#   on the GPU:  run(command="bash benchmarks/gpu_check.sh", carry=[".device"], timeout_s=560)
# then copy the table from $OUT/gpu_check.md into benchmarks/RESULTS.md with the card, torch version and date.
# The GPU image has torch, torchvision, numpy, scikit-learn, tqdm and pytest but not fvcore; nothing can be
# fetched there. IMAGES (default 25000) sizes the synthetic CIFAR-shaped training set of the throughput runs.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p .device/wheels
    .venv/bin/python -m pip wheel --quiet --no-deps -w .device/wheels \
        "fvcore==0.1.5.post20221221" "iopath==0.1.10" "yacs==0.1.8" "termcolor>=1.1"
    cp ../shared/anchors/gpu_anchor.py .device/gpu_anchor.py
    ls .device .device/wheels
    exit 0
fi

OUT="${OUT:-/tmp/gpu_check}"
IMAGES="${IMAGES:-25000}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD"
PY="${PY:-python3}"  # the GPU image's python holds torch
step() { echo; echo "=== $* ($(date +%T))"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
$PY -m pip install --quiet --no-index --find-links .device/wheels fvcore iopath yacs termcolor 2>&1 | tail -2

step "CUDA tests"
# The pytest settings name optuna's warning class, absent there: this run sets its own.
timeout 240 $PY -m pytest -q -p no:cacheprovider -o addopts="" -o filterwarnings="ignore::FutureWarning" \
    tests/train/test_trainer_cuda.py "tests/data/test_datasets.py::test_batches_on_cuda_with_cpu_or_cuda_generator" \
    tests/arch/test_builder.py -k "cuda or test_trainer_cuda" 2>&1 | tail -15
echo "pytest exit: ${PIPESTATUS[0]}" | tee "$OUT/tests.txt"

step "anchor loop (../shared/anchors/gpu_anchor.py), three of its rows"
timeout 150 $PY - "$OUT" <<'EOF'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("gpu_anchor", ".device/gpu_anchor.py")
a = importlib.util.module_from_spec(spec); spec.loader.exec_module(a)
bc100 = lambda: a.densenet_bc()
rows = [
    a.run("bc100 tutorial-style fp32 DataLoader nw4 bs64", bc100, bs=64, amp=False, cl=False, loader="dl", workers=4),
    a.run("bc100 bf16 CL gpu-data bs256", bc100, bs=256),
    a.run("resnet18 bf16 CL gpu-data bs512", a.resnet18_cifar, bs=512, steps=40),
]
json.dump(rows, open(f"{sys.argv[1]}/anchor.json", "w"), indent=1)
EOF

step "trainer: DenseNet-BC-100 batch 256, compile on"
timeout 200 $PY benchmarks/train_throughput.py --images "$IMAGES" --epochs 3 --batch-size 256 --compile on \
    --out "$OUT/bc100.json" 2>&1 | tail -6

step "trainer: ResNet-18 (CIFAR stem) batch 512, compile on"
timeout 160 $PY benchmarks/train_throughput.py --arch torchvision:resnet18:cifar --images "$IMAGES" --epochs 3 \
    --batch-size 512 --compile on --out "$OUT/resnet18.json" 2>&1 | tail -6

step "table"
$PY - "$OUT" <<'EOF' | tee "$OUT/gpu_check.md"
import json, os, sys
out = sys.argv[1]
def load(name):
    return json.load(open(f"{out}/{name}")) if os.path.exists(f"{out}/{name}") else None
anchor = {r["name"]: r["img_per_s"] for r in load("anchor.json") or []}
tutorial = anchor.get("bc100 tutorial-style fp32 DataLoader nw4 bs64")
print("CUDA tests:", open(f"{out}/tests.txt").read().strip() if os.path.exists(f"{out}/tests.txt") else "not run")
print("\n| run | img/s | / anchor tutorial loop | / anchor bf16 eager, same net |")
print("| --- | ---: | ---: | ---: |")
for name, ips in anchor.items():
    print(f"| anchor: {name} | {ips:,} | | |")
env = None
for label, name, eager in (("DenseNet-BC-100", "bc100.json", "bc100 bf16 CL gpu-data bs256"),
                           ("ResNet-18 cifar", "resnet18.json", "resnet18 bf16 CL gpu-data bs512")):
    r = load(name)
    if r is None:
        print(f"| trainer, {label} | not run | | |")
        continue
    env, ips = {**r["environment"], "date": r["date"]}, r["trainer_img_per_s"]
    vs_tutorial = f"{ips / tutorial:.2f}x" if tutorial and label.startswith("Dense") else ""
    vs_eager = f"{ips / anchor[eager]:.2f}x" if eager in anchor else ""
    print(f"| our tutorial loop, {label}, bs64 | {r['tutorial_img_per_s']:,.0f} | | |")
    print(f"| trainer, {label}, bs{r['trainer_batch_size']}, compile {r['compile']} | {ips:,.0f} "
          f"| {vs_tutorial} | {vs_eager} |")
if env:
    print(f"\n{env['device_name']}, torch {env['torch']}, {env['date']}")
EOF
