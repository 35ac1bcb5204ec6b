#!/usr/bin/env bash
# Every GPU check in one call: the CUDA tests, the fixed anchor loop, the trainer's throughput, a study on the
# real Fashion-MNIST with its report and final evaluation, time to accuracy, a table last.
#
# A session lent a GPU (device time is scarce, so everything runs in one call):
#   here:        bash benchmarks/gpu_check.sh --prepare     # wheels the GPU image lacks, the anchor and the
#                                                           # Fashion-MNIST files, into .device/ (~47 MB)
#   on the GPU:  run(command="bash benchmarks/gpu_check.sh", carry=[".device"], timeout_s=600)
# then copy the table from $OUT/gpu_check.md into benchmarks/RESULTS.md with the card, torch version and date.
# The whole script fits in TOTAL seconds (default 530, under 9 minutes with the install): each step runs under
# its own limit, sized from the step times of the 2026-12-04 run, and never past what is left of TOTAL less
# the table's 10 s, so the table always comes out; steps run in order of what the open issue needs first, so
# the last ones (the study, finalize, time to accuracy, ResNet-18) get what is left. Every step prints how
# long it took.
# The GPU image (Python 3.12, no network, no datasets) has torch, torchvision, numpy, pandas, scipy,
# scikit-learn, pytest and tqdm, but not fvcore, optuna or plotly: --prepare downloads those and what they need
# beyond the image, at the versions of this checkout's venv (HERE_PY, installed from requirements.lock), and
# the first step installs the ones the image lacks; NAS_DATA_DIR points at the carried Fashion-MNIST.
# IMAGES (default 25000) sizes the synthetic CIFAR-shaped training set of the throughput runs.
set -uo pipefail
cd "$(dirname "$0")/.."

# What the GPU image lacks: the project's own dependencies beyond the image, and theirs (fvcore: iopath, yacs,
# termcolor, tabulate, portalocker, PyYAML; optuna: alembic, Mako, MarkupSafe, SQLAlchemy, colorlog;
# plotly: narwhals), and typing_extensions and packaging for an image that holds older ones (alembic needs
# typing_extensions >= 4.12). Checked: with these on a bare Python 3.12, pip check misses only numpy, pillow, tqdm.
WHEELS=(optuna alembic mako markupsafe sqlalchemy colorlog plotly narwhals pyyaml typing_extensions packaging
    termcolor tabulate portalocker yacs)
SDISTS=(fvcore iopath)  # no wheels on PyPI: built here (pure Python)

if [[ "${1:-}" == "--prepare" ]]; then
    HERE_PY="${HERE_PY:-.venv/bin/python}"
    pinned() { "$HERE_PY" -c 'import importlib.metadata as m, sys; print(*(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' "$@"; }
    rm -rf .device/wheels && mkdir -p .device/wheels
    # shellcheck disable=SC2046  # one argument per pinned name
    "$HERE_PY" -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.12 \
        --abi cp312 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d .device/wheels \
        $(pinned "${WHEELS[@]}") || exit 1
    # shellcheck disable=SC2046
    "$HERE_PY" -m pip wheel --quiet --no-deps -w .device/wheels $(pinned "${SDISTS[@]}") || exit 1
    cp ../shared/anchors/gpu_anchor.py .device/gpu_anchor.py
    # The real Fashion-MNIST, as Debian's dataset-fashion-mnist installs it: the GPU machine has no network.
    FASHION="${FASHION:-/usr/share/datasets/fashion-mnist}"
    rm -rf .device/data && mkdir -p .device/data/fashion-mnist
    cp "$FASHION"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz .device/data/fashion-mnist/ || {
        echo "no Fashion-MNIST in $FASHION: apt-get install dataset-fashion-mnist (or set FASHION)" >&2; exit 1; }
    ls .device .device/wheels .device/data/fashion-mnist
    du -sh .device
    exit 0
