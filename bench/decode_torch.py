"""Decoding baseline for `subq bench model`: the same models' one-token step in PyTorch eager
(float32, CUDA), written here from subq's block definitions (DESIGN.md §3; src/blocks/*.c): the
same widths, heads, projections, norms, short convolutions, gates and recurrent updates, random
weights. Times 4 warm-up and 32 timed steps from an empty state at batch sizes 1, 8, 64, as
`subq bench model` does, and prints tokens/s (JSON with --json FILE).

usage: python3 bench/decode_torch.py [--depth 12] [--width 768] [--heads 12] [--vocab 50304]
                                     [--batches 1,8,64] [--json FILE]
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

dev = "cuda"


def lin(o, i, std=0.02):
    return torch.randn(o, i, device=dev) * std


def rms(x, w=None, eps=1e-5):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y


def round8(x):
    return (x + 7) // 8 * 8


class MLP:  # SwiGLU: x + W2 (SiLU(W1 h) ⊙ W3 h), h = RMSNorm(x)
    def __init__(s, D, Fh):
        s.w1, s.w3, s.w2 = lin(Fh, D), lin(Fh, D), lin(D, Fh)

    def __call__(s, x):
        h = rms(x)
        return x + (F.silu(h @ s.w1.T) * (h @ s.w3.T)) @ s.w2.T


class MLSTM:
    def __init__(s, D, H):
        s.H, s.K = H, D // H
        s.wq, s.wk, s.wv, s.wo, s.out = lin(D, D), lin(D, D), lin(D, D), lin(D, D), lin(D, D)
        s.wi, s.wf = lin(H, D), lin(H, D)
        s.bi, s.bf = torch.full((H,), -10.0, device=dev), torch.linspace(3, 6, H, device=dev)
        s.mlp = MLP(D, round8((8 * D + 2) // 3))

    def init(s, B):
        return [torch.zeros(B, s.H, s.K, s.K, device=dev), torch.zeros(B, s.H, s.K, device=dev),
                torch.zeros(B, s.H, 1, device=dev)]

    def step(s, x, st):
        S, n, m = st
        B, H, K = x.shape[0], s.H, s.K
        h = rms(x)
        q, k, v, o = [(h @ w.T).view(B, H, K) for w in (s.wq, s.wk, s.wv, s.wo)]
        ig, fg = (h @ s.wi.T + s.bi).unsqueeze(-1), (h @ s.wf.T + s.bf).unsqueeze(-1)
        lf = F.logsigmoid(fg)
        mn = torch.maximum(lf + m, ig)
        fs, is_ = torch.exp(lf + m - mn), torch.exp(ig - mn)
        S = fs.unsqueeze(-1) * S + is_.unsqueeze(-1) * k.unsqueeze(-1) * v.unsqueeze(-2)
        n = fs * n + is_ * k
        qs = q / math.sqrt(K)
        num = (qs.unsqueeze(-1) * S).sum(-2)
        den = torch.maximum((qs * n).sum(-1, keepdim=True).abs(), torch.exp(-mn))
        y = rms(num / den) * torch.sigmoid(o)
        x = x + y.reshape(B, -1) @ s.out.T
        st[:] = [S, n, mn]
        return s.mlp(x)


class SLSTM:
    def __init__(s, D, H):
        s.H, s.K = H, D // H
        s.wg, s.R = lin(4 * D, D), torch.randn(H, 4 * s.K, s.K, device=dev) * 0.02
        s.bias = torch.zeros(4 * D, device=dev)
        s.mlp = MLP(D, round8((4 * D + 2) // 3))

    def init(s, B):
        z = lambda: torch.zeros(B, s.H, s.K, device=dev)
        return [z(), z(), z(), z()]

    def step(s, x, st):
        c, n, m, hp = st
        B, H, K = x.shape[0], s.H, s.K
        gx = (rms(x) @ s.wg.T + s.bias).view(B, H, 4 * K)
        p = gx + torch.einsum("hgk,bhk->bhg", s.R, hp)
        pi, pf, pz, po = p.split(K, -1)
        lf = F.logsigmoid(pf)
        mn = torch.maximum(lf + m, pi)
        i_, f_ = torch.exp(pi - mn), torch.exp(lf + m - mn)
        c = f_ * c + i_ * torch.tanh(pz)
        n = f_ * n + i_
        h = torch.sigmoid(po) * c / n
        st[:] = [c, n, mn, h]
        return s.mlp(x + rms(h).reshape(B, -1))


class Mamba2:
    def __init__(s, D, H):
        s.H, s.P, s.N, s.W = H, 2 * D // H, D // H, 4
        HV, CC = 2 * D, 2 * D + 2 * (D // H)
        s.HV, s.CC = HV, CC
        s.win, s.out = lin(HV + CC + H, D), lin(D, HV)
        s.conv, s.cb = torch.randn(CC, s.W, device=dev) * 0.2, torch.zeros(CC, device=dev)
        s.A = -torch.exp(torch.log(1 + 15 * torch.rand(H, device=dev)))
        s.dtb, s.Dk = torch.randn(H, device=dev) - 4, torch.ones(H, device=dev)

    def init(s, B):
        return [torch.zeros(B, s.CC, s.W - 1, device=dev), torch.zeros(B, s.H, s.N, s.P, device=dev)]

    def step(s, x, st):
        cs, S = st
        B = x.shape[0]
        zx = rms(x) @ s.win.T
        z, xbc, dt = zx[:, :s.HV], zx[:, s.HV:s.HV + s.CC], zx[:, s.HV + s.CC:]
        win = torch.cat([cs, xbc.unsqueeze(-1)], -1)
        xbc = F.silu((win * s.conv).sum(-1) + s.cb)
        cs = win[:, :, 1:]
        xs, Bm, Cm = xbc[:, :s.HV].view(B, s.H, s.P), xbc[:, s.HV:s.HV + s.N], xbc[:, s.HV + s.N:]
        d = F.softplus(dt + s.dtb)
        a = torch.exp(d * s.A).view(B, s.H, 1, 1)
        S = a * S + (d.view(B, s.H, 1, 1) * Bm.view(B, 1, s.N, 1)) * xs.unsqueeze(-2)
        y = (Cm.view(B, 1, s.N, 1) * S).sum(-2) + s.Dk.view(1, s.H, 1) * xs
        st[:] = [cs, S]
        return x + rms(y.reshape(B, -1) * F.silu(z)) @ s.out.T


class GDN:
    def __init__(s, D, H):
        s.H, s.K, s.W = H, D // H, 4
        s.wq, s.wk, s.wv, s.wg, s.out = lin(D, D), lin(D, D), lin(D, D), lin(D, D), lin(D, D)
        s.wa, s.wb = lin(H, D), lin(H, D)
        s.conv = torch.randn(3 * D, s.W, device=dev) * 0.2
        s.Alog, s.dtb = torch.log(1 + 15 * torch.rand(H, device=dev)), torch.randn(H, device=dev) - 4
        s.mlp = MLP(D, round8((8 * D + 2) // 3))

    def init(s, B):
        return [torch.zeros(B, 3 * s.H * s.K, s.W - 1, device=dev), torch.zeros(B, s.H, s.K, s.K, device=dev)]

    def step(s, x, st):
        cs, S = st
        B, H, K = x.shape[0], s.H, s.K
        h = rms(x)
        pre = torch.cat([h @ s.wq.T, h @ s.wk.T, h @ s.wv.T], -1)
        win = torch.cat([cs, pre.unsqueeze(-1)], -1)
        act = F.silu((win * s.conv).sum(-1))
        cs = win[:, :, 1:]
        q, k, v = [t.view(B, H, K) for t in act.split(H * K, -1)]
        q = F.normalize(q, dim=-1) / math.sqrt(K)
        k = F.normalize(k, dim=-1)
        g = -torch.exp(s.Alog) * F.softplus(h @ s.wa.T + s.dtb)
        beta = torch.sigmoid(h @ s.wb.T).view(B, H, 1, 1)
        a = torch.exp(g).view(B, H, 1, 1)
        S = a * S
        S = S - beta * k.unsqueeze(-1) * (k.unsqueeze(-2) @ S) + beta * k.unsqueeze(-1) * v.unsqueeze(-2)
        o = (q.unsqueeze(-1) * S).sum(-2)
        y = rms(o) * F.silu((h @ s.wg.T).view(B, H, K))
        st[:] = [cs, S]
        return s.mlp(x + y.reshape(B, -1) @ s.out.T)


class Attn:
    def __init__(s, D, H):
        s.H, s.K = H, D // H
        s.wq, s.wk, s.wv, s.out = lin(D, D), lin(D, D), lin(D, D), lin(D, D)
        s.mlp = MLP(D, round8((8 * D + 2) // 3))

    def init(s, B):
        return [torch.zeros(B, s.H, 0, s.K, device=dev), torch.zeros(B, s.H, 0, s.K, device=dev)]

    def rope(s, x, pos):
        half = s.K // 2
        th = pos * 10000.0 ** (-torch.arange(half, device=dev) * 2.0 / s.K)
        c, si = torch.cos(th), torch.sin(th)
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * c - b * si, a * si + b * c], -1)

    def step(s, x, st, pos):
        kc, vc = st
        B, H, K = x.shape[0], s.H, s.K
        h = rms(x)
        q, k, v = [(h @ w.T).view(B, H, 1, K) for w in (s.wq, s.wk, s.wv)]
        q, k = s.rope(q, pos), s.rope(k, pos)
        kc, vc = torch.cat([kc, k], 2), torch.cat([vc, v], 2)
        o = F.scaled_dot_product_attention(q, kc, vc)
        st[:] = [kc, vc]
        return s.mlp(x + o.reshape(B, -1) @ s.out.T)


def model(kind, depth, D, H):
    if kind == "xlstm[7:1]":
        return [SLSTM(D, H) if i % 8 == 7 else MLSTM(D, H) for i in range(depth)]
    return [{"mamba2": Mamba2, "gdn": GDN, "transformer": Attn}[kind](D, H) for _ in range(depth)]


@torch.no_grad()
def decode_rate(kind, depth, D, H, V, B):
    blocks = model(kind, depth, D, H)
    emb, head = torch.randn(V, D, device=dev) * 0.02, lin(V, D)
    states = [b.init(B) for b in blocks]
    tok = torch.zeros(B, dtype=torch.long, device=dev)
    t0 = None
    for s in range(4 + 32):
        if s == 4:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        x = emb[tok]
        for b, st in zip(blocks, states):
            x = b.step(x, st, s) if isinstance(b, Attn) else b.step(x, st)
        logits = rms(x) @ head.T
        tok = logits.argmax(-1)
    torch.cuda.synchronize()
    return B * 32 / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.manual_seed(1)
    batches = [int(b) for b in a.batches.split(",")]
    print(f"PyTorch {torch.__version__} eager decoding, float32, {torch.cuda.get_device_name()}, depth {a.depth}, "
          f"width {a.width}, {a.heads} heads, vocab {a.vocab}")
    print(f"{'model':14}" + "".join(f"   dec B={b:<4}" for b in batches))
    res = {}
    for kind in ("xlstm[7:1]", "mamba2", "gdn", "transformer"):
        r = [decode_rate(kind, a.depth, a.width, a.heads, a.vocab, b) for b in batches]
        res[kind] = dict(zip(map(str, batches), r))
        print(f"{kind:14}" + "".join(f" {x:12.0f}" for x in r))
    if a.json:
        json.dump({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "tokens_per_s": res},
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
