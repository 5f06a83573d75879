#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loads each completion in its own shell and checks it against the binary: every command and
# every option that `vstash <command> --help` lists must be offered by the bash and fish
# completions (asked through the shells' own completion machinery) and named in the zsh one.
# Lints the man page (mandoc -Tlint and groff -ww, both silent) and checks it documents every
# command, every option, every exit code and every VSTASH_* variable set explicitly.
# Needs VSTASH_BIN and VSTASH_SOURCE_DIR (set by CTest).
set -uo pipefail
src=${VSTASH_SOURCE_DIR:?}
bin=${VSTASH_BIN:?}
bash_comp=$src/completions/vstash.bash
zsh_comp=$src/completions/_vstash
fish_comp=$src/completions/vstash.fish
man=$src/man/vstash.1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The completions call `vstash profiles list`: give them a private config and a `vstash` on PATH.
mkdir -p "$tmp/bin"
ln -s "$bin" "$tmp/bin/vstash"
export PATH=$tmp/bin:$PATH HOME=$tmp XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data
unset VSTASH_PROFILE VSTASH_DATASET VSTASH_JSON
export VSTASH_CONFIG=$tmp/vstash.yaml
printf 'profiles:\n  alpha:\n    type: local\n    path: %s/a.db\n  beta:\n    type: local\n    path: %s/b.db\n' \
  "$tmp" "$tmp" >"$VSTASH_CONFIG"

