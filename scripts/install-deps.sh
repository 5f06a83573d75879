#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every Debian package vstash needs to build, test and benchmark, idempotently.
#   scripts/install-deps.sh          build + runtime libraries only
#   scripts/install-deps.sh --demo   also what the demo needs (numpy to generate its data)
#   scripts/install-deps.sh --test   also the servers and tools the test suites use
# Packages already present are not reinstalled; apt-get update runs only when something is missing.
set -euo pipefail

build_pkgs=(
  cmake g++ make pkg-config
  libcli11-dev libfmt-dev nlohmann-json3-dev libyaml-cpp-dev
  libcurl4-openssl-dev libpqxx-dev libhiredis-dev libhdf5-dev libsqlite3-dev libopenblas-dev libhnswlib-dev
  doctest-dev
)
test_pkgs=(
  python3 python3-numpy python3-h5py python3-psycopg python3-redis python3-hiredis
  postgresql-15 postgresql-server-dev-15 redis-server redis-tools
  mandoc groff-base zsh fish bash-completion dpkg-dev openssl ninja-build
  clang-14 libclang-rt-14-dev clang-format-14
  pybind11-dev python3-dev python3-pytest python3-torch python3-yaml
)

demo_pkgs=(python3 python3-numpy)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --demo) want+=("${demo_pkgs[@]}") ;;
  --test) want+=("${demo_pkgs[@]}" "${test_pkgs[@]}") ;;
  "") ;;
  *) echo "install-deps: unknown option $1" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]]; then
  "$(dirname "$0")/install-pgvector.sh"
fi
