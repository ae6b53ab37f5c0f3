#!/usr/bin/env bash
# Runs every test binary in the folder given (default build/tests), adds up
# their "N passed, N failed" lines and prints the total as the last line.
# A binary that crashes or prints no summary counts as one failure.
dir=${1:-build/tests}
shift || true
pass=0; fail=0; status=0
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" "$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "  FAIL $(basename "$t") exited with status $rc and printed no summary"
        fail=$((fail + 1)); status=1; continue
    fi
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "  FAIL $(basename "$t") exited with status $rc"; fail=$((fail + 1))
    fi
    [ "$rc" -ne 0 ] && status=1
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$status" -eq 0 ]