# ---- what the binary says -----------------------------------------------------------------
# `vstash [path] --help`, run once per path and then read from a file: the checks below read
# each one up to six times, and a sanitized binary takes a while to start.
mkdir -p "$tmp/help"
help_of() {
  local key="vstash $*"
  local file="$tmp/help/${key// /_}"
  [[ -f $file ]] || "$bin" "$@" --help >"$file"
  cat "$file"
}
# Subcommand names of `vstash [path] --help`, and the long/short options of its Options.
subcommands_of() { help_of "$@" | awk '/^Subcommands:/{s=1;next} /^[^ ]/{s=0} s&&NF{print $1}'; }
options_of() {
  help_of "$@" | awk '/^Options:/{s=1;next} /^[^ ]/{s=0} s' |
    grep -oE '^ +(-[A-Za-z0-9],)?--[a-z][a-z0-9-]*' | tr ',' '\n' | tr -d ' ' |
    grep -vE '^(-h|--help|--version)$'
}
mapfile -t top_commands < <(subcommands_of)
paths=()
for c in "${top_commands[@]}"; do
  mapfile -t subs < <(subcommands_of "$c")
  if ((${#subs[@]})); then
    for s in "${subs[@]}"; do paths+=("$c $s"); done
  else
    paths+=("$c")
  fi
done
((${#top_commands[@]} >= 12)) || fail "vstash --help lists only ${#top_commands[@]} commands: ${top_commands[*]}"
mapfile -t global_options < <(options_of)
((${#global_options[@]} >= 7)) || fail "vstash --help lists only ${#global_options[@]} global options"

# ---- bash ---------------------------------------------------------------------------------
bash_complete() {  # bash_complete WORD... -> one candidate per line for the last word
  local mode=$1
  shift
  bash --norc --noprofile -c '
    if [[ $1 == with-bash-completion ]]; then source /usr/share/bash-completion/bash_completion; fi
    source "$2"; shift 2
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _vstash vstash "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$mode" "$bash_comp" "$@"
}
spec=$(bash --norc --noprofile -c "source '$bash_comp'; complete -p vstash" 2>&1)
[[ $spec == "complete -F _vstash vstash" ]] && pass "bash: complete -p vstash" || fail "bash: complete -p: $spec"
for mode in plain with-bash-completion; do
  got=$(bash_complete "$mode" vstash "")
  for c in "${top_commands[@]}"; do
    grep -qx -- "$c" <<<"$got" || fail "bash($mode): command $c not offered"
  done
  for p in "${paths[@]}"; do
    read -ra words <<<"$p"
    got=$(bash_complete "$mode" vstash "${words[@]}" -)
    for o in $(options_of "${words[@]}") "${global_options[@]}"; do
      grep -qx -- "$o" <<<"$got" || fail "bash($mode): vstash $p: option $o not offered"
    done
  done
  got=$(bash_complete "$mode" vstash checkpoint "")
  [[ $(sort <<<"$got" | tr '\n' ' ') == $(subcommands_of checkpoint | sort | tr '\n' ' ') ]] ||
    fail "bash($mode): checkpoint subcommands: $got"
  got=$(bash_complete "$mode" vstash ingest x.npy --metric "")
  [[ $(sort <<<"$got" | tr '\n' ' ') == "cosine dot euclidean " ]] || fail "bash($mode): --metric values: $got"
  got=$(bash_complete "$mode" vstash --profile "")
  [[ $(sort <<<"$got" | tr '\n' ' ') == "alpha beta " ]] || fail "bash($mode): --profile values: $got"
  touch "$tmp/train-data.npy"
  got=$(cd "$tmp" && bash_complete "$mode" vstash ingest train-d)
  [[ $got == train-data.npy ]] || fail "bash($mode): ingest file name: $got"
done
pass "bash: ${#paths[@]} command paths checked"

# ---- zsh ----------------------------------------------------------------------------------
out=$(zsh -fc "fpath=('$src/completions' \$fpath); autoload -Uz compinit; compinit -u -d '$tmp/zcompdump';
  print -r -- \"\${_comps[vstash]}\"; autoload +X _vstash && print loaded" 2>&1)
[[ $out == $'_vstash\nloaded' ]] && pass "zsh: compinit binds _vstash" || fail "zsh: compinit: $out"
zsh -n "$zsh_comp" || fail "zsh -n $zsh_comp"
# Calls the completion function with the completion builtins replaced by stubs that print the
# candidates (one per line), as zsh would have offered them.
cat >"$tmp/zsh_complete.zsh" <<ZSH
fpath=('$src/completions' \$fpath)
autoload -Uz compinit; compinit -u -d '$tmp/zcompdump'
_describe() { local arr=\${@[-1]}; print -rl -- "\${(@P)arr}" | sed 's/\\\\:/@@/g; s/:.*//; s/@@/:/g' }
compadd() { [[ \$1 == -- ]] && shift; print -rl -- "\$@" }
_files() { print -r -- '<files>' }
_message() { print -r -- '<message>' }
_call_program() { shift; "\$@" }
words=("\$@"); CURRENT=\$#
autoload -Uz _vstash
_vstash
ZSH
zsh_complete() { zsh -f "$tmp/zsh_complete.zsh" "$@"; }
got=$(zsh_complete vstash "")
for c in "${top_commands[@]}"; do
  grep -qx -- "$c" <<<"$got" || fail "zsh: command $c not offered"
done
for p in "${paths[@]}"; do
  read -ra words <<<"$p"
  got=$(zsh_complete vstash "${words[@]}" -)
  for o in $(options_of "${words[@]}") "${global_options[@]}"; do
    grep -qx -- "$o" <<<"$got" || fail "zsh: vstash $p: option $o not offered"
  done
done
got=$(zsh_complete vstash ingest x.npy --metric "")
[[ $(sort <<<"$got" | tr '\n' ' ') == "cosine dot euclidean " ]] || fail "zsh: --metric values: $got"
got=$(zsh_complete vstash --profile "")
[[ $(sort <<<"$got" | tr '\n' ' ') == "alpha beta " ]] || fail "zsh: --profile values: $got"
got=$(zsh_complete vstash ingest --labels "")
[[ $got == "<files>" ]] || fail "zsh: ingest --labels: $got"
pass "zsh: ${#paths[@]} command paths checked"

# ---- fish ---------------------------------------------------------------------------------
fish -n "$fish_comp" || fail "fish -n $fish_comp"
fish_complete() { fish --no-config -c "source '$fish_comp'; complete -C '$1'" | cut -f1; }
got=$(fish_complete "vstash ")
for c in "${top_commands[@]}"; do
  grep -qx -- "$c" <<<"$got" || fail "fish: command $c not offered"
done
for p in "${paths[@]}"; do
  got=$(fish_complete "vstash $p -")
  read -ra words <<<"$p"
  for o in $(options_of "${words[@]}") "${global_options[@]}"; do
    grep -qx -- "$o" <<<"$got" || fail "fish: vstash $p: option $o not offered"
  done
done
got=$(fish_complete "vstash ingest x.npy --metric ")
[[ $(sort <<<"$got" | tr '\n' ' ') == "cosine dot euclidean " ]] || fail "fish: --metric values: $got"
got=$(fish_complete "vstash --profile ")
[[ $(sort <<<"$got" | tr '\n' ' ') == "alpha beta " ]] || fail "fish: --profile values: $got"
got=$(fish_complete "vstash profiles show ")
[[ $(sort <<<"$got" | tr '\n' ' ') == "alpha beta " ]] || fail "fish: profiles show: $got"
pass "fish: ${#paths[@]} command paths checked"

# ---- man page -----------------------------------------------------------------------------
lint=$(mandoc -Tlint "$man" 2>&1) && [[ -z $lint ]] && pass "mandoc -Tlint clean" || fail "mandoc -Tlint: $lint"
lint=$(groff -ww -man -z "$man" 2>&1) && [[ -z $lint ]] && pass "groff -ww clean" || fail "groff -ww: $lint"
text=$(mandoc -Tascii -Owidth=200 "$man" | sed 's/.\x08//g')
for p in "${paths[@]}"; do
  grep -qE "^ +$p( |$)" <<<"$text" || fail "man: no section for 'vstash $p'"
  read -ra words <<<"$p"
  for o in $(options_of "${words[@]}"); do
    grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" <<<"$text" || fail "man: vstash $p: option $o not documented"
  done
done
for o in "${global_options[@]}"; do
  grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" <<<"$text" || fail "man: global option $o not documented"
done
for code in 0 1 2 3 4 5 130; do
  grep -A1 "^EXIT STATUS" -A30 <<<"$text" | grep -qE "^ +$code( |$)" || fail "man: exit code $code not documented"
done
for section in NAME SYNOPSIS DESCRIPTION COMMANDS PROFILES ENVIRONMENT "EXIT STATUS" EXAMPLES; do
  grep -qx "$section" <<<"$text" || fail "man: section $section missing"
done
# Every explicit VSTASH_* variable of --help (the generated VSTASH_<CMD>_<OPT> follow one rule).
for v in $(for p in "" "${paths[@]}"; do help_of $p; done | grep -oE 'VSTASH_[A-Z_]+' | sort -u); do
  grep -q -- "$v" <<<"$text" && continue
  case $v in
    VSTASH_INGEST_* | VSTASH_BATCH_* | VSTASH_EXPORT_* | VSTASH_QUERY_* | VSTASH_INSERT_* | VSTASH_UPDATE_* | \
      VSTASH_GET_* | VSTASH_DELETE_* | VSTASH_CHECKPOINT_* | VSTASH_PROFILES_* | VSTASH_PROGRESS_* | VSTASH_STATS_* | \
      VSTASH_COPY_* | VSTASH_CHECK_*) ;;
    *) fail "man: variable $v not documented" ;;
  esac
done
pass "man page: ${#paths[@]} command paths checked"

if ((failures)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "all completion and man page checks passed"
