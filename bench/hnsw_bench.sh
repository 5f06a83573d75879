#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The local store's HNSW index (issue 16, line 3: recall@10 >= 0.95 at >= 10x the exact
# scan's queries/s on 1M x 128) beside FAISS IndexHNSWFlat (Debian python3-faiss) with the
# same m / ef_construction / ef_search on the same data. Two data sets, both reported
# (recipes in bench/hnsw_peer.py):
#   clustered  a Gaussian mixture of 1,000 centres, L2-normalised, cosine: resembles real
#              embeddings; the target is read here.
#   normal     independent N(0, 1) values, euclidean: HNSW's worst case (no structure).
# For each: `vstash index` build time (after `ingest --no-index`), then 1,000 queries (fresh
# draws, not rows) answered by `vstash query --queries --exact` (the scan) and through the
# index at each ef, whole process each, and by FAISS (reading its saved index, setting
# efSearch and searching, in one Python process), alternating rounds, medians. Recall@10 of
# every answer is against FAISS IndexFlat's exact top-10 (vstash's --exact answer is checked
# against it too). FAISS builds only up to HNSW_BENCH_PEER_MAX_ROWS rows: its Debian build
# is several times slower to build than hnswlib here (100k x 128, m 32: 400 s vs 81 s).
#   bench/hnsw_bench.sh [VSTASH_BIN]           (default build/release/vstash)
#   HNSW_BENCH_DATA="clustered normal"  HNSW_BENCH_ROWS="100000 1000000"
#   HNSW_BENCH_EF="default 32 64 128 256 512"  ("default": no --ef: the breadth the build calibrated,
#                        shown as cal:EF, or cal:scan when it found the index not worth using)
#   HNSW_BENCH_M=16 HNSW_BENCH_EFC=200   (the profile defaults, set explicitly)
#   HNSW_BENCH_EF_SEARCH=N  sets hnsw_ef_search in the profile, which replaces calibration
#   HNSW_BENCH_TARGET=0.95  hnsw_target_recall
# After each build the calibration's own line (`vstash stats`: estimated recall@10 on sampled
# rows, or why the index is not used) is printed below the rows, beside the measured recall.
#   HNSW_BENCH_PEER_MAX_ROWS=100000  HNSW_BENCH_ROUNDS=3
#   HNSW_BENCH_WORK=DIR  keep the store, data and indexes there and reuse them on the next run
#                        (a 1M build takes minutes of both cores; "build s" then reads "kept")
#                        instead of a new /tmp dir removed at exit.
# bench/local_bench.sh runs it as its hnsw section.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vstash=${1:-$root/build/release/vstash}
peer=$root/bench/hnsw_peer.py
py=/usr/bin/python3
m=${HNSW_BENCH_M:-16}
efc=${HNSW_BENCH_EFC:-200}
efs=${HNSW_BENCH_EF_SEARCH:-}
target=${HNSW_BENCH_TARGET:-0.95}
rounds=${HNSW_BENCH_ROUNDS:-3}
peer_max=${HNSW_BENCH_PEER_MAX_ROWS:-100000}
dpkg -s python3-faiss >/dev/null 2>&1 || apt-get install -y -qq python3-faiss >/dev/null
keep=0
if [[ -n ${HNSW_BENCH_WORK:-} ]]; then
  keep=1
  work=$HNSW_BENCH_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/hnsw-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
export VSTASH_CONFIG=$work/vstash.yaml
printf 'profiles:\n  local:\n    type: local\n    path: %s/store.db\n    hnsw_m: %s\n    hnsw_ef_construction: %s\n    hnsw_target_recall: %s\n' \
  "$work" "$m" "$efc" "$target" >"$VSTASH_CONFIG"
