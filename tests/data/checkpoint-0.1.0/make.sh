#!/usr/bin/env bash
# How this folder was made: by the project's code at commit 507f7ab (version 0.1.0), through its
# command line only.
#   git worktree add /tmp/old 507f7ab && bash tests/data/checkpoint-0.1.0/make.sh /tmp/old
# It writes, beside this script:
#   data/images, data/labels   64 random digits (IDX), the run's training data
#   ckpt/                      the run after 5 iterations (run.json, checkpoint, ckpt-5)
#   expected.npz               what that version's generate drew from ckpt-5 (both weights),
#                              and every weight of the same run continued to iteration 9
set -euo pipefail
OLD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
rm -rf "$HERE/data" "$HERE/ckpt" "$HERE/expected.npz"
mkdir -p "$HERE/data"
cd "$OLD"
python - "$HERE/data" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(2024)
for name, array in (("images", rng.integers(0, 256, (64, 28, 28))), ("labels", np.arange(64) % 10)):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    open(f"{sys.argv[1]}/{name}", "wb").write(header + array.tobytes())
PY
FLAGS=(--train-images "$HERE/data/images" --train-labels "$HERE/data/labels" --valid-size 0 --batch-size 8
       --dim-w1 32 --dim-w2 8 --dim-w3 8 --seed 3 --learning-rate 0.05 --step 1000 --visualize-dim 16 --log-every 1000
       --checkpoint-dir "$WORK/ckpt" --vis-dir "$WORK/vis")
python -m dcgan_mnist.train "${FLAGS[@]}" --max-iterations 5
cp -r "$WORK/ckpt" "$HERE/ckpt"
rm -f "$HERE/ckpt/.lock"
for weights in average trained; do
    python -m dcgan_mnist.generate --checkpoint-dir "$WORK/ckpt" --weights $weights --labels 0123456789 \
        --n-per-label 3 --seed 5 --npz "$WORK/$weights.npz"
done
python -m dcgan_mnist.train "${FLAGS[@]}" --max-iterations 9
python - "$WORK" "$HERE/expected.npz" <<'PY'
import sys
import numpy as np
import tensorflow as tf
work, out = sys.argv[1:]
reader = tf.train.load_checkpoint(f"{work}/ckpt/ckpt-9")
resumed = {"resumed/" + k.split("/.ATTRIBUTES")[0]: reader.get_tensor(k)
           for k in reader.get_variable_to_shape_map() if k.startswith(("model/", "ema/"))}
drawn = {f"{w}/{k}": np.load(f"{work}/{w}.npz")[k] for w in ("average", "trained") for k in ("images", "labels")}
np.savez_compressed(out, **resumed, **drawn)
PY
rm -rf "$WORK"
