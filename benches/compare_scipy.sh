#!/usr/bin/env bash
# Time `sweepfit fit` against the scipy peer (benches/peer_scipy.py) on the
# Pythia sweep, from the same starts, and print both times and their ratio.
#
#   benches/compare_scipy.sh                 # 128 starts, stride 5, seed 0
#   STARTS=32 STRIDE=10 benches/compare_scipy.sh
#   LOSS=huber SPACE=log DELTA=0.01 benches/compare_scipy.sh
#
# Environment (all optional):
#   STARTS, STRIDE, SEED     sweepfit's --starts, --stride, --seed (128, 5, 0)
#   LOSS, SPACE, DELTA       objective, passed to both tools (mse, linear, 1e-3)
#   MANIFEST                 manifest CSV (benches/pythia_manifest.csv)
#   OUT                      work folder (target/compare_scipy under the repo)
#   PEER_TOL                 "matched" (default): the peer's ftol/gtol are set
#                            to sweepfit's relative tests at sweepfit's best
#                            objective (--match-sweepfit); "scipy": the peer's
#                            own defaults (ftol 1e-12, gtol 1e-10)
#   PEER_ARGS                extra arguments for the peer
#   JAX                      1: also time the JAX + optax peer
#                            (benches/peer_jax.py; pip install jax optax) on
#                            the same points and starts
set -euo pipefail

if [ "$#" -gt 0 ]; then
    # No arguments: everything is set through the environment (see above).
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
STARTS="${STARTS:-128}"
STRIDE="${STRIDE:-5}"
SEED="${SEED:-0}"
LOSS="${LOSS:-mse}"
SPACE="${SPACE:-linear}"
DELTA="${DELTA:-1e-3}"
MANIFEST="${MANIFEST:-$HERE/pythia_manifest.csv}"
OUT="${OUT:-$ROOT/target/compare_scipy}"
PEER_TOL="${PEER_TOL:-matched}"
PEER_ARGS="${PEER_ARGS:-}"
JAX="${JAX:-0}"
OBJ=(--loss "$LOSS" --space "$SPACE" --delta "$DELTA")

cd "$ROOT"
python3 -c "import numpy, scipy" 2>/dev/null || {
    echo "error: the peer needs numpy and scipy: pip install numpy scipy" >&2
    exit 1
}
mkdir -p "$OUT"

echo "== building sweepfit (not timed)"
cargo build --release --quiet

echo "== sweepfit: $STARTS starts, stride $STRIDE, seed $SEED, $LOSS/$SPACE"
t0=$(date +%s.%N)
cargo run --release --quiet -- fit --manifest "$MANIFEST" --stride "$STRIDE" \
    --starts "$STARTS" --seed "$SEED" "${OBJ[@]}" \
    --out "$OUT/sweepfit" --force --save-starts >"$OUT/sweepfit.log"
t1=$(date +%s.%N)
grep -E '^(objective|starts|time):' "$OUT/sweepfit.log" || true

REF=$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["objective"]["value"]))' \
    "$OUT/sweepfit/fit.json")
TOL=()
case "$PEER_TOL" in
    matched) TOL=(--match-sweepfit "$REF") ;;
    scipy) ;;
    *) echo "error: PEER_TOL must be matched or scipy, got '$PEER_TOL'" >&2; exit 1 ;;
esac

echo "== scipy peer: same points (sweepfit's pred.csv), same starts, tolerances: $PEER_TOL"
t2=$(date +%s.%N)
# shellcheck disable=SC2086  # PEER_ARGS is split on purpose
python3 "$HERE/peer_scipy.py" "$OUT/sweepfit/pred.csv" --starts "$OUT/sweepfit/starts.csv" \
    --fixed-from "$OUT/sweepfit/fit.json" "${OBJ[@]}" "${TOL[@]}" --quiet \
    --json "$OUT/peer.json" $PEER_ARGS >"$OUT/peer.log"
t3=$(date +%s.%N)
grep -E '^(tolerances|read|fit|best|starts within|iterations)' "$OUT/peer.log" || true

if [ "$JAX" = 1 ]; then
    echo "== JAX + optax peer: same points, same starts, sweepfit's stopping rules"
    python3 "$HERE/peer_jax.py" "$OUT/sweepfit/pred.csv" --starts "$OUT/sweepfit/starts.csv" \
        --fixed-from "$OUT/sweepfit/fit.json" "${OBJ[@]}" --json "$OUT/jax.json" >"$OUT/jax.log"
    cat "$OUT/jax.log"
fi

JAX="$JAX" python3 - "$OUT/sweepfit/fit.json" "$OUT/peer.json" "$t0" "$t1" "$t2" "$t3" <<'EOF'
import json, os, sys
sf, peer = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
t0, t1, t2, t3 = map(float, sys.argv[3:7])
s_fit, p_fit = sf["seconds"], peer["seconds"]
s_wall, p_wall = t1 - t0, t3 - t2
f_s, f_p = sf["objective"]["value"], peer["best_objective"]
print()
print(f"{'':16}{'sweepfit':>18}{'scipy peer':>18}{'peer/sweepfit':>15}")
print(f"{'fit seconds':16}{s_fit:18.3f}{p_fit:18.3f}{p_fit / s_fit:15.2f}")
print(f"{'wall seconds':16}{s_wall:18.3f}{p_wall:18.3f}{p_wall / s_wall:15.2f}")
print(f"{'best objective':16}{f_s:18.10e}{f_p:18.10e}")
print(f"{'starts at best':16}{sf['starts']['at_best']:>18}{peer['at_best']:>18}")
print(f"relative difference of the best objectives: {(f_p - f_s) / abs(f_s):+.2e}")
jax_json = os.path.join(os.path.dirname(sys.argv[2]), "jax.json")
if os.environ.get("JAX") == "1" and os.path.exists(jax_json):
    jx = json.load(open(jax_json))
    j_wall = jx["seconds"] + jx["compile_seconds"]
    print(f"{'JAX fit seconds':16}{s_fit:18.3f}{jx['seconds']:18.3f}{jx['seconds'] / s_fit:15.2f}")
    print(f"{'JAX + compile':16}{s_wall:18.3f}{j_wall:18.3f}{j_wall / s_wall:15.2f}")
    print(f"JAX's best objective {jx['best_objective']:.10e}, "
          f"{jx['at_best']} starts at it, {jx['iterations']} iterations")
print(f"points {sf['points']}, starts {sf['starts']['count']}; sweepfit: {sf['backend']['device']}; "
      f"peer: one process, sequential starts, {peer['nit_total']} iterations, "
      f"{peer['nfev_total']} evaluations")
EOF
echo "outputs in $OUT"
