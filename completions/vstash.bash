# SPDX-License-Identifier: MIT
# Bash completion for vstash: subcommands, every option of each, file names where a file is
# expected, metric names, and profile names read from `vstash profiles list --json`.
# Self-contained: works with or without the bash-completion package loaded.
# Keep in step with `vstash <command> --help` (tests/integration/completions_test.sh checks).

_vstash_profiles() {
  # Profile names of the profile file the current command line would use.
  local -a cfg=()
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    if [[ ${COMP_WORDS[i]} == --config ]]; then
      cfg=(--config "${COMP_WORDS[i + 1]}")
    fi
  done
  "${COMP_WORDS[0]}" "${cfg[@]}" profiles list --json 2>/dev/null |
    sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p'
}

_vstash() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()

  local global_opts="--profile --config --dataset --json -q --quiet -v --verbose --no-progress -h --help"
  local commands="ingest batch export query insert update get delete checkpoint stats profiles progress"

  # The command (and sub-command) words typed so far, skipping options and their values.
  local cmd="" sub="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --profile | --config | --dataset) ((i++)); continue ;;
      -*) continue ;;
    esac
    if [[ -z $cmd ]]; then
      cmd=$w
    elif [[ -z $sub && ($cmd == checkpoint || $cmd == profiles) ]]; then
      sub=$w
    fi
  done

  # Values of options.
  case $prev in
    --profile)
      mapfile -t COMPREPLY < <(compgen -W "$(_vstash_profiles)" -- "$cur")
      return ;;
    --config | --labels | --metadata | --vector-file | --queries | --params | -o | --output)
      if [[ $prev == --metadata && $cmd != ingest ]]; then
        return  # a JSON object or @FILE
      fi
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return ;;
    --ids)
      if [[ $cmd == ingest ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      fi
      return ;;
    --metric)
      [[ $cmd == ingest ]] && mapfile -t COMPREPLY < <(compgen -W "cosine euclidean dot" -- "$cur")
      return ;;
    --dataset | --batch-size | --block-rows | --size | --offset | --seed | -k | --top-k | --filter | \
      --vector | --id | --label | --checkpoint | --model | --epoch | --run)
      return ;;
  esac

  local opts=""
  case $cmd in
    "") mapfile -t COMPREPLY < <(compgen -W "$commands $global_opts --version" -- "$cur"); return ;;
    ingest) opts="--labels --ids --metadata --metric --batch-size --append --resume --dry-run" ;;
    batch) opts="--size --offset --shuffle --seed -o --output" ;;
    export) opts="-o --output --block-rows" ;;
    query) opts="--vector-file --queries -k --top-k --filter --include-values --no-metadata" ;;
    insert) opts="--id --vector --vector-file --metadata --label --upsert" ;;
    update) opts="--id --vector --vector-file --metadata" ;;
    get) opts="--include-values" ;;
    delete) opts="--ids --id --filter --dataset-all --checkpoint --dry-run -y --yes" ;;
    stats) opts="" ;;
    progress) opts="--run" ;;
    checkpoint)
      case $sub in
        "") mapfile -t COMPREPLY < <(compgen -W "save load list $global_opts" -- "$cur"); return ;;
        save) opts="--model --epoch --params --metric --metadata" ;;
        load) opts="-o --output" ;;
        list) opts="--model" ;;
      esac ;;
    profiles)
      case $sub in
        "") mapfile -t COMPREPLY < <(compgen -W "list show $global_opts" -- "$cur"); return ;;
        show)
          if [[ $cur != -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$(_vstash_profiles)" -- "$cur")
            return
          fi ;;
      esac ;;
  esac
  if [[ $cur == -* || $cmd == stats ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts $global_opts" -- "$cur")
  elif [[ $cmd == ingest ]]; then
    # DATA: an NPY, HDF5 or JSONL file.
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}

complete -F _vstash vstash
