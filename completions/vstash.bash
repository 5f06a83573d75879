# SPDX-License-Identifier: MIT
# Bash completion for vstash. Commands and options are read from `vstash [COMMAND] --help`,
# so they always match the binary; file names are offered where a file is expected, metric
# names for --metric, the choices CLI11 prints ({a,b,c}) for options that have them, and
# profile names from `vstash profiles list --json`. Works with or without bash-completion.

# Lines "NAME<TAB>TYPE" for the Options of `vstash WORDS... --help` (TYPE empty for flags;
# every spelling of an option, e.g. -k and --top-k, gets its own line), and "NAME<TAB>@cmd"
# for its Subcommands.
_vstash_help() {
  "${COMP_WORDS[0]}" "$@" --help 2>/dev/null | awk '
    /^Options:/ { sec = "o"; next }
    /^Subcommands:/ { sec = "s"; next }
    /^[^ ]/ { sec = "" }
    sec == "s" && /^  [a-z]/ { print $1 "\t@cmd" }
    sec == "o" && /^  -/ {
      type = ($2 ~ /^[A-Z]/) ? $2 : ""
      n = split($1, names, ",")
      for (i = 1; i <= n; i++) print names[i] "\t" type
    }'
}

_vstash_profiles() {
  local -a cfg=()
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    [[ ${COMP_WORDS[i]} == --config ]] && cfg=(--config "${COMP_WORDS[i + 1]}")
  done
  "${COMP_WORDS[0]}" "${cfg[@]}" profiles list --json 2>/dev/null |
    sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p'
}

_vstash_files() {
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

_vstash() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()

  # The command path typed so far (e.g. "checkpoint save"), skipping options and the values
  # of the global options that take one.
  local -a path=()
  local i w root_help here_help
  root_help=$(_vstash_help)
  here_help=$root_help
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --profile | --config | --dataset) ((i++)); continue ;;
      -*) continue ;;
    esac
    if grep -qx "$w	@cmd" <<<"$here_help"; then
      path+=("$w")
      here_help=$(_vstash_help "${path[@]}")
    fi
  done
  local cmd=${path[0]:-}

  # The value of an option.
  local prev_type
  prev_type=$(printf '%s\n%s\n' "$here_help" "$root_help" | awk -F'\t' -v o="$prev" '$1 == o { print $2; exit }')
  if [[ $prev == -* && -n $prev_type && $prev_type != @cmd ]]; then
    case $prev in
      --profile) mapfile -t COMPREPLY < <(compgen -W "$(_vstash_profiles)" -- "$cur") ;;
      --metric) [[ $cmd == ingest ]] && mapfile -t COMPREPLY < <(compgen -W "cosine euclidean dot" -- "$cur") ;;
      --config | --labels | --vector-file | --queries | --params | -o | --output) _vstash_files ;;
      --metadata | --ids) [[ $cmd == ingest ]] && _vstash_files ;;
      *)
        if [[ $prev_type =~ \{(.*)\} ]]; then
          mapfile -t COMPREPLY < <(compgen -W "${BASH_REMATCH[1]//,/ }" -- "$cur")
        fi ;;
    esac
    return
  fi

  if [[ $cur == -* ]]; then
    local opts
    opts=$(printf '%s\n%s\n' "$here_help" "$root_help" | awk -F'\t' '$2 != "@cmd" { print $1 }' | sort -u)
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    return
  fi
  local subs
  subs=$(awk -F'\t' '$2 == "@cmd" { print $1 }' <<<"$here_help")
  if [[ -n $subs ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
  elif [[ $cmd == ingest ]]; then
    _vstash_files  # DATA: an NPY, HDF5 or JSONL file
  elif [[ ${path[*]} == "profiles show" ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_vstash_profiles)" -- "$cur")
  fi
}

complete -F _vstash vstash
