#!/bin/bash
# tests/docs.sh -- the project's documentation, as a reader meets it:
#   1. each man page (doc/*.[1-9]) is lint-clean: "mandoc -T lint -W
#      warning" prints nothing (one point per page);
#   2. every relative link of README.md and doc/*.md, a markdown
#      [text](path) outside code, names a file of the source tree (one
#      point per file checked; its name lists the broken links).  http(s),
#      mailto and #anchor targets are not checked; a path in backticks is
#      not a link;
#   3. no file of the project names a file outside it (the names in
#      $outside below): the documentation in the repository is the
#      reference.  Over the files git tracks when the source tree is a git
#      checkout, otherwise (a release tarball, as make distcheck unpacks)
#      over the source tree's files; this script itself is left out.
# mandoc is part of the test suite's dependencies (tests/install-deps.sh):
# without it the lint points fail, they do not skip.
set -u
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top=$(cd "$top" && pwd -P)
. "$top/tests/e2e/lib/tap.sh"

# 1. The man pages.
shopt -s nullglob
pages=("$top"/doc/*.[1-9])
[ ${#pages[@]} -gt 0 ] || tap_result 1 "doc/ holds man pages"
for page in "${pages[@]}"; do
    name=doc/${page##*/}
    if ! command -v mandoc >/dev/null 2>&1; then
        tap_result 1 "$name: mandoc -T lint -W warning is clean (mandoc not installed: tests/install-deps.sh)"
        continue
    fi
    out=$(mandoc -T lint -W warning "$page" 2>&1)
    st=$?
    [ -z "$out" ] && [ $st -eq 0 ]
    tap_result $? "$name: mandoc -T lint -W warning is clean" || tap_diag "$out"
done

# 2. Relative links.  links FILE: the targets of FILE's [text](target)
# links, one a line, outside fenced code blocks and inline code spans.
links() {
    perl -0777 -ne '
        s/^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$//gms;   # fenced code blocks
        s/(`+).*?\1//gs;                              # code spans
        while (/\]\(\s*<?([^()\s<>]+)>?(?:\s+"[^"]*")?\s*\)/g) { print "$1\n"; }
    ' "$1"
}

for md in "$top"/README.md "$top"/doc/*.md; do
    name=${md#"$top"/}
    dir=$(dirname "$md")
    broken=()
    while IFS= read -r target; do
        case $target in
        http://* | https://* | mailto:* | '#'*) continue ;;
        esac
        path=${target%%#*}
        path=${path%%\?*}
        [ -n "$path" ] || continue
        case $path in
        /*) resolved=$top$path ;;
        *) resolved=$dir/$path ;;
        esac
        real=$(realpath -m "$resolved")
        if [ ! -e "$real" ] || { [ "$real" != "$top" ] && [ "${real#"$top"/}" = "$real" ]; }; then
            broken+=("$target")
        fi
    done < <(links "$md")
    if [ ${#broken[@]} -eq 0 ]; then
        tap_result 0 "$name: every relative link names a file of the source tree"
    else
        tap_result 1 "$name: broken relative links: ${broken[*]}"
    fi
done

# 3. Names of files outside the project.
outside='SPEC\.md|PERF-NOTES\.md|STYLE\.md|MTA-TESTING\.md|\.\./shared'
if git_top=$(git -C "$top" rev-parse --show-toplevel 2>/dev/null) &&
    [ "$(cd "$git_top" && pwd -P)" = "$top" ]; then
    how="git grep"
    hits=$(git -C "$top" grep -n -I -E "$outside" -- . ':(exclude)tests/docs.sh' 2>&1)
else
    how="grep -r over the source tree"
    # Not the build and install trees make distcheck creates in it.
    hits=$(cd "$top" && grep -rn -I -E "$outside" \
        --exclude-dir=.git --exclude-dir=_build --exclude-dir=_inst \
        --exclude-dir=build --exclude-dir=autom4te.cache . 2>&1 |
        grep -v '^\./tests/docs\.sh:')
fi
[ -z "$hits" ]
tap_result $? "no file names a document outside the project ($how)" || tap_diag "$hits"

tap_done
