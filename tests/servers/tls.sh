#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Test certificates, made at test time with the openssl CLI (ECDSA P-256, valid 2 days).
#   tls.sh make DIR   write into DIR (created; replaced files):
#     ca.pem ca.key                the test CA
#     server.pem server.key        signed by the CA, for localhost and 127.0.0.1 (the servers')
#     wronghost.pem wronghost.key  signed by the CA, for wrong.example only (host name check)
#     client.pem client.key        signed by the CA, CN "vstash", for client authentication
#     other-ca.pem other-ca.key    a second CA that signed none of these (CA check)
set -euo pipefail

make_ca() {  # make_ca DIR NAME CN
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
    -subj "/CN=$3" -keyout "$1/$2.key" -out "$1/$2.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

make_leaf() {  # make_leaf DIR NAME CN EXTENSIONS
  local dir=$1 name=$2
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=$3" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$4" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
}

make_all() {
  local dir=$1
  mkdir -p "$dir"
  make_ca "$dir" ca "vstash test CA"
  make_ca "$dir" other-ca "vstash other test CA"
  make_leaf "$dir" server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  make_leaf "$dir" wronghost wrong.example "subjectAltName=DNS:wrong.example
extendedKeyUsage=serverAuth"
  make_leaf "$dir" client vstash "extendedKeyUsage=clientAuth"
  chmod 600 "$dir"/*.key
  chmod 644 "$dir"/*.pem
}

case ${1:-} in
  make) make_all "${2:?usage: tls.sh make DIR}" ;;
  *) echo "usage: tls.sh make DIR" >&2; exit 2 ;;
esac
