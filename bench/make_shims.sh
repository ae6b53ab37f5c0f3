#!/usr/bin/env bash
# Lays out the peers' code for bench/cpu_peers.sh (and ../shared/peers/*.py)
# in .peers/ (ignored by git; never commit it):
#   .peers/fla_pkg/fla            from fla-org/flash-linear-attention
#   .peers/mlstm_pkg/mlstm_kernels from NX-AI/mlstm_kernels
#   .peers/mamba_pkg/mamba_ssm    from state-spaces/mamba (with __init__.py emptied)
#   .peers/shim/ssd_minimal.py    mamba's modules/ssd_minimal.py without its Triton import
#   .peers/shim/einops.py         a small rearrange/repeat (einops is not packaged by Debian)
# Usage: bench/make_shims.sh FLA_GIT_DIR MLSTM_GIT_DIR MAMBA_GIT_DIR
# (bare git directories or clones of the three repositories; see bench/fetch_peers.md).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 FLA_GIT_DIR MLSTM_GIT_DIR MAMBA_GIT_DIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
out=.peers
rm -rf "$out"
mkdir -p "$out/fla_pkg" "$out/mlstm_pkg" "$out/mamba_pkg" "$out/shim"
git --git-dir="$1" archive HEAD fla | tar -x -C "$out/fla_pkg"
git --git-dir="$2" archive HEAD mlstm_kernels | tar -x -C "$out/mlstm_pkg"
git --git-dir="$3" archive HEAD mamba_ssm | tar -x -C "$out/mamba_pkg"
: > "$out/mamba_pkg/mamba_ssm/__init__.py"
git --git-dir="$3" show HEAD:mamba_ssm/modules/ssd_minimal.py |
    grep -v '^from mamba_ssm.ops.triton' > "$out/shim/ssd_minimal.py"
for d in "$1" "$2" "$3"; do echo "$(git --git-dir="$d" rev-parse HEAD)  $d"; done > "$out/COMMITS"

cat > "$out/shim/einops.py" <<'PY'
"""A small stand-in for einops.rearrange / einops.repeat (patterns with
names, parenthesised groups, '...' and keyword sizes), enough for the
peers' reference code. Written for subq's benchmarks."""
import math


_ones = [0]


def _parse(side):
    items, i, toks = [], 0, side.replace("(", " ( ").replace(")", " ) ").split()
    for k, t in enumerate(toks):  # a literal 1 is an anonymous axis of size 1
        if t == "1":
            _ones[0] += 1
            toks[k] = "_one%d" % _ones[0]
    while i < len(toks):
        if toks[i] == "(":
            j = toks.index(")", i)
            items.append(tuple(toks[i + 1:j]))
            i = j + 1
        else:
            items.append(toks[i])
            i += 1
    return items


def _expand(items, ndim_ellipsis):
    out = []
    for it in items:
        if it == "...":
            out.extend(("_e%d" % k,) for k in range(ndim_ellipsis))
        else:
            out.append(it if isinstance(it, tuple) else (it,))
    return out


def _sizes(left, shape, sizes):
    known = dict(sizes)
    for group, n in zip(left, shape):
        missing = [a for a in group if a not in known]
        prod = math.prod(known[a] for a in group if a in known)
        if len(missing) == 1:
            known[missing[0]] = n // prod
        elif not missing and prod != n:
            raise ValueError("einops shim: shape mismatch")
    return known


def _prepare(x, pattern, sizes):
    lhs, rhs = [s.strip() for s in pattern.split("->")]
    litems, ritems = _parse(lhs), _parse(rhs)
    n_named = sum(1 for it in litems if it != "...")
    nell = x.dim() - n_named if "..." in litems else 0
    left, right = _expand(litems, nell), _expand(ritems, nell)
    if nell:
        start = litems.index("...")  # each left item before '...' is one dimension of x
        sizes = dict(sizes, **{"_e%d" % k: x.shape[start + k] for k in range(nell)})
    sizes = dict(sizes, **{a: 1 for g in left + right for a in g if a.startswith("_one")})
    known = _sizes(left, x.shape, sizes)
    axes = [a for g in left for a in g]
    x = x.reshape([known[a] for a in axes])
    return x, axes, right, known


def rearrange(x, pattern, **sizes):
    x, axes, right, known = _prepare(x, pattern, sizes)
    order = [a for g in right for a in g if a in axes]
    order += [a for a in axes if a not in order]  # size-1 axes the right side drops
    x = x.permute([axes.index(a) for a in order])
    return x.reshape([math.prod(known[a] for a in g) for g in right])


def repeat(x, pattern, **sizes):
    x, axes, right, known = _prepare(x, pattern, sizes)
    order = [a for g in right for a in g]
    present = [a for a in order if a in axes]
    x = x.permute([axes.index(a) for a in present])
    shape, k = [], 0
    for a in order:
        if a in axes:
            shape.append(known[a])
            k += 1
        else:
            x = x.unsqueeze(len(shape))
            shape.append(known[a])
    x = x.expand(shape)
    return x.reshape([math.prod(known[a] for a in g) for g in right])
PY
echo "peers laid out in $out:"; cat "$out/COMMITS"
