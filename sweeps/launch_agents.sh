#!/usr/bin/env bash
# Start one `wandb agent` per visible GPU, each pinned to its GPU with CUDA_VISIBLE_DEVICES, and wait for all.
#   bash sweeps/launch_agents.sh <entity/project/sweep_id> [runs per agent] [agents when no GPU is visible]
# GPUs: CUDA_VISIBLE_DEVICES if set (e.g. "0,2"; set but empty, "", hides every GPU: CPU agents), else every GPU
# `nvidia-smi -L` lists; none: CPU agents.
set -euo pipefail
sweep_id="${1:?usage: launch_agents.sh <entity/project/sweep_id> [count] [cpu_agents]}"
count="${2:-}"
cpu_agents="${3:-1}"

if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then  # set, even empty: the user's choice of GPUs
  IFS=',' read -r -a gpus <<< "${CUDA_VISIBLE_DEVICES}"
elif command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  mapfile -t gpus < <(nvidia-smi --query-gpu=index --format=csv,noheader)
else
  gpus=()
fi

args=(agent)
[[ -n "${count}" ]] && args+=(--count "${count}")
pids=()
if (( ${#gpus[@]} )); then
  for gpu in "${gpus[@]}"; do
    echo "agent on GPU ${gpu}"
    CUDA_VISIBLE_DEVICES="${gpu}" wandb "${args[@]}" "${sweep_id}" &
    pids+=($!)
  done
else
  for i in $(seq 1 "${cpu_agents}"); do
    echo "agent ${i} on CPU"
    CUDA_VISIBLE_DEVICES="" wandb "${args[@]}" "${sweep_id}" &
    pids+=($!)
  done
fi
status=0
for pid in "${pids[@]}"; do wait "${pid}" || status=$?; done
exit "${status}"
