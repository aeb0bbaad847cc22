#!/usr/bin/env bash
# Time `sweepfit fit` against the scipy reference fitter
# (benches/peer_sldbench.py) on the SLDBench tasks, back to back on this
# machine, and print per task both wall times, their ratio, both train SSEs
# and both test R².
#
#   benches/compare_sldbench.sh                  # moe, vocab, rectified
#   TASKS=moe STARTS=32 benches/compare_sldbench.sh
#   BIN=/path/to/sweepfit benches/compare_sldbench.sh   # no build
#
# Environment (all optional):
#   TASKS          tasks to run, in order ("moe vocab rectified")
#   STARTS         starts per fit for both tools (default per task: 128, and
#                  64 per run for rectified, as in the data's README)
#   SEED           seed for both tools (0); each draws its own starts
#   SLDBENCH_DIR   folder of TASK.csv (../shared/data/sldbench, relative to
#                  the repository root)
#   BIN            sweepfit binary; when unset, `cargo build --release`
#                  (not timed) and target/release/sweepfit
#   OUT            work folder (target/compare_sldbench under the repo)
set -euo pipefail

if [ "$#" -gt 0 ]; then
    # No arguments: everything is set through the environment (see above).
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TASKS="${TASKS:-moe vocab rectified}"
STARTS="${STARTS:-}"
SEED="${SEED:-0}"
SLDBENCH_DIR="${SLDBENCH_DIR:-../shared/data/sldbench}"
OUT="${OUT:-$ROOT/target/compare_sldbench}"

cd "$ROOT"
python3 -c "import numpy, scipy" 2>/dev/null || {
    echo "error: the peer needs numpy and scipy: pip install numpy scipy" >&2
    exit 1
}
for task in $TASKS; do
    case "$task" in
        moe|vocab|rectified) ;;
        *) echo "error: unknown task '$task' (moe, vocab, rectified)" >&2; exit 1 ;;
    esac
    [ -f "$SLDBENCH_DIR/$task.csv" ] || {
        echo "error: no $SLDBENCH_DIR/$task.csv (set SLDBENCH_DIR)" >&2
        exit 1
    }
done
if [ -z "${BIN:-}" ]; then
    echo "== building sweepfit (not timed)"
    cargo build --release --quiet
    BIN=target/release/sweepfit
fi
# get FILE KEY.PATH: one value of a JSON file (floats in full precision)
get() {
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    if not isinstance(v, dict) or k not in v:
        sys.exit(f"error: {sys.argv[1]} has no {sys.argv[2]}")
    v = v[k]
print(repr(v) if isinstance(v, float) else v)' "$1" "$2"
}

mkdir -p "$OUT"
ROWS="$OUT/rows.tsv"
: >"$ROWS"

for task in $TASKS; do
    k="${STARTS:-$([ "$task" = rectified ] && echo 64 || echo 128)}"
    data="$SLDBENCH_DIR/$task.csv"
    by=()
    if [ "$task" = rectified ]; then by=(--by run); fi
    dir="$OUT/$task"
    mkdir -p "$dir"

    echo "== $task: sweepfit, $k starts, seed $SEED"
    t0=$(date +%s.%N)
    "$BIN" fit "$data" --law "$task" --test-where split=test --backend cpu \
        --starts "$k" --seed "$SEED" ${by[@]+"${by[@]}"} --out "$dir/sweepfit" --force \
        >"$dir/sweepfit.log"
    t1=$(date +%s.%N)

    echo "== $task: scipy peer, $k starts, seed $SEED"
    t2=$(date +%s.%N)
    python3 "$HERE/peer_sldbench.py" "$task" --starts "$k" --seed "$SEED" --data "$data" \
        >"$dir/peer.json"
    t3=$(date +%s.%N)

    sw=$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1")
    pw=$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t2" "$t3")
    proto="$(get "$dir/sweepfit/fit.json" test.protocol) $(get "$dir/sweepfit/fit.json" test.where)"
    [ "$proto" = "test-where split=test" ] ||
        echo "warning: $task: fit.json's test is '$proto', not 'test-where split=test'" >&2
    np_s=$(get "$dir/sweepfit/fit.json" test.points)
    np_p=$(get "$dir/peer.json" test_points)
    [ "$np_s" = "$np_p" ] ||
        echo "warning: $task: test points differ: sweepfit $np_s, peer $np_p" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$task" "$sw" "$pw" \
        "$(get "$dir/sweepfit/fit.json" metrics.sse)" "$(get "$dir/peer.json" train_sse)" \
        "$(get "$dir/sweepfit/fit.json" test.r2)" "$(get "$dir/peer.json" test_r2)" \
        "$(get "$dir/sweepfit/fit.json" seconds)" "$(get "$dir/peer.json" seconds)" \
        "$(get "$dir/peer.json" starts_at_best)" >>"$ROWS"
done

python3 - "$ROWS" <<'EOF'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
print()
print(f"{'task':<10}{'sweepfit s':>11}{'peer s':>9}{'ratio':>7}"
      f"{'SSE sweepfit':>15}{'SSE peer':>15}{'R2 sweepfit':>12}{'R2 peer':>9}")
for r in rows:
    task, sw, pw, ss, ps, sr, pr = r[0], *map(float, r[1:7])
    print(f"{task:<10}{sw:11.2f}{pw:9.2f}{pw / sw:7.2f}{ss:15.7g}{ps:15.7g}{sr:12.4f}{pr:9.4f}")
print()
print("seconds: wall clock around each command (start-up, reading, fitting, output); ratio: peer/sweepfit.")
print("Self-reported fitting time (sweepfit: fit.json seconds; peer: reading + fitting) and the")
print("peer's starts at its best SSE (for rectified the minimum over runs):")
for r in rows:
    print(f"  {r[0]:<10} sweepfit {float(r[7]):.3f} s, peer {float(r[8]):.3f} s, peer at best {r[9]}")
print("sweepfit: --backend cpu, all cores; peer: one process, one core, starts in sequence.")
EOF
echo "outputs in $OUT"