fi

OUT="${OUT:-/tmp/gpu_check}"
IMAGES="${IMAGES:-25000}"
TOTAL="${TOTAL:-530}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD"
PY="${PY:-python3}"  # the GPU image's python holds torch
if [[ -d .device/data/fashion-mnist ]]; then
    export NAS_DATA_DIR="$PWD/.device/data"
else
    echo "no .device/data/fashion-mnist: run --prepare here first; the study steps will fail without the data"
fi
STEP_START=$SECONDS
STEP_NAME=""
# Starts a step; first says how long the previous one took.
step() {
    [[ -n "$STEP_NAME" ]] && echo "--- $STEP_NAME: $((SECONDS - STEP_START)) s (at $SECONDS s of $TOTAL)"
    STEP_NAME="$1"; STEP_START=$SECONDS
    echo; echo "=== $* ($(date +%T))"
}
# `limit N`: N seconds, or what is left of TOTAL less the table's 10 s when that is less (at least 1).
limit() { local left=$((TOTAL - 10 - SECONDS)); (( left < $1 )) && echo $(( left > 1 ? left : 1 )) || echo "$1"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
# The prepared wheels of what the image lacks or holds older (it keeps anything newer), then what pip makes of it.
mapfile -t NEEDED < <($PY - .device/wheels/*.whl <<'EOF'
import importlib.metadata as md, sys
from pip._vendor.packaging.version import Version
for path in sys.argv[1:]:
    name, version = path.rsplit("/", 1)[-1].split("-")[:2]
    try:
        if Version(md.version(name)) >= Version(version):
            continue
    except md.PackageNotFoundError:
        pass
    print(path)
EOF
)
echo "installing ${#NEEDED[@]} wheels: ${NEEDED[*]##*/}"
[[ ${#NEEDED[@]} -gt 0 ]] && $PY -m pip install --quiet --no-index --no-deps "${NEEDED[@]}" 2>&1 | tail -2
$PY -m pip check 2>&1 | tail -5
$PY -c "import fvcore, optuna, plotly; print('optuna', optuna.__version__, 'plotly', plotly.__version__)" 2>&1 | tail -2

step "CUDA tests"
# The project's pytest settings name optuna's warning class: this run sets its own, so it still runs when a
# wheel above failed to install. The torch.compile tests (tens of seconds of compiling each) run last, apart,
# so that a cut leaves them out rather than the eager and graphs tests (the 2026-12-04 run was cut after 4).
PYTEST=($PY -m pytest -q -p no:cacheprovider -o addopts="" -o filterwarnings="ignore::FutureWarning")
COMPILED="compiled_with_cuda_graphs"
timeout "$(limit 90)" "${PYTEST[@]}" tests/train/test_trainer_cuda.py \
    "tests/data/test_datasets.py::test_batches_on_cuda_with_cpu_or_cuda_generator" tests/arch/test_builder.py \
    tests/train/test_proxies.py \
    -k "(cuda or test_trainer_cuda) and not $COMPILED" 2>&1 | tail -15
echo "pytest exit (eager, graphs, trials at once): ${PIPESTATUS[0]}" | tee "$OUT/tests.txt"
timeout "$(limit 60)" "${PYTEST[@]}" tests/train/test_trainer_cuda.py -k "$COMPILED" 2>&1 | tail -6
echo "pytest exit (torch.compile): ${PIPESTATUS[0]}" | tee -a "$OUT/tests.txt"

step "anchor loop (../shared/anchors/gpu_anchor.py), three of its rows"
timeout "$(limit 60)" $PY - "$OUT" <<'EOF'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("gpu_anchor", ".device/gpu_anchor.py")
a = importlib.util.module_from_spec(spec); spec.loader.exec_module(a)
bc100 = lambda: a.densenet_bc()
rows = [
    a.run("bc100 tutorial-style fp32 DataLoader nw4 bs64", bc100, bs=64, amp=False, cl=False, loader="dl", workers=4,
          steps=30),
    a.run("bc100 bf16 CL gpu-data bs256", bc100, bs=256),
    a.run("resnet18 bf16 CL gpu-data bs512", a.resnet18_cifar, bs=512, steps=40),
]
json.dump(rows, open(f"{sys.argv[1]}/anchor.json", "w"), indent=1)
EOF

# Eager: compile on did not finish BC-100 in 100 s (~70 s of compiling); the tutorial loop on 2,048 images only.
step "trainer: DenseNet-BC-100 batch 256, compile off"
timeout "$(limit 50)" $PY benchmarks/train_throughput.py --images "$IMAGES" --tutorial-images 2048 --epochs 3 \
    --batch-size 256 --compile off --out "$OUT/bc100.json" 2>&1 | tail -6

# The whole step as one CUDA graph, no compiler (issue 19's target: >= 1.5x the anchor's bf16 eager row, capture < 5 s).
step "trainer: DenseNet-BC-100 batch 256, compile graphs"
timeout "$(limit 45)" $PY benchmarks/train_throughput.py --images "$IMAGES" --tutorial-images 0 --epochs 3 \
    --batch-size 256 --compile graphs --out "$OUT/bc100_graphs.json" 2>&1 | tail -6

# Trials per GPU-hour (benchmarks/gpu_trials.py --quick): 4 networks of the study's space, 2 epochs on 20,000 images,
# one after another eager, with compile=graphs, graphs with 2 and 4 trials at once in threads (--trials-per-gpu),
# and in two worker processes; first epoch against later ones. Decides what the README recommends.
step "trials per GPU-hour: gpu_trials.py --quick"
timeout "$(limit 130)" $PY benchmarks/gpu_trials.py --device cuda --quick --out "$OUT/gpu_trials.json" 2>&1 | tail -10

step "a 5-trial Fashion-MNIST study, 3 epochs, compile graphs, --trials-per-gpu auto (trials at once in threads), then its report"
# studies/fashion_mnist_gpu.toml with a budget that fits: its own space, recipe, objectives and baselines.
sed -e 's/^trials = .*/trials = 5/' -e 's/^epochs = .*/epochs = 3/' -e 's/^base = "fast" .*/&\ncompile = "graphs"/' \
    studies/fashion_mnist_gpu.toml > "$OUT/fashion_mnist_gpu.toml"
# Report and status run even when the study ran out of time: they show what it finished.
(cd "$OUT" || exit
 timeout "$(limit 70)" $PY -m nas.cli run fashion_mnist_gpu.toml --trials-per-gpu auto 2>&1 | tail -12
 timeout "$(limit 15)" $PY -m nas.cli report fashion_mnist_gpu.toml --out "$OUT" 2>&1 | tail -2
 timeout "$(limit 10)" $PY -m nas.cli status fashion_mnist_gpu.toml > "$OUT/study.txt" 2>&1)
tail -12 "$OUT/study.txt" 2>/dev/null

# The study's front, retrained once on train+validation (3 epochs) and measured once on the test split;
# final.csv and the report's Final evaluation section (published Fashion-MNIST rows beside it).
step "nas finalize on that study's front: 1 seed, 3 epochs, then the test split once per network"
(cd "$OUT" || exit
 timeout "$(limit 40)" $PY -m nas.cli finalize fashion_mnist_gpu.toml --seeds 1 --epochs 3 --out "$OUT" 2>&1 | tail -8
 cp runs/fashion_mnist_gpu/final.csv "$OUT/final.csv" 2>/dev/null)

# One default/fast pair that can finish: one sub-1M network, one seed, at most 10 epochs, a target it reaches
# (at --full's 94% the 2026-12-04 run finished no run in 180 s). Rows are written after each run.
step "time to accuracy on the full Fashion-MNIST: default vs fast recipe, target 90%, at most 10 epochs"
timeout "$(limit 60)" $PY benchmarks/time_to_accuracy.py --full --device cuda --seeds 1 --networks osp \
    --target 0.90 --max-epochs 10 --out "$OUT/tta.json" 2>&1 | tail -14

# Measured on 2026-12-04 (2.10x the anchor): last, with what time is left.
step "trainer: ResNet-18 (CIFAR stem) batch 512, compile on"
timeout "$(limit 50)" $PY benchmarks/train_throughput.py --arch torchvision:resnet18:cifar --images "$IMAGES" \
    --tutorial-images 0 --epochs 3 --batch-size 512 --compile on --out "$OUT/resnet18.json" 2>&1 | tail -6

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
                           ("DenseNet-BC-100 graphs", "bc100_graphs.json", "bc100 bf16 CL gpu-data bs256"),
                           ("ResNet-18 cifar", "resnet18.json", "resnet18 bf16 CL gpu-data bs512")):
    r = load(name)
    if r is None:
        print(f"| trainer, {label} | not run | | |")
        continue
    env, ips = {**r["environment"], "date": r["date"]}, r["trainer_img_per_s"]
    vs_tutorial = f"{ips / tutorial:.2f}x" if tutorial and label.startswith("Dense") else ""
    vs_eager = f"{ips / anchor[eager]:.2f}x" if eager in anchor else ""
    if r.get("tutorial_img_per_s") is not None:
        print(f"| our tutorial loop, {label}, bs64, {r['tutorial_images']:,} images | {r['tutorial_img_per_s']:,.0f} | | |")
    print(f"| trainer, {label}, bs{r['trainer_batch_size']}, compile {r['compile']} | {ips:,.0f} "
          f"| {vs_tutorial} | {vs_eager} |")
trials = load("gpu_trials.json")
if trials is None:
    print("\ntrials per GPU-hour (gpu_trials.py --quick): not run")
else:
    print(f"\ntrials per GPU-hour (gpu_trials.py --quick, {' '.join(trials['settings'])})")
    print("\n| row | wall s | img/s | speed-up over eager | first epoch / later (median) | notes of the first network |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    times = lambda ratio: "-" if ratio is None else f"{ratio:.2f}x"
    for r in trials["rows"]:
        notes = "; ".join(r["networks"][0]["notes"]) if r["networks"] else ""
        print(f"| {r['row']} | {r['wall_seconds']:.1f} | {r['images_per_second']:,.0f} | {times(r['speedup_over_eager'])} "
              f"| {times(r['first_over_later_median'])} | {notes} |")
study = open(f"{out}/study.txt").read().strip() if os.path.exists(f"{out}/study.txt") else "not run"
print(f"\n5-trial Fashion-MNIST study (--workers auto), nas status:\n{study}")
final = open(f"{out}/final.csv").read().strip() if os.path.exists(f"{out}/final.csv") else "not run"
print(f"\nnas finalize on its front (1 seed, 3 epochs; test accuracy), final.csv:\n{final}")
tta = load("tta.json")
if tta is not None:
    target = tta["settings"]["target"]
    print(f"\ntime to {target:.0%} validation accuracy, full Fashion-MNIST ({tta['heading']})")
    print("\n| network | params | recipe | seed | epochs | seconds of training | final val acc |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in tta["rows"]:
        secs = "not reached" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f}"
        print(f"| {r['network']} | {r['params']:,} | {r['recipe']} | {r['seed']} | {r['epochs_to_target']} | {secs} "
              f"| {r['final_val_accuracy']:.2%} |")
    print("default/fast seconds (median):", {k: round(v["median"], 2) for k, v in tta["ratio_seconds"].items()
                                               if v["median"] is not None})
else:
    print("\ntime to accuracy: not run")
if env:
    print(f"\n{env['device_name']}, torch {env['torch']}, {env['date']}")
EOF
