/* The CUDA entry points' argument checks, which run before any CUDA call, so
 * they run here on a machine without a GPU (CI: built when nvcc is found, in
 * the plain and the sanitizer builds). Each bad call must return SQ_EINVAL
 * with the message of its check (a substring is matched: a missing device
 * gives SQ_EINVAL too, with another message), and must leave the buffers it
 * was given alone. Host arrays stand in for device pointers: a refused call
 * never reads them. The GPU suite (`make test-cuda`) checks the rest. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../src/cuda/cuda.h"
#include "../harness.h"

enum { N = 4096 };
static float x[N];
static sq_bf16 b16[N] __attribute__((aligned(16))); /* aligned: the fused bf16 forward's checks are reached */

/* rc must be SQ_EINVAL and the message must contain needle. */
static void refused(const char *what, int rc, const char *needle)
{
    const char *msg = sq_last_error();
    th_check(rc == SQ_EINVAL && msg && strstr(msg, needle), "%s: rc %d, message \"%s\" (want \"%s\")", what, rc,
             msg ? msg : "", needle);
    sq_clear_error();
}

/* The stand-in buffers still hold their pattern. */
static void untouched(const char *what)
{
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= x[i] == (float)i && b16[i] == (sq_bf16)i;
    th_check(ok, "%s: the buffers passed to refused calls are untouched", what);
}

static void check_scalar_ops(void)
{
    sq_dims d = {1, 8, 1, 4, 4}, t0 = {1, 0, 1, 4, 4}, two = {1, 2, 1, 4, 4};
    sq_mlstm_opts ok = {64, 0}, zero = {0, 0};
    sq_mlstm_in in = {x, x, x, x, x}, noq = {NULL, x, x, x, x};
    sq_mlstm_grad g = {x, x, x, x, x};
    refused("mlstm fwd: NULL q", sq_cuda_mlstm_fwd(d, &ok, &noq, NULL, x, NULL, NULL), "q is NULL");
    refused("mlstm fwd: chunk 0", sq_cuda_mlstm_fwd(d, &zero, &in, NULL, x, NULL, NULL), "chunk size must be >= 1");
    refused("mlstm fwd: T = 0", sq_cuda_mlstm_fwd(t0, &ok, &in, NULL, x, NULL, NULL), "every dimension");
    refused("mlstm fwd: NULL out", sq_cuda_mlstm_fwd(d, &ok, &in, NULL, NULL, NULL, NULL), "out is NULL");
    refused("mlstm bwd: NULL dout", sq_cuda_mlstm_bwd(d, &ok, &in, NULL, NULL, NULL, &g, NULL, NULL), "dout is NULL");
    refused("mlstm step: T = 2", sq_cuda_mlstm_step(two, &ok, &in, NULL, x), "T must be 1");
    sq_linattn_opts lz = {0};
    refused("linattn fwd: NULL out", sq_cuda_linattn_fwd(d, NULL, x, x, x, NULL, NULL, NULL, NULL), "out is NULL");
    refused("linattn fwd: chunk 0", sq_cuda_linattn_fwd(d, &lz, x, x, x, NULL, x, NULL, NULL), "chunk size");
    refused("linattn bwd: NULL dq",
            sq_cuda_linattn_bwd(d, NULL, x, x, x, NULL, x, NULL, NULL, x, x, NULL, NULL), "dq is NULL");
    refused("linattn step: T = 2", sq_cuda_linattn_step(two, x, x, x, x, x), "T must be 1");
    sq_dims h4 = {1, 8, 4, 4, 4};
    sq_ssd_opts g3 = {64, 3}, g1 = {64, 1};
    sq_ssd_in si = {x, x, x, x, x, x, x}, nox = {NULL, x, x, x, x, x, x};
    refused("ssd fwd: NULL x", sq_cuda_ssd_fwd(h4, &g1, &nox, NULL, x, NULL, NULL), "x is NULL");
    refused("ssd fwd: 3 groups for 4 heads", sq_cuda_ssd_fwd(h4, &g3, &si, NULL, x, NULL, NULL), "ngroups");
    refused("ssd step: T = 2", sq_cuda_ssd_step(two, &g1, &si, x, x), "T must be 1");
}

