# SPDX-License-Identifier: MIT
# Loopback ports for the test servers (sourced by the start scripts, which set $state).
# Each server is started on a candidate port and must bind it itself: when another process
# holds the port the server fails (EADDRINUSE) and the next candidate is tried, so there is no
# window between choosing a port and binding it, and a foreign server is never used. The start
# script also checks that the server answering is its own (pid, socket in its own directory).
# The port in use is published in $state/NAME.port for the tests (and in the profile YAMLs).
# The doubles are started with --port 0 as the fallback: the kernel picks (start_double).

# candidate_ports PREFERRED: the preferred port (VSTASH_TEST_*_PORT), then 40 random ports
# below Linux's ephemeral range (32768-60999), so they do not collide with outgoing sockets.
candidate_ports() {
  echo "$1"
  local i
  for i in $(seq 1 40); do
    echo $((20000 + (RANDOM * 32768 + RANDOM) % 12768))
  done
}

# publish_port NAME PORT: write $state/NAME.port (atomically: a reader never sees half a number).
publish_port() {
  printf '%s\n' "$2" >"$state/$1.port.tmp"
  mv -f "$state/$1.port.tmp" "$state/$1.port"
}

# published_port NAME DEFAULT: the port start published, else DEFAULT.
published_port() {
  if [[ -f $state/$1.port ]]; then
    cat "$state/$1.port"
  else
    echo "$2"
  fi
}

# port_refused PORT: nothing accepts connections on 127.0.0.1:PORT right now.
port_refused() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_double PREFERRED LOG PIDFILE PORTFILE CMD...: start a protocol double (CMD, which takes
# --port and --port-file, see tests/doubles/doublenet.py) in the background on PREFERRED, or
# on the kernel's pick (--port 0) when PREFERRED is taken, and set $port to the port it bound.
# The double writes PORTFILE only after binding, so the port is its own. Bounded: 30 s.
start_double() {
  local preferred=$1 log=$2 pidfile=$3 portfile=$4 candidate pid
  shift 4
  for candidate in "$preferred" 0; do
    rm -f "$portfile"
    "$@" --port "$candidate" --port-file "$portfile" >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    for _ in $(seq 1 300); do
      if [[ -s $portfile ]]; then
        port=$(cat "$portfile")
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$(basename "$0"): the double did not listen within 30 s" >&2
      cat "$log" >&2
      return 1
    fi
    grep -q "Address already in use" "$log" ||
      { echo "$(basename "$0"): the double exited:" >&2; cat "$log" >&2; return 1; }
  done
  return 1
}
