#!/usr/bin/env bash
# A GPU check that cannot rot (issue #17, item 6): one table of what a GPU run of seqexp does, in <= 8 minutes
# on one GPU, and the same script on CPU in the test suite (--smoke, tests/test_gpu_check.py).
#
#   bash benchmarks/gpu_check.sh --beauty ../shared/data/beauty-bert4rec [--encoders "lstm gru sasrec bert4rec"]
#                                [--out benchmarks/results/gpu_check.md] [--workdir DIR]
#   bash benchmarks/gpu_check.sh --smoke        # CPU, synthetic tiny data, one encoder, < 60 s
#
# Rows: per encoder on Beauty, s/epoch in fp32 / bf16 / torch.compile (epoch 2 of 2: after compile's warm-up)
# and peak GPU memory with the full vs the chunked exact CE (+model/loss=chunked); eval users/s of exact full
# ranking at 4.2M items (a random item table, eval.item_chunk); a Ray sweep of 2 jobs sharing one GPU
# (num_gpus 0.5 each); a 1-process torchrun job. Every step has its own time limit (the sum is 8 minutes), so a
# hung or failed step is a FAILED cell, not a hung check; the exit status is 1 when any cell FAILED.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SMOKE=0
BEAUTY=""
ENCODERS=""
OUT=""
WORKDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --beauty) BEAUTY="$2"; shift ;;
    --encoders) ENCODERS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --workdir) WORKDIR="$2"; shift ;;
    -h|--help) sed -n 2,14p "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$SMOKE" = 0 ] && [ -z "$BEAUTY" ]; then
  echo "gpu_check.sh: give --beauty PATH (the BERT4Rec Beauty folder or beauty.txt), or --smoke for the CPU check" >&2
  exit 2
fi
PY="${PYTHON:-python}"
WORKDIR="${WORKDIR:-$(mktemp -d -t seqexp-gpu-check-XXXXXX)}"
mkdir -p "$WORKDIR"
ROWS="$WORKDIR/rows.jsonl"
: > "$ROWS"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" SEQEXP_ROOT="$WORKDIR" WANDB_MODE=offline RAY_USAGE_STATS_ENABLED=0
COMMON=(logger=none trainer.progress_bar=false trainer.max_epochs=2 trainer.patience=2 trainer.save_last=false
        "paths.cache_dir=$WORKDIR/cache")
if [ "$SMOKE" = 1 ]; then
  # tiny synthetic data on the CPU: what is checked is that every step still runs, not its numbers
  ENCODERS="${ENCODERS:-gru}"
  DATA=(trainer.device=cpu trainer.num_threads=1 data.generate.n_users=60 data.generate.n_items=40
        data.generate.mean_events=10 data.max_len=10 model.embedding_dim=16)
  EVAL=(--items 20000 --users 256 --batch 128 --chunk 4096 --device cpu)
  RAY_GPUS=0; RAY_CPUS=(hydra.launcher.ray.init.num_cpus=2)
  LIMIT_TRAIN=150; LIMIT_EVAL=60; LIMIT_RAY=150; LIMIT_TORCHRUN=90
  export OMP_NUM_THREADS=1
else
  ENCODERS="${ENCODERS:-lstm gru sasrec bert4rec}"
  DATA=(data=beauty "data.path=$BEAUTY" trainer.device=cuda)
  EVAL=(--items 4200000 --users 8192 --batch 512 --chunk 262144 --device cuda)
  RAY_GPUS=0.5; RAY_CPUS=()
  LIMIT_TRAIN=75; LIMIT_EVAL=30; LIMIT_RAY=90; LIMIT_TORCHRUN=60   # 4 x 75 + 30 + 90 + 60 = 480 s
fi
LOG="$WORKDIR/steps.log"
step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, output to the log; never stops the check
  local name="$1" limit="$2"; shift 2
  echo "== $name (limit ${limit}s): $*" >> "$LOG"
  timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  [ $rc = 0 ] || echo "== $name exited $rc" >> "$LOG"
}
seconds_since() { "$PY" -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$1"; }

encoders() {
  for m in $ENCODERS; do
    step "train $m" "$LIMIT_TRAIN" "$PY" "$HERE/gpu_check.py" train --model "$m" --workdir "$WORKDIR/train" \
      --rows "$ROWS" -- "${COMMON[@]}" "${DATA[@]}" trainer.save_checkpoint=false
  done
}
evaluation() {
  step eval "$LIMIT_EVAL" "$PY" "$HERE/gpu_check.py" eval "${EVAL[@]}" --rows "$ROWS"
}
ray_sweep() {  # 2 jobs, each asking for half the GPU: they run side by side on one device
  local t0; t0=$(date +%s.%N)
  step ray "$LIMIT_RAY" env -u RAY_ADDRESS "$PY" -m seqexp.app.train -m hydra/launcher=ray seed=0,1 model=gru \
    "hydra.launcher.ray.remote.num_gpus=$RAY_GPUS" "${RAY_CPUS[@]}" "hydra.sweep.dir=$WORKDIR/ray" \
    "${COMMON[@]}" "${DATA[@]}"
  "$PY" "$HERE/gpu_check.py" collect-ray "$WORKDIR/ray" "$(seconds_since "$t0")" --rows "$ROWS"
}
one_process_torchrun() {
  local t0; t0=$(date +%s.%N)
  step torchrun "$LIMIT_TORCHRUN" "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
    -m seqexp.app.train model=gru "hydra.run.dir=$WORKDIR/torchrun" "${COMMON[@]}" "${DATA[@]}"
  "$PY" "$HERE/gpu_check.py" collect-run "$WORKDIR/torchrun" "$(seconds_since "$t0")" --rows "$ROWS"
}

# prepare the data once (every step then reads the cache)
step prepare 120 "$PY" -c "
import sys; from hydra import compose, initialize_config_dir; from seqexp.data import load_data
from seqexp.app.conf_dir import CONF_DIR  # registers the resolvers the configs use (data.path of data=synthetic)
with initialize_config_dir(config_dir=CONF_DIR, version_base='1.3'):
    cfg = compose('train', sys.argv[1:])
load_data(cfg.data, cfg.paths.cache_dir)" "${COMMON[@]}" "${DATA[@]}"
START=$(date +%s.%N)
if [ "$SMOKE" = 1 ]; then  # three CPU lanes (they mostly wait: compile, Ray start) to stay under a minute
  encoders & TRAIN_LANE=$!
  ray_sweep & RAY_LANE=$!
  evaluation; one_process_torchrun
  wait "$TRAIN_LANE" "$RAY_LANE"
else  # one GPU: one step at a time, so that no step's time or memory is another's
  encoders; evaluation; ray_sweep; one_process_torchrun
fi
echo "gpu_check: $ENCODERS; $(seconds_since "$START" | cut -d. -f1) s after preparation; logs in $LOG" >&2
"$PY" "$HERE/gpu_check.py" table --rows "$ROWS" --encoders "$ENCODERS" ${OUT:+--out "$OUT"}