static void check_gdn_slstm(void)
{
    sq_dims d = {1, 8, 1, 4, 4}, two = {1, 2, 1, 4, 4}, kv = {1, 8, 1, 4, 6};
    sq_gdn_in in = {x, x, x, x, x, x, x}, noq = {NULL, x, x, x, x, x, x};
    sq_gdn_grad g = {x, x, x, x, NULL, x, x};
    refused("gdn fwd: NULL q", sq_cuda_gdn_fwd(d, NULL, &noq, NULL, x, NULL, NULL), "q is NULL");
    refused("gdn bwd: NULL g->dbeta", sq_cuda_gdn_bwd(d, NULL, &in, NULL, x, NULL, &g, NULL, NULL), "g->dbeta");
    refused("gdn step: T = 2", sq_cuda_gdn_step(two, NULL, &in, x, x), "T must be 1");
    /* a workspace off 16 bytes (the row kernels' 16-byte accesses) is refused before any copy */
    float *off16 = (uintptr_t)x % 16 ? x : x + 1;
    sq_gdn_grad gall = {x, x, x, x, x, x, x};
    refused("gdn fwd: work off 16 bytes", sq_cuda_gdn_fwd(d, NULL, &in, NULL, x, NULL, off16), "16-byte aligned");
    refused("gdn bwd: work off 16 bytes", sq_cuda_gdn_bwd(d, NULL, &in, NULL, x, NULL, &gall, NULL, off16),
            "16-byte aligned");
    sq_slstm_in si = {x, x, x};
    sq_slstm_grad sg = {x, NULL, x};
    refused("slstm fwd: K != V", sq_cuda_slstm_fwd(kv, NULL, &si, NULL, x, NULL, NULL), "K == V");
    refused("slstm bwd: NULL dR", sq_cuda_slstm_bwd(d, NULL, &si, NULL, x, NULL, &sg, NULL, NULL), "dR is NULL");
    sq_slstm_state st = {x, x, x, x};
    refused("slstm step: NULL state", sq_cuda_slstm_step(d, NULL, &si, NULL, x), "state is NULL");
    refused("slstm step: T = 2", sq_cuda_slstm_step(two, NULL, &si, &st, x), "T must be 1");
}

static void check_attention(void)
{
    sq_dims d = {1, 8, 1, 4, 4}, big = {1, 8, 1, 129, 4}, one = {1, 1, 1, 4, 4};
    sq_attn_opts z = {0};
    sq_attn_cache small = {x, x, 2, 9}, full = {x, x, 3, 3}, dsmall = {x, x, 0, 1};
    refused("attn fwd: NULL q", sq_cuda_attn_fwd(d, NULL, NULL, x, x, NULL, x, NULL, NULL), "q is NULL");
    refused("attn fwd: K = 129", sq_cuda_attn_fwd(big, NULL, x, x, x, NULL, x, NULL, NULL), "head sizes up to 128");
    refused("attn fwd: chunk 0", sq_cuda_attn_fwd(d, &z, x, x, x, NULL, x, NULL, NULL), "chunk size");
    refused("attn fwd: cache1 too small", sq_cuda_attn_fwd(d, NULL, x, x, x, &small, x, &small, NULL), "cap");
    refused("attn bwd: NULL dq", sq_cuda_attn_bwd(d, NULL, x, x, x, NULL, x, NULL, x, x, NULL, NULL), "dq is NULL");
    refused("attn bwd: dcache0 too small", sq_cuda_attn_bwd(d, NULL, x, x, x, &small, x, x, x, x, &dsmall, NULL),
            "dcache0 needs buffers");
    refused("attn step: full cache", sq_cuda_attn_step(one, NULL, x, x, x, &full, x), "cache is full");
    th_check(small.len == 2 && full.len == 3, "attn: refused calls leave the caches' len alone");
}

