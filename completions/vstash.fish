# SPDX-License-Identifier: MIT
# Fish completion for vstash: subcommands, every option of each, file names where a file is
# expected, metric names, profile names from `vstash profiles list --json`.
# Keep in step with `vstash <command> --help` (tests/integration/completions_test.sh checks).

set -l commands ingest batch export query insert update get delete checkpoint stats profiles progress

function __vstash_profiles
    vstash profiles list --json 2>/dev/null | string replace -rf '^\s*"name": "(.*)",?$' '$1'
end

# True when the command line's first word after `vstash` is $argv[1] (and, if given, the
# second is $argv[2]).
function __vstash_using
    set -l words (commandline -opc)
    set -e words[1]
    set -l positional
    set -l skip 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case --profile --config --dataset
                set skip 1
            case '-*'
            case '*'
                set -a positional $w
        end
    end
    test (count $positional) -ge 1; and test "$positional[1]" = $argv[1]; or return 1
    if set -q argv[2]
        test (count $positional) -ge 2; and test "$positional[2]" = $argv[2]
    end
end

complete -c vstash -f

# Global options, valid before or after the command.
complete -c vstash -l profile -x -a '(__vstash_profiles)' -d 'Profile to use'
complete -c vstash -l config -r -F -d 'Profile file'
complete -c vstash -l dataset -x -d 'Dataset to act on'
complete -c vstash -l json -d 'Machine-readable JSON on stdout'
complete -c vstash -s q -l quiet -d 'No diagnostics on stderr except errors'
complete -c vstash -s v -l verbose -d 'More diagnostics on stderr'
complete -c vstash -l no-progress -d 'Never draw progress bars'
complete -c vstash -s h -l help -d 'Show help'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -l version -d 'Print the version and backends'

# Commands.
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a ingest -d 'Load an NPY, HDF5 or JSONL file into a dataset'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a batch -d 'Write one training batch to NPY or HDF5'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a export -d 'Write a whole dataset to NPY or HDF5'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a query -d 'Find the nearest rows to a vector'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a insert -d 'Insert one vector'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a update -d 'Replace a vector and/or merge metadata'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a get -d 'Show rows by id'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a delete -d 'Delete rows, a dataset or a checkpoint'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a checkpoint -d 'Save, load and list model checkpoints'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a stats -d 'Show datasets, checkpoints and store size'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a profiles -d 'List profiles or show one'
complete -c vstash -n "not __fish_seen_subcommand_from $commands" -a progress -d 'Show training progress records'

# ingest
complete -c vstash -n '__vstash_using ingest' -F -d 'Data file (NPY, FILE.h5:/path, JSONL)'
complete -c vstash -n '__vstash_using ingest' -l labels -r -F -d 'Labels array, one per row'
complete -c vstash -n '__vstash_using ingest' -l ids -r -F -d 'String ids file'
complete -c vstash -n '__vstash_using ingest' -l metadata -r -F -d 'JSONL file, one metadata object per row'
complete -c vstash -n '__vstash_using ingest' -l metric -x -a 'cosine euclidean dot' -d 'Distance metric'
complete -c vstash -n '__vstash_using ingest' -l batch-size -x -d 'Rows per write'
complete -c vstash -n '__vstash_using ingest' -l append -d 'Add rows to a non-empty dataset'
complete -c vstash -n '__vstash_using ingest' -l resume -d 'Finish an interrupted ingest'
complete -c vstash -n '__vstash_using ingest' -l dry-run -d 'Show what would be written; write nothing'

# batch
complete -c vstash -n '__vstash_using batch' -l size -x -d 'Rows in the batch'
complete -c vstash -n '__vstash_using batch' -l offset -x -d 'Position of the first row'
complete -c vstash -n '__vstash_using batch' -l shuffle -d 'Take the batch from a seeded permutation'
complete -c vstash -n '__vstash_using batch' -l seed -x -d 'Permutation seed'
complete -c vstash -n '__vstash_using batch' -s o -l output -r -F -d 'Output NPY or HDF5 file'

# export
complete -c vstash -n '__vstash_using export' -s o -l output -r -F -d 'Output NPY or HDF5 file'
complete -c vstash -n '__vstash_using export' -l block-rows -x -d 'Rows read per request'

