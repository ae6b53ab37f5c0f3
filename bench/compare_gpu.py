"""Reads the subq GPU JSONs (subq_B*_T*_H*_D*.json) and the peers' JSONs (peer_bench_*.json) that
bench/gpu_peers.sh wrote into one folder and prints subq / peer time ratios against the issue's
targets. Usage: compare_gpu.py DIR"""
import glob
import json
import os
import sys

# (peer key prefix, subq op, target ratio subq/peer for fwd+bwd, note)
PAIRS = [
    ("mamba_ssm_chunk_scan", "ssd", 0.5, ""),
    ("fla_simple_gla(ssd)", "ssd", 0.75, "scalar-decay form of SSD"),
    ("fla_simple_gla(ssd)", "mlstm", 0.75, "same matmul structure plus the normalizer"),
    ("fla_gated_delta_rule", "gdn", 0.5, ""),
    ("torch_sdpa_causal", "mlstm", 1.0, "target at T >= 16384"),
    ("torch_sdpa_causal", "ssd", 1.0, "target at T >= 16384"),
    ("torch_sdpa_causal", "gdn", 1.0, "target at T >= 16384"),
    ("torch_sdpa_causal", "linattn", 1.0, "target at T >= 16384"),
    ("torch_sdpa_causal", "attn", 1.0, "subq's float32 attention against flash SDPA in bf16 (no target)"),
]


def main(d):
    peers = {}
    for f in glob.glob(os.path.join(d, "peer_bench_*.json")):
        peers.update(json.load(open(f)))
    print(f"\npeers: gpu {peers.get('gpu')}, torch {peers.get('torch')}, triton {peers.get('triton')}; "
          f"ceilings bf16 {peers.get('bf16_matmul_tflops', 0):.0f} TFLOP/s, copy {peers.get('copy_TBps', 0):.2f} TB/s")
    print(f"{'shape':22} {'peer':24} {'subq':11} {'peer f+b':>9} {'subq f+b':>9} {'subq/peer':>9} {'target':>7}")
    for f in sorted(glob.glob(os.path.join(d, "subq_*.json"))):
        shape = os.path.basename(f)[5:-5]
        dtype = "f32"
        if shape.startswith("bf16_"):  # subq_bf16_<shape>.json: `subq bench ops --dtype bf16`
            shape, dtype = shape[5:], "bf16"
        subq = {r["op"]: r for r in json.load(open(f)) if "fwdbwd_ms" in r}
        for key, op, target, note in PAIRS:
            p = peers.get(f"{key}@{shape}")
            s = subq.get(op)
            if not p or "fwdbwd_ms" not in p or not s:
                why = "not on the GPU in subq yet" if not s else (p or {}).get("error", "not measured")[:40]
                print(f"{shape:22} {key:24} {op:6} {dtype:4} ({why})")
                continue
            r = s["fwdbwd_ms"] / p["fwdbwd_ms"]
            met = "yes" if r <= target else "NO"
            if op == "attn" and dtype == "bf16":
                note = "subq's bf16 tensor-core attention against flash SDPA (no target)"
            name = op if dtype == "f32" else op + "/bf16"
            print(f"{shape:22} {key:24} {name:11} {p['fwdbwd_ms']:9.3f} {s['fwdbwd_ms']:9.3f} {r:9.2f} "
                  f"{'<=' + str(target):>7} {met}{'  (' + note + ')' if note else ''}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1])
