#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's first command: install what is missing, build, and run the main job on the
# embedded local store with a small generated dataset. Needs no server. Each step prints what
# it shows and the exact command, so the output reads as a short tour of vstash.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${VSTASH_BUILD_DIR:-$root/build/release}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "installing missing Debian packages"
scripts/install-deps.sh --demo
say "building vstash into $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DVSTASH_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target vstash

demo=$root/build/demo
rm -rf "$demo" && mkdir -p "$demo"
cd "$demo"
vstash=$build/vstash
# A private store and profile file so the demo never touches the user's own.
cat > vstash.yaml <<YAML
profiles:
  local:
    type: local
    path: $demo/store/local.db
YAML
export VSTASH_CONFIG=$demo/vstash.yaml
unset VSTASH_PROFILE VSTASH_DATASET VSTASH_JSON VSTASH_QUIET

/usr/bin/python3 "$root/scripts/make_demo_data.py" "$demo"
say "demo data in $demo: 512 samples of 64 floats (train.npy), digit labels (labels.npy), metadata.jsonl"

# Shows the command as one would type it (JSON arguments in single quotes), then runs it.
step() {
  local shown="" a
  for a in "${@:2}"; do
    [[ $a =~ ^[A-Za-z0-9_./@=:,-]+$ ]] && shown+=" $a" || shown+=" '$a'"
  done
  printf '\n\033[1m# %s\033[0m\n$ vstash%s\n' "$1" "$shown"
  "$vstash" "${@:2}"
}
step "store the training set with its labels and metadata (local store, no server)" \
  ingest train.npy --labels labels.npy --metadata metadata.jsonl --dataset mnist-mini
step "what the store holds" stats
step "load training batch 3 (rows 16..23) into an NPY file" \
  batch --dataset mnist-mini --size 8 --offset 16 -o batch.npy
step "load a shuffled batch (seeded, reproducible) into HDF5" \
  batch --dataset mnist-mini --size 8 --shuffle --seed 7 -o shuffled.h5
step "nearest neighbours of a query vector, only training rows of digits 1 or 7" \
  query --dataset mnist-mini --vector-file query.npy -k 3 --filter '{"split": "train", "digit": {"$in": [1, 7]}}'
step "the same query as JSON for scripts (first hit)" \
  query --dataset mnist-mini --vector-file query.npy -k 1 --filter '{"digit": 7}' --json
step "save model parameters as a checkpoint with metrics" \
  checkpoint save --model demo-net --epoch 3 --params params.npy --metric loss=0.41 --metric acc=0.87
step "load the latest checkpoint back into restored.npy" \
  checkpoint load demo-net@latest -o restored.npy
step "list the model's checkpoints" checkpoint list --model demo-net
step "what deleting the holdout rows would remove (changes nothing)" \
  delete --dataset mnist-mini --filter '{"split": "holdout"}' --dry-run
step "delete them" delete --dataset mnist-mini --filter '{"split": "holdout"}' --yes
step "the dataset after the delete" stats --dataset mnist-mini

/usr/bin/python3 - "$demo" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
same = np.array_equal(np.load(f"{d}/train.npy")[16:24], np.load(f"{d}/batch.npy"))
restored = np.array_equal(np.load(f"{d}/params.npy"), np.load(f"{d}/restored.npy"))
print(f"\nbatch.npy equals train.npy rows 16..23: {same}; restored.npy equals params.npy: {restored}")
sys.exit(0 if same and restored else 1)
PY
printf '\ndemo finished. Outputs are in %s; try: %s --help, man %s/man/vstash.1\n' "$demo" "$vstash" "$root"
