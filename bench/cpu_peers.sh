#!/usr/bin/env bash
# subq's operators vs the operators' authors' PyTorch chunkwise references,
# side by side on this machine at one shape and thread count; prints the
# speed-up ratios (peer time / subq time).
#   bench/cpu_peers.sh [B,T,H,D] [threads] [--json FILE]
# Needs ./subq (make), Debian's python3-torch (make bench-deps) and the
# peers laid out in .peers/ (bench/fetch_peers.md, bench/make_shims.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-4,2048,4,64}
threads=${2:-$(nproc)}
json=""
[ "${3:-}" = "--json" ] && json=${4:?--json needs a file}
peers_script=${PEERS_SCRIPT:-../shared/peers/cpu_peers.py}
[ -x ./subq ] || { echo "cpu_peers: build subq first (make)" >&2; exit 2; }
[ -f "$peers_script" ] || { echo "cpu_peers: no peer script at $peers_script (set PEERS_SCRIPT)" >&2; exit 2; }
[ -d .peers/fla_pkg ] || { echo "cpu_peers: no .peers/; see bench/fetch_peers.md" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "cpu_peers: python3-torch missing (make bench-deps)" >&2; exit 2; }
IFS=, read -r B T H D <<<"$shape"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== subq ($threads threads)"
./subq bench ops --ops mlstm,ssd,gdn --B "$B" --T "$T" --H "$H" --K "$D" --V "$D" --threads "$threads" --reps 7 \
    --json "$tmp/subq.json"
echo "== peers, PyTorch $( /usr/bin/python3 -c 'import torch; print(torch.__version__)') ($threads threads)"
OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads SHAPE=$shape PEERS_DIR=.peers \
    /usr/bin/python3 "$peers_script" | tee "$tmp/peers.log"
tail -n 1 "$tmp/peers.log" > "$tmp/peers.json"
/usr/bin/python3 bench/compare_cpu.py "$tmp/subq.json" "$tmp/peers.json" ${json:+--json "$json"}
