# SPDX-License-Identifier: MIT
# Fish completion for vstash. Commands and options (with their descriptions) are read from
# `vstash [COMMAND] --help`, so they always match the binary; file names are offered where a
# file is expected, metric names for --metric, the choices CLI11 prints ({a,b,c}) for options
# that have them, and profile names from `vstash profiles list --json`.

# Lines "NAME<TAB>TYPE<TAB>DESCRIPTION" of `vstash ARGS... --help`: TYPE is @cmd for a
# subcommand, empty for a flag, else the value type (TEXT, INT, TEXT:{a,b}).
function __vstash_help
    set -l bin (commandline -opc)[1]
    command -q $bin; or return
    $bin $argv --help 2>/dev/null | awk '
        function flush() { if (pending != "") { n = split(pending, names, ","); for (i = 1; i <= n; i++) print names[i] "\t" ptype "\t" pdesc; pending = "" } }
        /^Options:/ { flush(); sec = "o"; next }
        /^Subcommands:/ { flush(); sec = "s"; next }
        /^[^ ]/ { flush(); sec = ""; next }
        sec == "s" && /^  [a-z]/ { d = $0; sub(/^  [^ ]+ +/, "", d); print $1 "\t@cmd\t" d; next }
        sec == "o" && /^  -/ {
            flush(); pending = $1; ptype = ($2 ~ /^[A-Z]/) ? $2 : ""
            d = substr($0, 31); gsub(/^ +/, "", d); pdesc = (length($0) > 30 && substr($0, 29, 2) == "  ") ? d : ""
            next
        }
        sec == "o" && /^    / && pending != "" { d = $0; gsub(/^ +/, "", d); if (pdesc == "") pdesc = d; next }
        END { flush() }'
end

function __vstash_profiles
    set -l bin (commandline -opc)[1]
    command -q $bin; or return
    $bin profiles list --json 2>/dev/null | string replace -rf '^\s*"name": "(.*)",?$' '$1'
end

function __vstash_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l root (__vstash_help)
    set -l here $root
    set -l path
    set -l skip 0
    for w in $words[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case --profile --config --dataset
                set skip 1
            case '-*'
            case '*'
                if string match -q -- "$w	@cmd	*" $here
                    set -a path $w
                    set here (__vstash_help $path)
                end
        end
    end
    set -l prev $words[-1]
    # The value of an option.
    if string match -q -- '-*' $prev
        set -l line (string match -- "$prev	*" $here $root)[1]
        set -l type (string split \t -- $line)[2]
        if test -n "$type"; and test "$type" != @cmd
            switch $prev
                case --profile
                    __vstash_profiles
                case --metric
                    test "$path[1]" = ingest; and printf '%s\n' cosine euclidean dot
                case --config --labels --vector-file --queries --params -o --output
                    __fish_complete_path $cur
                case --metadata --ids
                    test "$path[1]" = ingest; and __fish_complete_path $cur
                case '*'
                    set -l choices (string match -r '\{(.*)\}' -- $type)[2]
                    test -n "$choices"; and string split , -- $choices
            end
            return
        end
    end
    if string match -q -- '-*' $cur
        for line in $here $root
            set -l f (string split \t -- $line)
            test "$f[2]" = @cmd; or printf '%s\t%s\n' $f[1] $f[3]
        end
        return
    end
    set -l subs
    for line in $here
        set -l f (string split \t -- $line)
        test "$f[2]" = @cmd; and set -a subs "$f[1]	$f[3]"
    end
    if set -q subs[1]
        printf '%s\n' $subs
    else if test "$path[1]" = ingest
        __fish_complete_path $cur
    else if test "$path" = "profiles show"
        __vstash_profiles
    end
end

complete -c vstash -f -a '(__vstash_complete)'
