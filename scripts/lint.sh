#!/usr/bin/env bash
# Static analysis and the layering rule.
#  - cppcheck over every C file, warnings as errors.
#  - layering: core/ includes no component header; a component includes no
#    other component's headers (only luna/… from core and its own).
set -euo pipefail
cd "$(dirname "$0")/.."
components="ca gateway iam kms attestation tee audit sdk cli"

dirs=(core)
for c in $components; do [ -d "$c/src" ] || [ -n "$(ls "$c"/*.c 2>/dev/null)" ] && dirs+=("$c"); done
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
    --inline-suppr --suppress=missingIncludeSystem \
    -I core/include -I core/src -D_GNU_SOURCE -DLUNA_TESTING=1 \
    "${dirs[@]}" fuzz bench
echo "cppcheck: clean"

bad=0
if grep -rnE '#include "(gateway|iam|kms|attestation|tee|audit|sdk|cli|ca)/' core; then
    echo "layering: core/ must not include a component header" >&2; bad=1
fi
for c in $components; do
    [ -d "$c" ] || continue
    for other in $components; do
        [ "$other" = "$c" ] && continue
        if grep -rnE "#include \"($other)/" "$c" 2>/dev/null; then
            echo "layering: $c includes $other" >&2; bad=1
        fi
    done
done
[ "$bad" = 0 ] && echo "layering: clean"
exit "$bad"
