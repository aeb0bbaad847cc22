#!/usr/bin/env bash
# The GPU figures BENCHMARKS.md asks of a machine with a hardware GPU, in
# one run, each beside the same machine's CPU:
#   1. the GPU tests (parity with the CPU), required to find a GPU;
#   2. LoopLM evaluation throughput, GPU against CPU (`sweepfit bench`);
#   3. the demo sweep's bootstrap (B = 200 and 2,000), GPU against CPU;
#   4. the multi-power law's 25M fit (the README's), GPU against CPU: the
#      same optimum to 1e-6, and the times;
#   5. the LR-annealing law's fit on the same runs, GPU against CPU.
# Usage: bash benches/gpu_figures.sh [OUT_DIR]   (default: gpu-figures)
# OUT_DIR must not exist; every command's output and a summary go there.
# BOOTSTRAPS (default "200 2000") sets the replicate counts of step 3,
# BENCH the options of step 2.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-gpu-figures}
if [ -e "$out" ]; then
    echo "error: $out exists; give a new folder" >&2
    exit 2
fi
mkdir -p "$out"
summary="$out/summary.txt"
say() { echo "$*" | tee -a "$summary"; }

cargo build --release --quiet
bin=target/release/sweepfit

# "S s" (wall seconds) of a command, or "failed after S s"; its output
# goes to $out/NAME.log.
timed() {
    local name=$1
    shift
    local t0=$EPOCHREALTIME status=""
    "$@" >"$out/$name.log" 2>&1 || status="failed (see $name.log) after "
    awk -v a="$t0" -v b="$EPOCHREALTIME" -v s="$status" 'BEGIN { printf "%s%.2f s", s, b - a }'
}

say "# sweepfit GPU figures, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# 1. Parity tests: a missing GPU fails them here.
SWEEPFIT_REQUIRE_GPU=1 cargo test --release --quiet \
    --test gpu_parity --test gpu_laws --test gpu_steps --test gpu_law_fit \
    --test gpu_weighted --test gpu_uncertainty --test gpu_cli \
    >"$out/gpu_tests.log" 2>&1 && say "gpu tests: passed" || say "gpu tests: FAILED (see gpu_tests.log)"

# 2. Throughput.
# BENCH (default: the sizes below) replaces bench's options, e.g. --quick.
read -r -a bench <<<"${BENCH:---points 1e5,1e6,1e7 --starts 128,1024,4096 --seconds-per-cell 0.3}"
$bin bench "${bench[@]}" --no-fits --json "$out/bench.json" >"$out/bench.log" 2>&1 \
    || say "bench: failed (see bench.log)"
grep -m1 "^GPU:" "$out/bench.log" | tee -a "$summary" || true

# 3. The demo sweep's bootstrap (the README's simulated sweep).
$bin simulate --out "$out/sweep.csv" --seed 1 >"$out/simulate.log" 2>&1
for b in ${BOOTSTRAPS:-200 2000}; do
    for backend in cpu gpu; do
        s=$(timed "boot-$b-$backend" $bin fit "$out/sweep.csv" --bootstrap "$b" \
            --backend "$backend" --out "$out/boot-$b-$backend")
        say "bootstrap B=$b on $backend: $s"
    done
done

# 4. and 5. Laws of the whole training curve on the 25M runs.
mp=(--manifest examples/multipower/train-25m.csv --max-tokens 23999 --var step=tokens
    --schedule examples/multipower/schedules.csv --loss huber --delta 1e-3 --space log --starts 8)
for law in multi-power lr-annealing; do
    for backend in cpu gpu; do
        s=$(timed "$law-$backend" $bin fit "${mp[@]}" --law "$law" \
            --backend "$backend" --out "$out/$law-$backend")
        f=$(grep -m1 '^objective' "$out/$law-$backend.log" | sed 's/.*= //' || true)
        say "$law on $backend: $s, objective ${f:-none}"
    done
    [ -f "$out/$law-gpu/fit.json" ] || continue
    python3 - "$out/$law-cpu/fit.json" "$out/$law-gpu/fit.json" <<'EOF' | tee -a "$summary"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
fa, fb = a["objective"]["value"], b["objective"]["value"]
rel = abs(fa - fb) / abs(fa)
print(f"  {a['law']}: objectives differ by {rel:.2e} relative ({'within' if rel <= 1e-6 else 'OUTSIDE'} 1e-6)")
EOF
done
say "done: $summary"
