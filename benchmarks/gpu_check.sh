#!/usr/bin/env bash
# Every GPU-only path once, in one prepared run (the device has about 15 minutes in all):
# the CUDA tests, `cyclegan train --device cuda` in four forms each resumed with the other
# precision, resume exactness on CUDA, translate on CUDA, the out-of-memory message, the step
# benchmark (benchmarks/gpu_speed.py) and translation speed, then the fast test lane on the GPU.
# Each part has its own time limit and everything is logged under $OUT (default ./gpu_check_out).
#
#     OUT=/tmp/gc bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu: a dry run of the train/translate parts of this script on a CPU
START=$(date +%s)
section() { echo; echo "=== $1 (t=$(( $(date +%s) - START )) s)"; }
W=/tmp/gpu_check; rm -rf "$W"; mkdir -p "$W"
D=$W/data; R=$W/runs

section "machine"
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), torch.cuda.get_device_capability(), 'gpus', torch.cuda.device_count())"
echo "cpus $(nproc)"

section "CUDA tests of the suite"
[ "$DEVICE" = cuda ] && timeout 90 $PY -m pytest -q -p no:cacheprovider -rs "tests/test_tiling.py::test_amp_on_gpu_is_close_to_float32"

section "training step speed (benchmarks/gpu_speed.py)"
[ "$DEVICE" = cuda ] && timeout 200 $PY benchmarks/gpu_speed.py --crop 256 --batches 1 4 --compile-batches 1 --json "$OUT/gpu_speed.json"

section "translation speed (benchmarks/infer_speed.py)"
[ "$DEVICE" = cuda ] && timeout 60 $PY benchmarks/infer_speed.py --sizes 256 1024 --batches 1 8 --repeats 5 --warmup 2 --device cuda \
    --json "$OUT/infer_speed.json"

section "tiny dataset"
$PY - "$D" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
root, rng = Path(sys.argv[1]), np.random.default_rng(0)
for folder, n in (("trainA", 12), ("trainB", 12), ("testA", 4), ("testB", 4)):
    (root / folder).mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(root / folder / f"{i}.png")
EOF

train() {  # NAME OPTIONS...: a tiny run on CUDA (ResNet-9 at 64 px, ngf 16)
    local name=$1; shift
    timeout 150 $PY -m cyclegan train --dataroot "$D" --checkpoints-dir "$R" --name "$name" --device $DEVICE \
        --load-size 72 --crop-size 64 --ngf 16 --ndf 16 --print-freq 5 --no-progress "$@" > "$W/$name.log" 2>&1
    local rc=$?
    echo "exit $rc: train --name $name $*"
    [ $rc -eq 0 ] || tail -25 "$W/$name.log"
}

section "train on CUDA in four forms, each resumed with the other precision"
train f32 --max-steps 20
train f32 --resume --max-steps 30 --amp
train amp --max-steps 20 --amp
train amp --resume --max-steps 30
train bn --max-steps 20 --amp --norm batch
train bn --resume --max-steps 30
train ampc --max-steps 20 --amp --compile
train ampc --resume --max-steps 30 --compile
$PY - "$R" <<'EOF'
import csv, math, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).iterdir()):
    latest = (run / "checkpoints" / "LATEST")
    rows = list(csv.DictReader(open(run / "loss_log.csv"))) if (run / "loss_log.csv").exists() else []
    finite = all(math.isfinite(float(v)) for r in rows for k, v in r.items() if v not in ("", None) and k not in ("epoch", "step", "time"))
    print(f"{run.name}: LATEST {latest.read_text().strip() if latest.exists() else None}, {len(rows)} loss rows, "
          f"all finite {finite}, last {rows[-1] if rows else None}")
EOF

section "resume is exact on CUDA? 20 steps straight against 10 + resume to 20 (float32)"
train straight --max-steps 20
train split --max-steps 10
train split --resume --max-steps 20
$PY - "$R" <<'EOF'
import sys
from pathlib import Path
from safetensors.torch import load_file
runs = Path(sys.argv[1])
def weights(name):
    ck = runs / name / "checkpoints"
    return {f.name: load_file(f) for f in sorted((ck / (ck / "LATEST").read_text().strip()).glob("*.safetensors"))}
a, b = weights("straight"), weights("split")
worst = max(float((a[f][k].double() - b[f][k].double()).abs().max()) for f in a for k in a[f])
print(f"largest weight difference, straight vs resumed: {worst:.3g} (cuDNN picks algorithms per run; 0 means bitwise)")
EOF

section "translate on CUDA (float32 and --amp)"
timeout 60 $PY -m cyclegan translate "$R/f32" "$D/testA" --output-dir "$W/out32" --device $DEVICE --no-progress; echo "exit $?"
timeout 60 $PY -m cyclegan translate "$R/f32" "$D/testA" --output-dir "$W/out16" --device $DEVICE --amp --no-progress; echo "exit $?"
$PY - "$W" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
w = Path(sys.argv[1])
for f in sorted((w / "out32").glob("*.png")):
    a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (f, w / "out16" / f.name))
    print(f"{f.name}: fp32 vs amp max {np.abs(a - b).max()} mean {np.abs(a - b).mean():.2f} levels")
EOF

[ "$DEVICE" = cuda ] || { section "dry run on $DEVICE done"; exit 0; }
section "the CUDA out-of-memory message (this process may use 0.2% of the GPU)"
timeout 60 $PY - "$D" "$R" <<'EOF'
import sys
import torch
torch.cuda.set_per_process_memory_fraction(0.002)
from cyclegan.cli import main
rc = main(["train", "--dataroot", sys.argv[1], "--checkpoints-dir", sys.argv[2], "--name", "oom", "--device", "cuda",
           "--load-size", "80", "--crop-size", "64", "--max-steps", "2", "--no-progress", "--num-workers", "0"])
print("exit", rc)
EOF

section "torchrun"
if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    timeout 120 $PY -m torch.distributed.run --standalone --nproc_per_node 2 -m cyclegan train --dataroot "$D" \
        --checkpoints-dir "$R" --name ddp --norm batch --pool-size 3 --max-steps 6 --load-size 72 --crop-size 64 \
        --ngf 16 --ndf 16 --no-progress; echo "exit $?"
    timeout 120 $PY -m torch.distributed.run --standalone --nproc_per_node 2 -m cyclegan train --dataroot "$D" \
        --checkpoints-dir "$R" --name ddp --resume --max-steps 9 --no-progress; echo "exit $?"
else
    echo "one GPU: NCCL and SyncBatchNorm under torchrun need two, not run"
fi

section "fast test lane on the GPU machine (what its image lacks is skipped or fails to collect)"
LEFT=$(( ${BUDGET:-470} - ($(date +%s) - START) ))
if [ $LEFT -gt 40 ]; then
    timeout $LEFT $PY -m pytest -q -p no:cacheprovider -m "not slow" -n 8 --continue-on-collection-errors \
        --maxfail 30 2>&1 | tail -60
else
    echo "no time left ($LEFT s)"
fi
section "done"
