#!/usr/bin/env bash
# Proof that a clone of this repository passes `make test` with no data root and no network.
#
#   scripts/prove-hermetic.sh [--keep]
#
# 1. clones the committed HEAD of this checkout into an empty temporary directory, so there is
#    no ../shared/data beside it and no ./data in it; $PICOMAML_DATA is unset throughout;
# 2. runs `make setup` there (this step may use the package index: it installs torch and the
#    dependencies into the clone's own .venv);
# 3. runs `make test` inside a network namespace with only the loopback interface
#    (`unshare -rn`; the tests' loopback HTTP servers still work, nothing else is reachable),
#    with a fresh token cache and the skip reasons listed (PYTEST_ADDOPTS=-rfEs);
# 4. prints PROOF PASSED when `make test` exits 0, else PROOF FAILED, and exits with its status.
#
# Uncommitted changes are not part of the clone. --keep leaves the temporary directory.
set -euo pipefail

keep=0
[[ "${1:-}" == "--keep" ]] && keep=1
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t picomaml-proof.XXXXXX)"
if [[ $keep -eq 0 ]]; then
    trap 'rm -rf "$work"' EXIT
fi
unset PICOMAML_DATA

echo "proof: cloning $(git -C "$repo" rev-parse --short HEAD) of $repo into $work/picomaml"
git clone --quiet --no-hardlinks "$repo" "$work/picomaml"
cd "$work/picomaml"
for place in ../shared/data data; do
    if [[ -e "$place" ]]; then
        echo "proof: $place exists beside the clone; not a clean machine" >&2
        exit 1
    fi
done

start=$SECONDS
make setup >"$work/setup.log" 2>&1 || { tail -20 "$work/setup.log"; echo "PROOF FAILED (make setup)"; exit 1; }
echo "proof: make setup took $((SECONDS - start)) s"

if unshare -rn true 2>/dev/null; then
    offline=(unshare -rn sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh)
    echo "proof: make test runs in a network namespace with loopback only (unshare -rn)"
else
    offline=(env http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1)
    echo "proof: unshare -rn not available; make test runs with a dead HTTP(S) proxy instead"
fi

start=$SECONDS
status=0
"${offline[@]}" env PICOMAML_CACHE="$work/cache" PYTEST_ADDOPTS="-rfEs" make test \
    >"$work/test.log" 2>&1 || status=$?
echo "proof: make test took $((SECONDS - start)) s, exit status $status"
grep -E "^(SKIPPED|FAILED|ERROR) " "$work/test.log" | cut -c1-240 || true
grep -E "[0-9]+ (passed|failed|error)" "$work/test.log" | tail -1 || tail -3 "$work/test.log"
if [[ $status -eq 0 ]]; then
    echo "PROOF PASSED"
else
    echo "PROOF FAILED"
    [[ $keep -eq 1 ]] && echo "proof: full log in $work/test.log"
fi
exit "$status"
