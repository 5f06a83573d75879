#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and installs the pgvector extension for PostgreSQL 15 from Debian's source package.
# Debian 12 ships no pgvector binary, but trixie's source package builds cleanly against
# PostgreSQL 15. The deb-src stanza reuses this machine's own mirror, so no host name is
# written here.
set -euo pipefail

pg_config=/usr/lib/postgresql/15/bin/pg_config
if [[ -f "$($pg_config --sharedir)/extension/vector.control" ]]; then
  exit 0
fi

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)

sources=/etc/apt/sources.list.d/debian.sources
stanza=/etc/apt/sources.list.d/vstash-trixie-src.sources
if [[ ! -f "$stanza" ]]; then
  uris=$(sed -n 's/^URIs:[[:space:]]*//p' "$sources" | head -n 1)
  [[ -n "$uris" ]] || { echo "install-pgvector: no URIs: line in $sources" >&2; exit 1; }
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uris" | "${sudo_cmd[@]}" tee "$stanza" >/dev/null
  "${sudo_cmd[@]}" apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq pgvector >/dev/null 2>&1
cd pgvector-*/
make -s PG_CONFIG="$pg_config" >/dev/null
"${sudo_cmd[@]}" make -s PG_CONFIG="$pg_config" install >/dev/null
echo "install-pgvector: installed $(grep default_version vector.control)" >&2
