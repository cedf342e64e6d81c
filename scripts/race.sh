#!/usr/bin/env bash
# Runs the tests under the race detector, which needs cgo and a C
# compiler. The privilege tests are not built with cgo (see
# privdrop/root_test.go); they ran in the CGO_ENABLED=0 pass.
set -euo pipefail
if ! command -v gcc >/dev/null 2>&1; then
	if [ "${MPM_REQUIRE_ROOT:-}" = 1 ]; then
		echo "race: no C compiler (gcc), which the race detector needs" >&2
		exit 1
	fi
	echo "race: skipped: no C compiler (gcc); install gcc to run the race detector" >&2
	exit 0
fi
CGO_ENABLED=1 go test -race -count=1 -timeout 20m "$@"