static void check_bf16(void)
{
    sq_dims d = {1, 8, 1, 4, 4}, t0 = {1, 0, 1, 4, 4}, big = {1, 8, 1, 129, 4}, h4 = {1, 8, 4, 4, 4};
    const sq_bf16 *b = b16;
    sq_mlstm_in_bf16 mi = {b, b, b, x, x}, noq = {NULL, b, b, x, x};
    sq_mlstm_grad_bf16 mg = {b16, NULL, b16, x, x};
    refused("mlstm fwd bf16: NULL q", sq_cuda_mlstm_fwd_bf16(d, NULL, &noq, NULL, b16, NULL, NULL), "q is NULL");
    refused("mlstm fwd bf16: T = 0", sq_cuda_mlstm_fwd_bf16(t0, NULL, &mi, NULL, b16, NULL, NULL), "every dimension");
    refused("mlstm fwd bf16: NULL out", sq_cuda_mlstm_fwd_bf16(d, NULL, &mi, NULL, NULL, NULL, NULL), "out is NULL");
    refused("mlstm bwd bf16: NULL g->dk", sq_cuda_mlstm_bwd_bf16(d, NULL, &mi, NULL, b, NULL, &mg, NULL, NULL),
            "g->dk is NULL");
    sq_ssd_opts g3 = {64, 3};
    sq_ssd_in_bf16 si = {b, b, b, x, x, x, x};
    refused("ssd fwd bf16: 3 groups for 4 heads", sq_cuda_ssd_fwd_bf16(h4, &g3, &si, NULL, b16, NULL, NULL), "ngroups");
    sq_gdn_opts gz = sq_gdn_defaults();
    gz.chunk = 0;
    sq_gdn_in_bf16 gi = {b, b, b, x, x, x, x};
    refused("gdn fwd bf16: chunk 0", sq_cuda_gdn_fwd_bf16(d, &gz, &gi, NULL, b16, NULL, NULL), "chunk size");
    float *off16 = (uintptr_t)x % 16 ? x : x + 1;
    refused("gdn fwd bf16: work off 16 bytes", sq_cuda_gdn_fwd_bf16(d, NULL, &gi, NULL, b16, NULL, off16),
            "16-byte aligned");
    sq_slstm_in_bf16 sl = {NULL, x, x};
    refused("slstm fwd bf16: NULL gx", sq_cuda_slstm_fwd_bf16(d, NULL, &sl, NULL, b16, NULL, NULL), "gx is NULL");
    refused("linattn fwd bf16: NULL out", sq_cuda_linattn_fwd_bf16(d, NULL, b, b, b, NULL, NULL, NULL, NULL),
            "out is NULL");
    /* the fused forward's shapes (chunk 64, T >= 64, K % 8 == 0, K <= 128, V % 64 == 0) and its own checks */
    sq_dims f64 = {1, 64, 1, 64, 64}, odd_v = {1, 64, 1, 64, 40};
    sq_mlstm_opts c64 = {64, 0}, c32 = {32, 0};
    th_check(sq_cuda_scalar_fused_bf16(f64, 64) && !sq_cuda_scalar_fused_bf16(f64, 32) &&
                 !sq_cuda_scalar_fused_bf16(odd_v, 64) && !sq_cuda_scalar_fused_bf16(d, 64),
             "fused bf16 forward: shapes");
    sq_mlstm_in_bf16 noig = {b, b, b, NULL, x};
    sq_mlstm_state part = {x, NULL, x};
    refused("mlstm fwd bf16 (fused): NULL igate", sq_cuda_mlstm_fwd_bf16(f64, &c64, &noig, NULL, b16, NULL, NULL),
            "igate is NULL");
    refused("mlstm fwd bf16 (fused): s0 without n", sq_cuda_mlstm_fwd_bf16(f64, &c64, &mi, &part, b16, NULL, NULL),
            "s0 needs all of S, n and m");
    refused("mlstm fwd bf16 (fused): chunk 32 takes the staging path, NULL out still refused",
            sq_cuda_mlstm_fwd_bf16(f64, &c32, &mi, NULL, NULL, NULL, NULL), "out is NULL");
    sq_ssd_opts s64 = {64, 1};
    sq_ssd_in_bf16 nodt = {b, b, b, NULL, x, x, x};
    refused("ssd fwd bf16 (fused): NULL dt", sq_cuda_ssd_fwd_bf16(f64, &s64, &nodt, NULL, b16, NULL, NULL),
            "dt is NULL");
    /* the fused backward's shapes (the forward's, V <= 128) and its own checks */
    sq_dims wide = {1, 64, 1, 64, 192};
    th_check(sq_cuda_scalar_fused_bf16_bwd(f64, 64) && !sq_cuda_scalar_fused_bf16_bwd(f64, 32) &&
                 !sq_cuda_scalar_fused_bf16_bwd(wide, 64) && sq_cuda_scalar_fused_bf16(wide, 64) &&
                 !sq_cuda_scalar_fused_bf16_bwd(odd_v, 64),
             "fused bf16 backward: shapes");
    sq_mlstm_grad_bf16 nodig = {b16, b16, b16, NULL, x};
    sq_mlstm_state ds_part = {x, x, NULL};
    refused("mlstm bwd bf16 (fused): NULL g->digate",
            sq_cuda_mlstm_bwd_bf16(f64, &c64, &mi, NULL, b, NULL, &nodig, NULL, NULL), "g->digate is NULL");
    sq_mlstm_grad_bf16 mgall = {b16, b16, b16, x, x};
    refused("mlstm bwd bf16 (fused): ds0 without m",
            sq_cuda_mlstm_bwd_bf16(f64, &c64, &mi, NULL, b, NULL, &mgall, &ds_part, NULL), "ds0 needs all of S, n and m");
    sq_ssd_grad_bf16 sgall = {b16, b16, b16, x, x, x, x};
    refused("ssd bwd bf16 (fused): NULL dt", sq_cuda_ssd_bwd_bf16(f64, &s64, &nodt, NULL, b, NULL, &sgall, NULL, NULL),
            "dt is NULL");
    refused("attn fwd bf16: K = 129", sq_cuda_attn_fwd_bf16(big, NULL, b, b, b, NULL, b16, NULL, NULL), "head sizes");
    sq_attn_cache c0 = {x, x, 2, 9}, dsmall = {x, x, 0, 1};
    refused("attn bwd bf16: NULL dk", sq_cuda_attn_bwd_bf16(d, NULL, b, b, b, NULL, b, b16, NULL, b16, NULL, NULL),
            "dk is NULL");
    refused("attn bwd bf16: dcache0 too small",
            sq_cuda_attn_bwd_bf16(d, NULL, b, b, b, &c0, b, b16, b16, b16, &dsmall, NULL), "dcache0 needs buffers");
    th_check(sq_cuda_mlstm_bf16_work_floats(t0, NULL) == 0 && sq_cuda_attn_bf16_work_floats(t0, NULL) == 0,
             "bf16 work sizes: 0 for T = 0");
    th_check(sq_cuda_mlstm_bf16_work_floats(d, NULL) > 0 && sq_cuda_gdn_bf16_work_floats(d, NULL) > 0,
             "bf16 work sizes: > 0 for a valid shape");
}

