#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# README's first command: install what is missing, build, and run the main job on the
# embedded local store with a small generated dataset. Needs no server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${VSTASH_BUILD_DIR:-$root/build/release}

scripts/install-deps.sh --demo
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DVSTASH_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target vstash

demo=$root/build/demo
rm -rf "$demo" && mkdir -p "$demo"
cd "$demo"
vstash=$build/vstash
# A private store and config so the demo never touches the user's own.
cat > vstash.yaml <<YAML
profiles:
  local:
    type: local
    path: $demo/store/local.db
YAML
export VSTASH_CONFIG=$demo/vstash.yaml

/usr/bin/python3 "$root/scripts/make_demo_data.py" "$demo"

step() { printf '\n\033[1m$ vstash %s\033[0m\n' "$*"; "$vstash" "$@"; }
step ingest train.npy --labels labels.npy --metadata metadata.jsonl --dataset mnist-mini
step stats
step batch --dataset mnist-mini --size 8 --offset 16 -o batch.npy
step batch --dataset mnist-mini --size 8 --shuffle --seed 7 -o shuffled.h5
step query --dataset mnist-mini --vector-file query.npy -k 3 --filter '{"split": "train", "digit": {"$in": [1, 7]}}'
step checkpoint save --model demo-net --epoch 3 --params params.npy --metric loss=0.41 --metric acc=0.87
step checkpoint load demo-net@latest -o restored.npy
step checkpoint list --model demo-net
step delete --dataset mnist-mini --filter '{"split": "holdout"}' --yes
step stats --dataset mnist-mini
printf '\ndemo finished: outputs in %s\n' "$demo"
