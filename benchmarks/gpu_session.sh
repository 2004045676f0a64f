#!/usr/bin/env bash
# One device session on the lent H200 (see benchmarks/GPU_PLAN.md for what each case answers):
# install, the issue-17 headline benchmarks at --size large, then a conformance subset on the GPU.
# Everything lands under $OUT; each step has its own time limit so one slow step cannot eat the rest.
#   bash benchmarks/gpu_session.sh [bench-seconds] [check-seconds]
set -u
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
BENCH_S="${1:-380}"; CHECK_S="${2:-110}"
pip install -e . --no-deps -q > "$OUT/pip.txt" 2>&1
python - > "$OUT/env.txt" 2>&1 <<'PY'
import datetime, jax, jaxlib, optax, lossjax
print(datetime.datetime.now(datetime.timezone.utc).isoformat(), "jax", jax.__version__, "jaxlib", jaxlib.__version__,
      "optax", optax.__version__, "lossjax", lossjax.__version__, jax.devices())
PY
cat "$OUT/env.txt"
J="--size large --json $OUT/bench.jsonl"
start=$(date +%s)
step() {  # step <name> <share of the bench budget in percent> <run.py args...>
  local name=$1 share=$2; shift 2
  local left=$(( BENCH_S - ($(date +%s) - start) ))
  local cap=$(( BENCH_S * share / 100 )); [ "$cap" -gt "$left" ] && cap=$left
  if [ "$cap" -lt 15 ]; then echo "bench $name: skipped (no time left)"; return; fi
  timeout "$cap" python benchmarks/run.py $J "$@" > "$OUT/bench_$name.txt" 2>&1
  echo "bench $name rc=$? after $(( $(date +%s) - start )) s"
}
step classification 10 --only classification --case-timeout 8
step multitask 12 --only multitask --variant gram --variant peer --case-timeout 8
step large_vocab 28 --only large_vocab --variant "lossjax default" --variant peer --case-timeout 12
step contrastive 22 --only contrastive --case-timeout 10
step sam 14 --only sam --variant looksam --case-timeout 10
step imbalance 14 --only imbalance --case-timeout 8
# Conformance on the GPU: one entry per family and the numerically delicate ones.
ENTRIES="softmax_cross_entropy sigmoid_focal_loss focal_loss ldam_loss symmetric_cross_entropy
  supervised_contrastive_loss infonce_loss arcface_loss linear_cross_entropy dpo_loss grpo_loss kd_kl_loss
  kl_divergence huber_loss cox_partial_likelihood_loss dice_loss ranking_softmax_loss sam config"
known=$(python -c "import lossjax; print(' '.join(lossjax.available()))")
sel=""; for e in $ENTRIES; do case " $known " in *" $e "*) sel="$sel $e";; esac; done
timeout "$CHECK_S" lossjax check --json $sel > "$OUT/check.json" 2> "$OUT/check.err"
echo "check rc=$?"
python - "$OUT/check.json" "$OUT/check.err" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:  # timed out: the progress lines say how far it got
    lines = open(sys.argv[2]).read().splitlines()
    print("check: no JSON (time limit);", sum(" ok " in l for l in lines), "ok lines,",
          [l for l in lines if "FAIL" in l][:20])
    sys.exit()
bad = [f"{x['name']}.{x['property']}: {x['detail'][:200]}" for x in r if not x["ok"]]
print(f"conformance on GPU: {sum(x['ok'] for x in r)} passed, {len(bad)} failed")
print("\n".join(bad))
PY
for f in "$OUT"/bench_*.txt; do echo "== $f"; grep -vE "^\s*$" "$f" | tail -12; done
