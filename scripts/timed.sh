#!/usr/bin/env bash
# timed.sh NAME CMD...: run CMD, then print how long stage NAME took (also on
# failure, with its exit status). Used by the Makefile and .ci/run.
set -u
name="$1"
shift
start=$(date +%s)
echo "==> stage $name: $*"
"$@"
status=$?
end=$(date +%s)
if [ "$status" -eq 0 ]; then
	echo "==> stage $name took $((end - start))s"
else
	echo "==> stage $name FAILED (exit $status) after $((end - start))s"
fi
exit "$status"
