#!/usr/bin/env bash
# subq's CUDA operators (float32 and bf16 entry points) and the GPU peers (FLA gated delta rule and simple GLA, mamba's
# mamba_chunk_scan_combined, PyTorch SDPA) in one call on a GPU machine, at FLA's shapes, then
# the ratios subq / peer. Run from anywhere on the GPU machine:
#   bench/gpu_peers.sh [OUT_DIR]
# Needs ./subq built with nvcc, the peers laid out in .peers/ (bench/make_shims.sh) and the shared
# peer script copied to .peers/gpu_peers.py (or PEERS_SCRIPT=path). FLA refuses its gated backward on
# Hopper with Triton < 3.7.1 (its issue #640): this script disables that check in the local copy, so
# FLA's backward times are timings only, not trustworthy results.
# PEERS="mamba attn" (default "ceil fla mamba attn") runs a subset: the peers' Triton compiles took
# 210 s (mamba) and 460 s (FLA) on an H200, so on a short device call run them in separate calls.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$out"
script=${PEERS_SCRIPT:-.peers/gpu_peers.py}
[ -x ./subq ] || { echo "gpu_peers: build subq first (make, with nvcc)" >&2; exit 2; }
[ -f "$script" ] || { echo "gpu_peers: no peer script at $script (copy ../shared/peers/gpu_peers.py)" >&2; exit 2; }
chunk_o=.peers/fla_pkg/fla/ops/common/chunk_o.py
[ -f "$chunk_o" ] && sed -i 's/and not TRITON_ABOVE_3_7_1:/and False:  # subq: bypassed for timing only/' "$chunk_o"
for shape in 4,4096,16,128 8,2048,8,64 1,16384,16,128; do
    IFS=, read -r B T H D <<<"$shape"
    ./subq bench ops --device cuda --ops mlstm,ssd,gdn,attn --B "$B" --T "$T" --H "$H" --K "$D" --V "$D" \
        --json "$out/subq_B${B}_T${T}_H${H}_D${D}.json" | tail -n 8
    ./subq bench ops --device cuda --dtype bf16 --ops mlstm,ssd,gdn,attn --B "$B" --T "$T" --H "$H" --K "$D" \
        --V "$D" --json "$out/subq_bf16_B${B}_T${T}_H${H}_D${D}.json" | tail -n 8
done
for peer in ${PEERS:-ceil fla mamba attn}; do
    echo "== peer $peer"
    # FLA compiles its Triton kernels on first use (minutes): it gets the longest budget
    limit=220; [ "$peer" = fla ] && limit=${FLA_TIMEOUT:-420}
    OUT="$out" PEER=$peer PEERS_DIR=.peers timeout "$limit" python3 "$script" 2>&1 | tail -n 8 ||
        echo "gpu_peers: peer $peer failed or timed out"
done
python3 bench/compare_gpu.py "$out"
