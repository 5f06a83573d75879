# SPDX-License-Identifier: MIT
# The redis-server processes of redis.sh and redis_cluster.sh (sourced by both): is a pidfile's
# process our server, has a server we started come up on its port (ours, not a foreign one),
# has it gone. Messages name the calling script.

# redis_running PIDFILE: the pid in PIDFILE is alive and is a redis-server.
redis_running() {
  [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null &&
    grep -q redis-server "/proc/$(cat "$1")/cmdline" 2>/dev/null
}

# redis_await PID LOG PORT CLI...: wait (20 s at most) for the redis-server PID, started on
# 127.0.0.1:PORT and logging to LOG, until `CLI... info server` (redis-cli with our password)
# reports PID as its process_id. 0: it is up and ours; 1: it could not bind its port(s);
# 2: it exited otherwise or did not answer in time (its log's tail on stderr).
redis_await() {
  local pid=$1 log=$2 port=$3
  shift 3
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      grep -q "Address already in use" "$log" 2>/dev/null && return 1
      echo "$(basename "$0"): redis-server exited on 127.0.0.1:$port:" >&2
      tail -20 "$log" >&2 || true
      return 2
    fi
    [[ $("$@" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p') == "$pid" ]] && return 0
    sleep 0.1
  done
  echo "$(basename "$0"): server not ready on 127.0.0.1:$port after 20 s" >&2
  tail -20 "$log" >&2 || true
  return 2
}

# redis_wait_gone PID: wait (20 s at most) until PID has exited; 1 if it has not.
redis_wait_gone() {
  local pid=$1
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "$(basename "$0"): server pid $pid still running after 20 s" >&2
  return 1
}
