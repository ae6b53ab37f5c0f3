"""Reads `subq bench ops --json` output and the peers' JSON line
(../shared/peers/cpu_peers.py) and prints peer/subq time ratios.
Usage: compare_cpu.py SUBQ_JSON PEERS_JSON [--json OUT]"""
import json
import sys

PAIRS = [  # (peer key, subq op, note)
    ("mlstm_kernels_native_chunkwise", "mlstm", ""),
    ("fla_naive_chunk_gated_delta_rule", "gdn", ""),
    ("fla_naive_chunk_simple_gla", "ssd", "scalar-decay form of SSD"),
    ("mamba_ssd_minimal", "ssd", ""),
]
TARGET = 3.0


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    subq = {r["op"]: r for r in json.load(open(argv[1]))}
    peers = json.load(open(argv[2]))
    out_path = argv[argv.index("--json") + 1] if "--json" in argv else None
    any_op = next(iter(subq.values()))
    print(f"\nshape B={any_op['B']} T={any_op['T']} H={any_op['H']} K={any_op['K']} V={any_op['V']}, "
          f"subq threads {any_op['threads']}, torch {peers.get('torch')} threads {peers.get('threads')}")
    hdr = f"{'peer':34} {'subq':6} {'peer fwd':>9} {'subq fwd':>9} {'x fwd':>6} {'peer f+b':>9} {'subq f+b':>9} {'x f+b':>6}  >=3x"
    print(hdr)
    rows = []
    for key, op, note in PAIRS:
        if key not in peers or op not in subq:
            print(f"{key:34} {op:6} (missing)")
            continue
        p, s = peers[key], subq[op]
        rf, rb = p["fwd_ms"] / s["fwd_ms"], p["fwdbwd_ms"] / s["fwdbwd_ms"]
        ok = rb >= TARGET
        print(f"{key:34} {op:6} {p['fwd_ms']:9.1f} {s['fwd_ms']:9.1f} {rf:6.1f} {p['fwdbwd_ms']:9.1f} "
              f"{s['fwdbwd_ms']:9.1f} {rb:6.1f}  {'yes' if ok else 'NO'}{'  (' + note + ')' if note else ''}")
        rows.append({"peer": key, "op": op, "peer_fwd_ms": p["fwd_ms"], "subq_fwd_ms": s["fwd_ms"],
                     "speedup_fwd": round(rf, 2), "peer_fwdbwd_ms": p["fwdbwd_ms"],
                     "subq_fwdbwd_ms": s["fwdbwd_ms"], "speedup_fwdbwd": round(rb, 2), "target_met": ok})
    if out_path:
        with open(out_path, "w") as f:
            json.dump({"shape": peers.get("shape"), "threads": any_op["threads"], "torch": peers.get("torch"),
                       "device": any_op["device"], "pairs": rows}, f, indent=1)
        print(f"wrote {out_path}")


if __name__ == "__main__":
    main(sys.argv)