/* The backend table under each layer math, options NULL (the defaults): the
 * model's attention goes through the bf16 kernel under SQ_CUDA_MATH_BF16. */
static void check_table_and_math(void)
{
    sq_dims d = {1, 8, 1, 4, 4}, t0 = {1, 0, 1, 4, 4};
    sq_attn_cache c0 = {x, x, 2, 9}, dsmall = {x, x, 0, 1};
    const sq_backend *be = sq_cuda_backend();
    refused("layer math 3", sq_cuda_set_layer_math(3), "SQ_CUDA_MATH_BF16 (2)");
    for (int m = SQ_CUDA_MATH_F32; m <= SQ_CUDA_MATH_BF16; m++) {
        char what[120];
        th_expect_ok("layer math", sq_cuda_set_layer_math(m));
        snprintf(what, sizeof what, "table attn fwd, math %d: NULL out", m);
        refused(what, be->attn_fwd(d, NULL, x, x, x, NULL, NULL, NULL, NULL), "out is NULL");
        snprintf(what, sizeof what, "table attn fwd, math %d: T = 0", m);
        refused(what, be->attn_fwd(t0, NULL, x, x, x, NULL, x, NULL, NULL), "every dimension");
        snprintf(what, sizeof what, "table attn bwd, math %d: NULL dv", m);
        refused(what, be->attn_bwd(d, NULL, x, x, x, NULL, x, x, x, NULL, NULL, NULL), "dv is NULL");
        snprintf(what, sizeof what, "table attn bwd, math %d: dcache0 too small", m);
        refused(what, be->attn_bwd(d, NULL, x, x, x, &c0, x, x, x, x, &dsmall, NULL), "dcache0 needs buffers");
    }
    th_expect_ok("layer math back to float32", sq_cuda_set_layer_math(SQ_CUDA_MATH_F32));
    /* the bf16 staging is planned in every mode, so a model may switch after planning */
    th_check(be->attn_work_floats(d, NULL) > sq_cuda_attn_work_floats(d, NULL),
             "table attn work holds the bf16 staging on top of the float32 workspace");
}

