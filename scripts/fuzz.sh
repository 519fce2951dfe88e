#!/usr/bin/env bash
# Fuzz the wire decoder (with bytes, and with hostile well-formed messages) and the
# namespace-token encoding for a bounded time:
#
#   bash scripts/fuzz.sh [SECONDS]      # SECONDS per target, default 60
#
# Installs cargo-fuzz if missing, then runs every target of fuzz/ from its seed
# corpus. Exits non-zero if any target crashed, ran out of memory or hung, and
# prints where the failing input was saved (see fuzz/README.md to reproduce it).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
# 0.13.2 builds with the stable toolchain the machines have (rustc 1.95).
CARGO_FUZZ_VERSION=0.13.2
TARGETS=(decode structured subject_token)

if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS]" >&2
    exit 2
fi

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "::group::install cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# cargo fuzz builds with -Zsanitizer=address (and other -Z flags), which only a
# nightly compiler accepts. Only the stable toolchain is installed and no nightly
# can be fetched, so let stable accept them. It is set for the fuzz commands only,
# not exported: build scripts that probe for nightly features must not see it
# elsewhere (e.g. while installing cargo-fuzz).
fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }

# libFuzzer adds the new inputs it finds to the FIRST corpus directory; an empty
# scratch directory goes first so the committed seeds in fuzz/corpus stay as they are.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# ASan's quarantine of freed memory (256 MiB by default) would count against the
# memory limit below; use-after-free is not what safe Rust code needs checking for.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"

failed=()
summary=()
for target in "${TARGETS[@]}"; do
    echo "::group::build $target"
    # -a: debug assertions, and with them integer overflow checks, so an arithmetic
    # slip on a forged length is a crash instead of a silently wrong value.
    fuzz build -a "$target"

    echo "::group::fuzz $target for ${SECONDS_PER_TARGET}s"
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    before="$(ls "fuzz/artifacts/$target")"
    log="$scratch/$target.log"
    status=0
    corpora=("$scratch/$target" "$PWD/fuzz/corpus/$target")
    # Inputs that once failed are replayed on every run, so a fixed bug stays fixed.
    if [[ -d "fuzz/regressions/$target" ]]; then
        corpora+=("$PWD/fuzz/regressions/$target")
    fi
    # -rss_limit_mb: a forged length that leads to a large allocation is a failure
    #   (with ASan a single malloc over the limit is caught at once, too);
    # -timeout: an input taking over 10 s is a hang, reported instead of eating the budget;
    # -max_len: NATS payloads can be larger, but every branch of the decoder is
    #   reachable within a few kilobytes.
    # libFuzzer logs every new input: keep that in a file, show only its end.
    fuzz run -a "$target" "${corpora[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=512 -max_len=65536 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?

    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")"
    cov="$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log")"
    corpus="$(ls "$scratch/$target" | wc -l)"
    if [[ $status -eq 0 ]]; then
        tail -n 8 "$log"
        summary+=("$target: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-?} edges covered, peak RSS ${rss:-?} MB, $corpus new inputs (discarded)")
    else
        # From the panic (or sanitizer report) on: message, backtrace, saved input.
        first="$(grep -n -m1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" | cut -d: -f1 || true)"
        tail -n "+${first:-1}" "$log" | tail -n 300
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) after ${runs:-?} runs")
        echo "::error::fuzz target $target failed (exit $status)"
        for f in $(ls "fuzz/artifacts/$target"); do
            if ! grep -qxF "$f" <<<"$before"; then
                echo "failing input: fuzz/artifacts/$target/$f"
                echo "reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run -a $target fuzz/artifacts/$target/$f"
            fi
        done
    fi
done

echo "::group::fuzz summary"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing passed: ${TARGETS[*]}, ${SECONDS_PER_TARGET}s each, no crash"