# query
complete -c vstash -n '__vstash_using query' -l vector-file -r -F -d 'Query vector from an NPY/HDF5 file'
complete -c vstash -n '__vstash_using query' -l queries -r -F -d '2-D array of queries (NDJSON out)'
complete -c vstash -n '__vstash_using query' -s k -l top-k -x -d 'Number of results'
complete -c vstash -n '__vstash_using query' -l filter -x -d 'Metadata filter JSON or @FILE'
complete -c vstash -n '__vstash_using query' -l include-values -d "Include each hit's vector"
complete -c vstash -n '__vstash_using query' -l no-metadata -d 'Leave metadata out'

# insert
complete -c vstash -n '__vstash_using insert' -l id -x -d 'Row id'
complete -c vstash -n '__vstash_using insert' -l vector -x -d 'Vector JSON or @FILE'
complete -c vstash -n '__vstash_using insert' -l vector-file -r -F -d 'Vector from an NPY/HDF5 file'
complete -c vstash -n '__vstash_using insert' -l metadata -x -d 'Metadata JSON object or @FILE'
complete -c vstash -n '__vstash_using insert' -l label -x -d 'Label (number or JSON array)'
complete -c vstash -n '__vstash_using insert' -l upsert -d 'Replace the row if the id exists'

# update
complete -c vstash -n '__vstash_using update' -l id -x -d 'Row id'
complete -c vstash -n '__vstash_using update' -l vector -x -d 'New vector JSON or @FILE'
complete -c vstash -n '__vstash_using update' -l vector-file -r -F -d 'New vector from an NPY/HDF5 file'
complete -c vstash -n '__vstash_using update' -l metadata -x -d 'Keys to merge, JSON or @FILE'

# get
complete -c vstash -n '__vstash_using get' -l include-values -d "Include each row's vector"

# delete
complete -c vstash -n '__vstash_using delete' -l ids -x -d 'Comma-separated row ids'
complete -c vstash -n '__vstash_using delete' -l id -x -d 'One row id (repeatable)'
complete -c vstash -n '__vstash_using delete' -l filter -x -d 'Metadata filter JSON or @FILE'
complete -c vstash -n '__vstash_using delete' -l dataset-all -d 'Drop the whole dataset'
complete -c vstash -n '__vstash_using delete' -l checkpoint -x -d 'Checkpoint MODEL@EPOCH or MODEL@latest'
complete -c vstash -n '__vstash_using delete' -l dry-run -d 'Show what would be deleted; delete nothing'
complete -c vstash -n '__vstash_using delete' -s y -l yes -d 'Confirm a bulk delete without a prompt'

# progress
complete -c vstash -n '__vstash_using progress' -l run -x -d 'Only this run'

# checkpoint save|load|list
complete -c vstash -n '__vstash_using checkpoint; and not __fish_seen_subcommand_from save load list' -a save -d 'Save arrays, metrics and metadata'
complete -c vstash -n '__vstash_using checkpoint; and not __fish_seen_subcommand_from save load list' -a load -d 'Print a checkpoint and write its arrays'
complete -c vstash -n '__vstash_using checkpoint; and not __fish_seen_subcommand_from save load list' -a list -d 'List checkpoints'
complete -c vstash -n '__vstash_using checkpoint save' -l model -x -d 'Model name'
complete -c vstash -n '__vstash_using checkpoint save' -l epoch -x -d 'Epoch number'
complete -c vstash -n '__vstash_using checkpoint save' -l params -r -F -d 'Parameters NPY or HDF5 file'
complete -c vstash -n '__vstash_using checkpoint save' -l metric -x -d 'NAME=NUMBER (repeatable)'
complete -c vstash -n '__vstash_using checkpoint save' -l metadata -x -d 'Metadata JSON object or @FILE'
complete -c vstash -n '__vstash_using checkpoint load' -s o -l output -r -F -d 'Write the arrays to NPY or HDF5'
complete -c vstash -n '__vstash_using checkpoint list' -l model -x -d 'Only this model'

# profiles list|show
complete -c vstash -n '__vstash_using profiles; and not __fish_seen_subcommand_from list show' -a list -d 'List the profiles'
complete -c vstash -n '__vstash_using profiles; and not __fish_seen_subcommand_from list show' -a show -d 'Show one profile, secrets redacted'
complete -c vstash -n '__vstash_using profiles show' -x -a '(__vstash_profiles)' -d 'Profile'