[[ -z $efs ]] || printf '    hnsw_ef_search: %s\n' "$efs" >>"$VSTASH_CONFIG"
# This machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow a current OpenBLAS; unset for every side.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
secs() {  # secs COMMAND...: whole-process seconds, stdout to $work/out
  local t0 t1
  t0=$(now)
  "$@" >"$work/out"
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

echo "hnsw: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for vstash and FAISS alike; $(nproc) cores;" \
  "m=$m ef_construction=$efc ef_search=${efs:-calibrated (target $target)} on both sides; $rounds alternating rounds, medians; k=10, 1,000 queries"
printf '%-9s %-8s %-8s %9s %10s %10s %7s %8s %10s %8s\n' data rows ef "build s" "exact q/s" "hnsw q/s" ratio recall \
  "faiss q/s" "f.recall"
for kind in ${HNSW_BENCH_DATA:-clustered normal}; do
  metric=euclidean
  [[ $kind == clustered ]] && metric=cosine
  "$py" "$peer" data "$kind" 1000 128 2 "$work/q.npy"
  for rows in ${HNSW_BENCH_ROWS:-100000 1000000}; do
    ds=${kind}_$rows
    if [[ -f $work/$ds.built ]]; then  # kept from an earlier run (HNSW_BENCH_WORK)
      build=kept
    else
      "$py" "$peer" data "$kind" "$rows" 128 1 "$work/x.npy"
      "$py" "$peer" truth "$work/x.npy" "$work/q.npy" "$metric" 10 "$work/$ds.truth.npy" >/dev/null
      "$vstash" delete --dataset "$ds" --dataset-all --yes >/dev/null 2>&1 || true
      "$vstash" ingest "$work/x.npy" --dataset "$ds" --metric "$metric" --no-progress --no-index >/dev/null
      build=$(printf '%.1f' "$(secs "$vstash" index "$ds" --no-progress)")
      ((keep)) && touch "$work/$ds.built"
    fi
    cp "$work/$ds.truth.npy" "$work/truth.npy"
    calibration=$("$vstash" stats --json | "$py" -c 'import json, sys; print(json.load(sys.stdin)["extra"]["index"][sys.argv[1]])' "$ds")
    cal=$(sed -n 's/.*estimated recall@10 [0-9.]* at ef \([0-9]*\) .*/\1/p' <<<"$calibration")
    [[ -n $efs ]] && cal=$efs
    [[ -n $cal ]] || cal=scan
    with_peer=0
    fbuild=-
    if ((rows <= peer_max)); then
      with_peer=1
      [[ -f $work/x.npy ]] || "$py" "$peer" data "$kind" "$rows" 128 1 "$work/x.npy"
      fbuild=$(printf '%.1f' "$("$py" "$peer" build "$work/x.npy" "$metric" "$m" "$efc" "$work/faiss.index")")
    fi
    exact=()
    for ef in ${HNSW_BENCH_EF:-default 32 64 128 256 512}; do
      efarg=()
      [[ $ef == default ]] || efarg=(--ef "$ef")
      hs=() fs=()
      for _ in $(seq 1 "$rounds"); do
        if [[ $ef == default ]]; then  # the exact scan's rounds alternate with the default's
          exact+=("$(secs "$vstash" query --dataset "$ds" --queries "$work/q.npy" -k 10 --no-metadata --exact)")
          cp "$work/out" "$work/exact.ndjson"
        fi
        hs+=("$(secs "$vstash" query --dataset "$ds" --queries "$work/q.npy" -k 10 --no-metadata "${efarg[@]}")")
        cp "$work/out" "$work/ann.ndjson"
        if ((with_peer)); then
          fef=${ef/default/$cal}
          [[ $fef == scan ]] && fef=64
          fs+=("$("$py" "$peer" search "$work/faiss.index" "$work/q.npy" "$metric" "$fef" 10 \
            "$work/faiss.npy")")
        fi
      done
      e=$(median "${exact[@]}")
      h=$(median "${hs[@]}")
      fq=- frecall=-
      if ((with_peer)); then
        fq=$(printf '%.0f' "$(echo "1000 / $(median "${fs[@]}")" | bc -l)")
        frecall=$("$py" "$peer" recall "$work/faiss.npy" "$work/truth.npy")
      fi
      printf '%-9s %-8s %-8s %9s %10.0f %10.0f %7.1f %8s %10s %8s\n' "$kind" "$rows" "${ef/default/cal:$cal}" \
        "$build/$fbuild" "$(echo "1000 / $e" | bc -l)" "$(echo "1000 / $h" | bc -l)" \
        "$(echo "$e / $h" | bc -l)" "$("$py" "$peer" recall "$work/ann.ndjson" "$work/truth.npy")" "$fq" "$frecall"
    done
    echo "  ($kind $rows: index $calibration)"
    echo "  ($kind $rows: vstash --exact recall against FAISS IndexFlat:" \
      "$("$py" "$peer" recall "$work/exact.ndjson" "$work/truth.npy"); build s is vstash/faiss)"
    ((keep)) || "$vstash" delete --dataset "$ds" --dataset-all --yes >/dev/null 2>&1 || true
    rm -f "$work/x.npy" "$work/faiss.index"
  done
done
