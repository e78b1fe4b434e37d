#!/usr/bin/env bash
# bench/run.sh BUILD_DIR [--quick] [--only NAME[,NAME...]]
#
# Runs every scenario in bench/scenarios/ (in name order) against the programs of BUILD_DIR, appending
# their measurements to bench/out/results.jsonl, then writes docs/benchmarks.md and docs/bench/*.png.
#   --quick   fewer sizes, 3 runs, a small file: a smoke test of the harness (the report says so)
#   --only    run only the named scenarios (e.g. --only crypto or --only 20_file_encrypt)
# Environment: BENCH_RUNS (runs per figure), BENCH_FILE_SIZE (file scenario, e.g. 512M), BENCH_TRANSFER_SIZE /
# BENCH_TRANSFER_FILES (transfer scenario), BENCH_DOC (report path, default docs/benchmarks.md). See bench/README.md.
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
py=/usr/bin/python3

build="" quick=0 only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) [[ $# -ge 2 ]] || usage; only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    -h | --help) usage ;;
    -*) echo "run.sh: unknown option $1" >&2; usage ;;
    *) [[ -z "$build" ]] || usage; build=$1 ;;
  esac
  shift
done
[[ -n "$build" ]] || usage
[[ -d "$build" ]] || { echo "run.sh: no build directory $build (run make build first)" >&2; exit 1; }

export BENCH_ROOT=$root
BENCH_BUILD=$(cd "$build" && pwd)
export BENCH_BUILD
export BENCH_QUICK=$quick
if [[ -z "${BENCH_RUNS:-}" ]]; then
  if [[ $quick == 1 ]]; then BENCH_RUNS=3; else BENCH_RUNS=5; fi
fi
export BENCH_RUNS
out=$here/out
export BENCH_RESULTS=$out/results.jsonl
doc=${BENCH_DOC:-$root/docs/benchmarks.md}

mkdir -p "$out/logs"
rm -f "$out"/logs/*.log "$out"/logs/times.txt
[[ -f "$BENCH_RESULTS" ]] && mv -f "$BENCH_RESULTS" "$out/results.prev.jsonl"
: >"$BENCH_RESULTS"

# Scratch space on tmpfs, removed (and anything mounted under it unmounted) however we exit.
scratch=$(mktemp -d /dev/shm/ccr-bench.XXXXXX)
cleanup() {
  local mp
  # Deepest first, in case mounts nest.
  while read -r mp; do
    fusermount3 -u "$mp" 2>/dev/null || fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
  done < <(awk -v s="$scratch" 'index($5, s "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  rm -rf "$scratch"
}
# A scenario runs in the background so that a signal reaches these traps at once; it is passed on to the
# scenario (which cleans up after itself), then the EXIT trap removes whatever is left.
child=""
on_signal() {
  if [[ -n "$child" ]]; then
    kill -"$1" "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

echo "bench: build $BENCH_BUILD, $( [[ $quick == 1 ]] && echo quick || echo full ) run, $BENCH_RUNS runs per figure, scratch $scratch" >&2
"$py" "$here/lib/machine.py" start "$out/machine.json"

failed=()
for s in "$here"/scenarios/[0-9]*; do
  name=$(basename "$s")
  name=${name%.*}
  if [[ -n "$only" ]]; then
    match=0
    IFS=, read -ra wanted <<<"$only"
    for w in "${wanted[@]}"; do
      [[ "$name" == "$w" || "${name#*_}" == "$w" || "${name#*_}" == "$w"* ]] && match=1
    done
    [[ $match == 1 ]] || continue
  fi
  case "$s" in
    *.py) runner=("$py" "$s") ;;
    *.sh) runner=(bash "$s") ;;
    *) continue ;;
  esac
  echo "bench: scenario $name" >&2
  mkdir -p "$scratch/$name"
  set +e
  BENCH_SCRATCH=$scratch/$name "${runner[@]}" > >(tee "$out/logs/$name.log" >&2) 2>&1 &
  child=$!
  wait "$child"
  rc=$?
  child=""
  set -e
  rm -rf "${scratch:?}/$name"
  if [[ $rc != 0 ]]; then
    echo "bench: scenario $name FAILED (exit $rc), see bench/out/logs/$name.log" >&2
    failed+=("$name")
    printf '{"suite":"harness","scenario":"%s","impl":"-","metric":"status","failed":true,"notes":"exit %s; see bench/out/logs/%s.log"}\n' \
      "$name" "$rc" "$name" >>"$BENCH_RESULTS"
  fi
done

# CPU of everything this script waited for (the scenarios and what they reaped), from the shell's `times`
# (a builtin: redirecting it does not fork, so it reports this shell's children).
times >"$out/logs/times.txt"
harness_cpu=$(awk 'END { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] }
                     printf "%.2f", s }' "$out/logs/times.txt")
"$py" "$here/lib/machine.py" end "$out/machine.json" "$harness_cpu"
report_args=(--results "$BENCH_RESULTS" --machine "$out/machine.json" --out "$doc")
[[ $quick == 1 ]] && report_args+=(--quick)
"$py" "$here/report.py" "${report_args[@]}"
echo "bench: report written to ${doc#"$root"/}" >&2

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "bench: failed scenarios: ${failed[*]}" >&2
  exit 1
fi