static void check_layers(void)
{
    int32_t tok[4] = {0, 1, 2, 3};
    refused("linear fwd: N = 0", sq_cuda_linear_fwd(0, 4, 4, x, x, NULL, x), "sizes must be >= 1");
    refused("linear fwd: NULL W", sq_cuda_linear_fwd(2, 4, 4, x, NULL, NULL, x), "W is NULL");
    refused("norm fwd: eps 0", sq_cuda_norm_fwd(2, 1, 4, 1, 0.0f, x, x, x, x, x, x), "eps must be > 0");
    refused("norm fwd: center 2", sq_cuda_norm_fwd(2, 1, 4, 2, 1e-5f, x, x, x, x, x, x), "center must be 0 or 1");
    refused("silu fwd: n = 0", sq_cuda_silu_fwd(0, x, x), "n must be >= 1");
    refused("swiglu bwd: NULL dy", sq_cuda_swiglu_bwd(4, x, x, NULL, x, x), "is NULL");
    refused("conv1d fwd: width 0", sq_cuda_conv1d_fwd(1, 4, 2, 0, x, x, NULL, NULL, x, NULL), "kernel width");
    refused("embedding fwd: vocab 0", sq_cuda_embed_fwd(4, 0, 2, tok, x, x), "sizes must be >= 1");
    refused("embedding bwd: NULL tokens", sq_cuda_embed_bwd(4, 8, 2, NULL, x, x), "tokens is NULL");
    refused("rope fwd: odd head size", sq_cuda_rope_fwd(1, 4, 1, 3, 0, 10000.0f, x, x), "even head size");
    refused("rope fwd: base 1", sq_cuda_rope_fwd(1, 4, 1, 4, 0, 1.0f, x, x), "base > 1");
    refused("cross-entropy: V = 0", sq_cuda_xent_fwd_bwd(4, 0, x, tok, x, x, NULL), "sizes must be >= 1");
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "cuda host checks");
    for (int i = 0; i < N; i++) x[i] = (float)i, b16[i] = (sq_bf16)i;
    check_scalar_ops();
    check_gdn_slstm();
    check_attention();
    check_bf16();
    check_table_and_math();
    check_layers();
    untouched("every refusal");
    return th_finish();
}
