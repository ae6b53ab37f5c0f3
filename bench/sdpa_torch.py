"""PyTorch's flash SDPA (causal, bf16) at FLA's shapes, the attention peer of `subq bench ops
--dtype bf16`, for a GPU call that has no FLA or mamba copy (bench/gpu_peers.sh needs them).
Times forward and forward+backward with CUDA events (20 warm-up calls, median of 50) in
[B, H, T, D] bf16 and writes peer_bench_sdpa.json in the shared peer script's format, which
bench/compare_gpu.py reads next to subq's JSON files.

usage: python3 bench/sdpa_torch.py OUT_DIR
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

SHAPES = [(4, 4096, 16, 128), (8, 2048, 8, 64), (1, 16384, 16, 128), (2, 16384, 16, 128)]


def median_ms(fn, warmup=20, reps=50):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main(out):
    res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": "n/a (SDPA only)"}
    for B, T, H, D in SHAPES:
        q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16).requires_grad_() for _ in range(3))
        do = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)

        def fwd():
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def fwdbwd():
            fwd().backward(do)

        key = f"torch_sdpa_causal@B{B}_T{T}_H{H}_D{D}"
        with torch.no_grad():
            f = median_ms(fwd)
        res[key] = {"fwd_ms": f, "fwdbwd_ms": median_ms(fwdbwd)}
        print(key, {k: round(x, 3) for k, x in res[key].items()}, flush=True)
        del q, k, v, do
    json.dump(res, open(os.path.join(out, "peer_bench_sdpa.json"), "w"), indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
