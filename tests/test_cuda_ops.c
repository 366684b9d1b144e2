/* tests/test_cuda_ops.c — every operation of port/port.h on the device
 * against the CPU kernels of ops/ (compiled for the host and linked into this
 * test alone): ggml's test-backend-ops for kvgpt. Awkward sizes (rows 1, 2,
 * 3, 8, 9, 17, 64, 65, 130; contexts 64, 128, 129, 1024, so the
 * flash-decoding splits and their combine; 25 heads of 64 = GPT-2 XL's 1600;
 * inputs that are no multiple of 8; unaligned, padded rows), every dtype,
 * within the tolerance stated at each check. And the device's own promises,
 * bit for bit: a row's result never depends on its batch, a fused epilogue
 * gives the separate kernels' bits, a replayed graph the eager ones,
 * port_sample the host sampler's draws.
 *
 * TARGET=cuda only. Without a usable device it prints SKIPPED and exits 77
 * (make TARGET=cuda test does not run it then, and says so). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "common/fexp.h"
#include "common/half.h"
#include "ops/ops.h"
#include "port/port.h"
#include "tests/support/fixtures.h"
#include "tests/support/port_rig.h"
#include "tests/support/suite.h"

/* The CPU reference: the portable kernel set, the reference path of every CPU. */
static const ops_kernels *cpu_ops(void) { return ops_set_at(0); }

#define RIG_BYTES ((size_t)768 << 20)
#define EPS32 (1.0 / 16777216.0)   /* 2^-24: half an ulp of 1.0f */

/* ---- random inputs (never zeros) ---- */
static uint64_t g_state = 0x9E3779B97F4A7C15ull;

static double urand(void)
{
    g_state ^= g_state >> 12;
    g_state ^= g_state << 25;
    g_state ^= g_state >> 27;
    return (double)((g_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static float frand(float a) { return (float)((urand() * 2.0 - 1.0) * a); }

static void fill(float *x, size_t n, float a)
{
    for (size_t i = 0; i < n; i++) x[i] = frand(a);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_msg(p != NULL, "out of host memory (%zu bytes)", n);
    return p;
}

/* ---- the device ---- */
static port_rig R;

static void open_rig(int rows, int ctx, int n_embd)
{
    kvgpt_error err = {0, ""};
    kvgpt_status s = rig_open(&R, RIG_BYTES, rows, ctx, n_embd, &err);
    ck_assert_msg(s == KVGPT_OK, "rig_open: %s", err.msg);
}

static void sync_ok(const char *what)
{
    kvgpt_error err = {0, ""};
    kvgpt_status s = port_sync(R.p, &err);
    ck_assert_msg(s == KVGPT_OK, "%s: %s", what, err.msg);
}

static void *dtake(size_t bytes)
{
    void *d = rig_take(&R, bytes);
    ck_assert_msg(d != NULL, "the test's device arena is full (%zu more bytes)", bytes);
    return d;
}

static void *dput(const void *host, size_t bytes)
{
    void *d = rig_put(&R, host, bytes);
    ck_assert_msg(d != NULL, "uploading %zu bytes failed", bytes);
    return d;
}

static void dget(void *host, const void *dev, size_t bytes)
{
    ck_assert_msg(rig_get(&R, host, dev, bytes) == 0, "downloading %zu bytes failed", bytes);
}

static const char *dt_name(kvgpt_dtype dt)
{
    return dt == KVGPT_DTYPE_F16 ? "f16" : dt == KVGPT_DTYPE_BF16 ? "bf16" : "f32";
}

/* First difference of two float arrays in bits, or -1. */
static long first_bit_diff(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return (long)i;
    return -1;
}

/* ---- matrix products ---- */
/* One random W (ic -> oc) in dtype dt, in the CPU's packed layout and on the device. */
typedef struct {
    ops_wmat cpu;
    port_wmat dev;
    float *wt;       /* [oc][ic] f32 source */
    double *norm;    /* [oc] euclidean norm of each output's weights */
} wpair;

static void load_dev(port_wmat *d, const float *wt, int ic, int oc, kvgpt_dtype dt, int hf_layout)
{
    port_wmat_bind(d, dtake(port_wmat_bytes(ic, oc, dt)), ic, oc, dt);
    kvgpt_status s;
    if (hf_layout) {   /* Conv1D rows: row k holds W(k, 0..oc-1) */
        float *rows = xmalloc((size_t)ic * (size_t)oc * sizeof(float));
        for (int o = 0; o < oc; o++)
            for (int k = 0; k < ic; k++) rows[(size_t)k * oc + o] = wt[(size_t)o * ic + k];
        s = port_wmat_rows_in(R.p, d, 0, ic, rows);
        free(rows);
    } else {
        s = port_wmat_rows_out(R.p, d, 0, oc, wt);
    }
    ck_assert_msg(s == KVGPT_OK && port_wmat_finish(R.p, d) == KVGPT_OK, "loading a %dx%d %s matrix", ic, oc,
                  dt_name(dt));
}

static void make_w(wpair *w, int ic, int oc, kvgpt_dtype dt)
{
    w->wt = xmalloc((size_t)oc * (size_t)ic * sizeof(float));
    w->norm = xmalloc((size_t)oc * sizeof(double));
    fill(w->wt, (size_t)oc * ic, 1.0f / sqrtf((float)ic));
    for (int o = 0; o < oc; o++) {
        double s = 0;
        for (int k = 0; k < ic; k++) s += (double)w->wt[(size_t)o * ic + k] * w->wt[(size_t)o * ic + k];
        w->norm[o] = sqrt(s);
    }
    w->cpu.data = xmalloc(ops_packed_bytes(ic, oc, dt));
    w->cpu.dtype = dt;
    w->cpu.ic = ic;
    w->cpu.oc = oc;
    for (int o = 0; o < oc; o++) ops_pack_row_o(&w->cpu, o, w->wt + (size_t)o * ic);
    ops_pack_zero_pad(&w->cpu);
    load_dev(&w->dev, w->wt, ic, oc, dt, 0);
}

static void free_w(wpair *w)
{
    free(w->wt);
    free(w->norm);
    free(w->cpu.data);
}

/* Both are f32 sums of the same products (half weights widened exactly) in
 * different orders: each rounding error grows like sqrt(ic), so |gpu - cpu|
 * <= 8 sqrt(ic) 2^-24 |x| |w| (|x||w| >= sum |x_k w_k|), plus the bias's rounding. */
static double norm(const float *x, int n)
{
    double s = 0;
    for (int k = 0; k < n; k++) s += (double)x[k] * x[k];
    return sqrt(s);
}

static double mm_tol(double xnorm, int ic, double wnorm, float bias)
{
    return 8.0 * sqrt((double)ic) * EPS32 * xnorm * wnorm + 4.0 * EPS32 * fabs(bias) + 1e-30;
}

/* Device vs CPU for n rows of in (n x ldi) through w; the device's result in dev_out (n x ldo). */
static void check_mm(const char *what, const wpair *w, const float *in, int ldi, int in_off, int ldo, int n,
                     int with_bias, float *dev_out)
{
    const int ic = w->cpu.ic, oc = w->cpu.oc;
    float *bias = NULL, *dbias = NULL;
    if (with_bias) {
        bias = xmalloc((size_t)oc * sizeof(float));
        fill(bias, (size_t)oc, 0.5f);
        dbias = dput(bias, (size_t)oc * sizeof(float));
    }
    const size_t in_floats = (size_t)in_off + (size_t)(n - 1) * ldi + ic, out_floats = (size_t)(n - 1) * ldo + oc;
    float *din = dput(in, in_floats * sizeof(float));
    float *dout = dtake(out_floats * sizeof(float));
    port_matmul(R.p, dout, ldo, din + in_off, ldi, &w->dev, dbias, n);
    sync_ok(what);
    dget(dev_out, dout, out_floats * sizeof(float));
    float *ref = xmalloc(out_floats * sizeof(float));
    cpu_ops()->matmul(ref, ldo, in + in_off, ldi, &w->cpu, bias, n, 0);
    for (int r = 0; r < n; r++) {
        const double xn = norm(in + in_off + (size_t)r * ldi, ic);
        for (int o = 0; o < oc; o++) {
            const double g = dev_out[(size_t)r * ldo + o], c = ref[(size_t)r * ldo + o];
            const double tol = mm_tol(xn, ic, w->norm[o], bias ? bias[o] : 0.0f);
            ck_assert_msg(fabs(g - c) <= tol, "%s: row %d of %d, output %d: device %.9g, CPU %.9g (tolerance %.3g)",
                          what, r, n, o, g, c, tol);
        }
    }
    free(ref);
    free(bias);
}

/* Row r of a batch of n, computed alone: the same bits. */
static void check_rows_alone(const char *what, const wpair *w, const float *in, int ldi, int in_off, int ldo, int n,
                             const float *batch_out)
{
    const int ic = w->cpu.ic, oc = w->cpu.oc;
    const int rows[3] = {0, n / 2, n - 1};
    float *alone = xmalloc((size_t)oc * sizeof(float));
    float *dout = dtake((size_t)oc * sizeof(float));
    for (int i = 0; i < 3; i++) {
        const int r = rows[i];
        float *din = dput(in + in_off + (size_t)r * ldi, (size_t)ic * sizeof(float));
        port_matmul(R.p, dout, oc, din, ic, &w->dev, NULL, 1);
        sync_ok(what);
        dget(alone, dout, (size_t)oc * sizeof(float));
        long d = first_bit_diff(alone, batch_out + (size_t)r * ldo, (size_t)oc);
        ck_assert_msg(d < 0, "%s: row %d alone differs from row %d of a batch of %d at output %ld: %a vs %a", what, r,
                      r, n, d, (double)alone[d], (double)batch_out[(size_t)r * ldo + d]);
    }
    free(alone);
}

START_TEST(test_matmul)
{
    static const struct { int ic, oc, all_rows; } shapes[] = {
        {768, 2304, 1},   /* GPT-2 c_attn */
        {100, 37, 1},     /* ic no multiple of 8: a partial last group */
        {3, 5, 1},        /* fewer inputs than one group */
        {1600, 1600, 0},  /* GPT-2 XL c_proj: 6.25 warp steps */
        {6400, 1600, 0},  /* GPT-2 XL mlp.c_proj */
        {64, 50257, 0},   /* the fixture's tied lm_head: many outputs */
    };
    static const int all_rows[] = {1, 2, 3, 8, 9, 17, 64, 65, 130};
    static const int few_rows[] = {1, 9, 65};
    static const kvgpt_dtype dts[] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            open_rig(130, 64, 64);
            const int ic = shapes[s].ic, oc = shapes[s].oc;
            wpair w;
            make_w(&w, ic, oc, dts[d]);
            const int *rows = shapes[s].all_rows ? all_rows : few_rows;
            const int n_rows = shapes[s].all_rows ? 9 : 3;
            for (int i = 0; i < n_rows; i++) {
                const int n = rows[i];
                /* Plain rows, and (every third) rows 1 float off alignment with
                 * a stride no multiple of 4 and a padded output. */
                const int odd = i % 3 == 2, ldi = odd ? ic + 1 : ic, off = odd ? 1 : 0, ldo = odd ? oc + 3 : oc;
                float *in = xmalloc(((size_t)off + (size_t)n * ldi) * sizeof(float));
                fill(in, (size_t)off + (size_t)n * ldi, 1.0f);
                float *out = xmalloc(((size_t)(n - 1) * ldo + oc) * sizeof(float));
                char what[128];
                snprintf(what, sizeof what, "matmul %s %dx%d, %d rows%s", dt_name(dts[d]), ic, oc, n,
                         odd ? " (unaligned, padded)" : "");
                check_mm(what, &w, in, ldi, off, ldo, n, i % 2 == 0, out);
                if (i % 2 == 1) check_rows_alone(what, &w, in, ldi, off, ldo, n, out);
                free(in);
                free(out);
            }
            /* The HF [in, out] rows give the same matrix as the nn.Linear [out, in] rows. */
            port_wmat hf;
            load_dev(&hf, w.wt, ic, oc, dts[d], 1);
            const int n = 9;
            float *in = xmalloc((size_t)n * ic * sizeof(float));
            fill(in, (size_t)n * ic, 1.0f);
            float *din = dput(in, (size_t)n * ic * sizeof(float));
            float *o1 = dtake((size_t)n * oc * sizeof(float)), *o2 = dtake((size_t)n * oc * sizeof(float));
            port_matmul(R.p, o1, oc, din, ic, &w.dev, NULL, n);
            port_matmul(R.p, o2, oc, din, ic, &hf, NULL, n);
            float *h1 = xmalloc((size_t)n * oc * sizeof(float)), *h2 = xmalloc((size_t)n * oc * sizeof(float));
            dget(h1, o1, (size_t)n * oc * sizeof(float));
            dget(h2, o2, (size_t)n * oc * sizeof(float));
            ck_assert_msg(first_bit_diff(h1, h2, (size_t)n * oc) < 0,
                          "%s %dx%d: the matrix loaded from HF rows differs from the one loaded from nn.Linear rows",
                          dt_name(dts[d]), ic, oc);
            printf("  matmul %-4s %5dx%-5d: %d row counts within tolerance of the CPU; rows alone = in a batch; "
                   "HF = nn.Linear loading\n", dt_name(dts[d]), ic, oc, n_rows);
            free(in);
            free(h1);
            free(h2);
            free_w(&w);
            rig_close(&R);
        }
}
END_TEST

/* ---- fused epilogues: the separate kernels' bits, and the CPU's values ---- */
START_TEST(test_epilogues)
{
    static const kvgpt_dtype dts[] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_BF16};
    static const int rows[] = {1, 9, 65};
    for (size_t d = 0; d < 2; d++)
        for (size_t ri = 0; ri < 3; ri++) {
            open_rig(65, 256, 128);
            const int n = rows[ri], C = 96, H = 3, hs = 32, ctx = 256, n_seq = 2;
            wpair fc, proj, qkv;
            make_w(&fc, C, 4 * C, dts[d]);
            make_w(&proj, 4 * C, C, dts[d]);
            make_w(&qkv, C, 3 * C, dts[d]);
            float *x = xmalloc((size_t)n * C * sizeof(float)), *h = xmalloc((size_t)n * 4 * C * sizeof(float));
            fill(x, (size_t)n * C, 1.0f);
            fill(h, (size_t)n * 4 * C, 1.0f);
            const size_t nc = (size_t)n * C, n4 = nc * 4, n3 = nc * 3;
            float *a = xmalloc(n4 * sizeof(float)), *b = xmalloc(n4 * sizeof(float)), *ref = xmalloc(n4 * sizeof(float));
            float *dx = dput(x, nc * sizeof(float)), *dh = dput(h, n4 * sizeof(float));
            float *o1 = dtake(n4 * sizeof(float)), *o2 = dtake(n4 * sizeof(float));

            /* GELU of the product (erf and tanh). */
            for (int kind = 0; kind < 2; kind++) {
                kvgpt_gelu g = kind ? KVGPT_GELU_TANH : KVGPT_GELU_ERF;
                port_matmul(R.p, o1, 4 * C, dx, C, &fc.dev, NULL, n);
                port_gelu(R.p, o1, n4, g);   /* fused */
                port_matmul(R.p, o2, 4 * C, dx, C, &fc.dev, NULL, n);
                sync_ok("gelu: the product alone");
                port_gelu(R.p, o2, n4, g);   /* a kernel of its own */
                dget(a, o1, n4 * sizeof(float));
                dget(b, o2, n4 * sizeof(float));
                long at = first_bit_diff(a, b, n4);
                ck_assert_msg(at < 0, "matmul+gelu %d, %s, %d rows: fused %a, separate %a at %ld", kind,
                              dt_name(dts[d]), n, at < 0 ? 0.0 : (double)a[at], at < 0 ? 0.0 : (double)b[at], at);
                cpu_ops()->matmul(ref, 4 * C, x, C, &fc.cpu, NULL, n, 0);
                if (kind) cpu_ops()->gelu_tanh(ref, n4, 0);
                else cpu_ops()->gelu_erf(ref, n4, 0);
                for (size_t i = 0; i < n4; i++) {
                    const double tol = 2.0 * mm_tol(norm(x + (i / (4 * C)) * C, C), C, fc.norm[i % (4 * C)], 0.0f) +
                                       1e-6 * fabs(ref[i]) + 1e-7;
                    ck_assert_msg(fabs(a[i] - ref[i]) <= tol, "matmul+gelu %d, %s: %zu: device %.9g, CPU %.9g", kind,
                                  dt_name(dts[d]), i, (double)a[i], (double)ref[i]);
                }
            }

            /* The product added into the residual stream: x += W h. */
            float *dx1 = dput(x, nc * sizeof(float)), *dx2 = dput(x, nc * sizeof(float));
            port_matmul(R.p, o1, C, dh, 4 * C, &proj.dev, NULL, n);
            port_add(R.p, dx1, o1, nc);   /* fused */
            port_matmul(R.p, o2, C, dh, 4 * C, &proj.dev, NULL, n);
            sync_ok("add: the product alone");
            port_add(R.p, dx2, o2, nc);
            dget(a, dx1, nc * sizeof(float));
            dget(b, dx2, nc * sizeof(float));
            ck_assert_msg(first_bit_diff(a, b, nc) < 0, "matmul+add, %s, %d rows: fused and separate differ",
                          dt_name(dts[d]), n);
            dget(a, o1, nc * sizeof(float));
            dget(b, o2, nc * sizeof(float));
            ck_assert_msg(first_bit_diff(a, b, nc) < 0, "matmul+add: the product itself differs");
            /* An add into the product's own input cannot be fused: still right. */
            float *dh2 = dput(h, n4 * sizeof(float));
            port_matmul(R.p, o1, C, dh2, 4 * C, &proj.dev, NULL, n);
            port_add(R.p, dh2, o1, nc);   /* dh2's first n*C floats are the product's input */
            dget(a, dh2, nc * sizeof(float));
            cpu_ops()->matmul(ref, C, h, 4 * C, &proj.cpu, NULL, n, 0);
            for (size_t i = 0; i < nc; i++) {
                const double want = (double)h[i] + ref[i];
                ck_assert_msg(fabs(a[i] - want) <= 2.0 * mm_tol(norm(h + (i / C) * 4 * C, 4 * C), 4 * C, proj.norm[i % C],
                                                                0.0f) + 4.0 * EPS32 * fabs(want),
                              "matmul then add into its own input: %zu: %.9g, want %.9g", i, (double)a[i], want);
            }

            /* K and V of the qkv product stored into the cache. */
            const kvgpt_dtype kvd[3] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
            for (int k = 0; k < 3; k++) {
                const size_t cache_b = (size_t)n_seq * H * ctx * hs * kv_dtype_size(kvd[k]);
                int32_t *seq = xmalloc((size_t)n * 4), *pos = xmalloc((size_t)n * 4);
                for (int r = 0; r < n; r++) seq[r] = r % n_seq, pos[r] = r / n_seq + r % n_seq * 100;   /* distinct */
                int32_t *dseq = dput(seq, (size_t)n * 4), *dpos = dput(pos, (size_t)n * 4);
                void *k1 = dtake(cache_b), *v1 = dtake(cache_b), *k2 = dtake(cache_b), *v2 = dtake(cache_b);
                unsigned char *c1 = xmalloc(cache_b), *c2 = xmalloc(cache_b);
                memset(c1, 0x5a, cache_b);
                ck_assert(port_upload(R.p, k1, c1, cache_b) == KVGPT_OK && port_upload(R.p, v1, c1, cache_b) == KVGPT_OK &&
                          port_upload(R.p, k2, c1, cache_b) == KVGPT_OK && port_upload(R.p, v2, c1, cache_b) == KVGPT_OK);
                port_matmul(R.p, o1, 3 * C, dx, C, &qkv.dev, NULL, n);
                port_kv_store(R.p, k1, v1, kvd[k], o1, 3 * C, dseq, dpos, n, H, hs, ctx);   /* fused */
                port_matmul(R.p, o2, 3 * C, dx, C, &qkv.dev, NULL, n);
                sync_ok("kv: the product alone");
                port_kv_store(R.p, k2, v2, kvd[k], o2, 3 * C, dseq, dpos, n, H, hs, ctx);
                for (int which = 0; which < 2; which++) {
                    dget(c1, which ? v1 : k1, cache_b);
                    dget(c2, which ? v2 : k2, cache_b);
                    ck_assert_msg(memcmp(c1, c2, cache_b) == 0, "matmul+kv_store, weights %s, cache %s, %d rows: the %s "
                                  "cache differs fused and separate", dt_name(dts[d]), dt_name(kvd[k]), n,
                                  which ? "V" : "K");
                }
                dget(a, o1, n3 * sizeof(float));
                dget(b, o2, n3 * sizeof(float));
                ck_assert_msg(first_bit_diff(a, b, n3) < 0, "matmul+kv_store: the qkv rows differ");
                free(seq);
                free(pos);
                free(c1);
                free(c2);
            }
            printf("  epilogues %-4s, %2d rows: GELU erf/tanh, residual add, K/V store fused = separate, bit for bit\n",
                   dt_name(dts[d]), n);
            free(x);
            free(h);
            free(a);
            free(b);
            free(ref);
            free_w(&fc);
            free_w(&proj);
            free_w(&qkv);
            rig_close(&R);
        }
}
END_TEST

/* ---- row-wise operations ---- */
START_TEST(test_layernorm)
{
    static const int cs[] = {1, 100, 768, 1600};
    static const int rows[] = {1, 9, 65};
    open_rig(65, 64, 1600);
    for (size_t ci = 0; ci < 4; ci++)
        for (size_t ri = 0; ri < 3; ri++)
            for (int bias = 0; bias < 2; bias++) {
                const int c = cs[ci], n = rows[ri];
                const size_t len = (size_t)n * c;
                float *x = xmalloc(len * 4), *w = xmalloc((size_t)c * 4), *b = xmalloc((size_t)c * 4);
                float *g = xmalloc(len * 4), *ref = xmalloc(len * 4);
                fill(x, len, 3.0f);
                for (size_t i = 0; i < len; i++) x[i] += 1.5f;   /* a mean far from 0 */
                fill(w, (size_t)c, 1.0f);
                fill(b, (size_t)c, 0.5f);
                float *dx = dput(x, len * 4), *dw = dput(w, (size_t)c * 4), *db = dput(b, (size_t)c * 4);
                float *dy = dtake(len * 4);
                port_layernorm(R.p, dy, dx, dw, bias ? db : NULL, n, c, 1e-5f);
                sync_ok("layernorm");
                dget(g, dy, len * 4);
                cpu_ops()->layernorm(ref, x, w, bias ? b : NULL, n, c, 1e-5f, 0);
                /* Both in double, rounded once: only the order of the double sums differs. */
                for (size_t i = 0; i < len; i++)
                    ck_assert_msg(fabs(g[i] - ref[i]) <= 2.0 * EPS32 * fabs(ref[i]) + 1e-12,
                                  "layernorm c %d, %d rows, bias %d: %zu: %.9g vs %.9g", c, n, bias, i, (double)g[i],
                                  (double)ref[i]);
                port_layernorm(R.p, dx, dx, dw, bias ? db : NULL, n, c, 1e-5f);   /* in place */
                dget(x, dx, len * 4);
                ck_assert_msg(first_bit_diff(x, g, len) < 0, "layernorm in place differs from out of place");
                free(x);
                free(w);
                free(b);
                free(g);
                free(ref);
            }
    printf("  layernorm: widths 1, 100, 768, 1600; 1, 9, 65 rows; with and without bias; in place\n");
    rig_close(&R);
}
END_TEST

START_TEST(test_elementwise)
{
    static const size_t lens[] = {1, 1000, ((size_t)1 << 20) + 3};
    open_rig(1, 64, 64);
    for (size_t li = 0; li < 3; li++) {
        const size_t len = lens[li];
        float *x = xmalloc(len * 4), *y = xmalloc(len * 4), *g = xmalloc(len * 4), *ref = xmalloc(len * 4);
        fill(x, len, 6.0f);
        fill(y, len, 2.0f);
        for (int kind = 0; kind < 2; kind++) {
            float *dx = dput(x, len * 4);
            port_gelu(R.p, dx, len, kind ? KVGPT_GELU_TANH : KVGPT_GELU_ERF);
            sync_ok("gelu");
            dget(g, dx, len * 4);
            memcpy(ref, x, len * 4);
            if (kind) cpu_ops()->gelu_tanh(ref, len, 0);
            else cpu_ops()->gelu_erf(ref, len, 0);
            /* erfcf / expf of the device and of the CPU: each within a few ulp. */
            for (size_t i = 0; i < len; i++)
                ck_assert_msg(fabs(g[i] - ref[i]) <= 1e-6 * fabs(ref[i]) + 1e-7, "gelu %s: x %.9g: %.9g vs %.9g",
                              kind ? "tanh" : "erf", (double)x[i], (double)g[i], (double)ref[i]);
        }
        float *dx = dput(x, len * 4), *dy = dput(y, len * 4);
        port_add(R.p, dx, dy, len);
        sync_ok("add");
        dget(g, dx, len * 4);
        memcpy(ref, x, len * 4);
        cpu_ops()->add(ref, y, len, 0);
        ck_assert_msg(first_bit_diff(g, ref, len) < 0, "add of %zu: device and CPU differ", len);
        free(x);
        free(y);
        free(g);
        free(ref);
    }
    printf("  gelu (erf, tanh) within 1e-6 relative, add bit for bit: 1, 1000, 2^20+3 elements\n");
    rig_close(&R);
}
END_TEST

START_TEST(test_embed_gather)
{
    static const kvgpt_dtype dts[] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
    static const int cs[] = {100, 768};
    for (size_t d = 0; d < 3; d++)
        for (size_t ci = 0; ci < 2; ci++) {
            open_rig(65, 64, 768);
            const int c = cs[ci], V = 1003, T = 64, n = 65;
            wpair w;   /* the tied matrix: ic = c, oc = V */
            make_w(&w, c, V, dts[d]);
            float *wpe = xmalloc((size_t)T * c * 4);
            fill(wpe, (size_t)T * c, 0.1f);
            int32_t tok[65], pos[65], idx[65];
            for (int r = 0; r < n; r++) tok[r] = (r * 97 + 13) % V, pos[r] = (r * 7) % T, idx[r] = (r * 11) % n;
            tok[0] = V - 1, pos[1] = T - 1;
            float *dwpe = dput(wpe, (size_t)T * c * 4);
            int32_t *dtok = dput(tok, sizeof tok), *dpos = dput(pos, sizeof pos), *didx = dput(idx, sizeof idx);
            float *dx = dtake((size_t)n * c * 4), *dg = dtake((size_t)n * c * 4);
            port_embed(R.p, dx, &w.dev, dwpe, dtok, dpos, n, c);
            port_gather_rows(R.p, dg, dx, didx, n, c);
            sync_ok("embed");
            float *g = xmalloc((size_t)n * c * 4), *ref = xmalloc((size_t)n * c * 4), *gg = xmalloc((size_t)n * c * 4);
            dget(g, dx, (size_t)n * c * 4);
            dget(gg, dg, (size_t)n * c * 4);
            for (int r = 0; r < n; r++) {
                ops_wmat_column(&w.cpu, tok[r], ref + (size_t)r * c);
                for (int i = 0; i < c; i++) ref[(size_t)r * c + i] += wpe[(size_t)pos[r] * c + i];
            }
            ck_assert_msg(first_bit_diff(g, ref, (size_t)n * c) < 0, "embed %s, c %d: device and CPU differ",
                          dt_name(dts[d]), c);
            for (int r = 0; r < n; r++)
                ck_assert_msg(memcmp(gg + (size_t)r * c, g + (size_t)idx[r] * c, (size_t)c * 4) == 0,
                              "gather_rows: row %d is not row %d", r, idx[r]);
            free(wpe);
            free(g);
            free(gg);
            free(ref);
            free_w(&w);
            rig_close(&R);
        }
    printf("  embedding (every dtype, tied rows incl. the last token) and gather_rows bit for bit\n");
}
END_TEST

/* ---- the KV cache ---- */
/* A random cache [n_seq][H][ctx][hs] in dt (bytes, as both sides hold it). */
static void *random_cache(kvgpt_dtype dt, size_t elems, float a)
{
    void *c = xmalloc(elems * kv_dtype_size(dt));
    for (size_t i = 0; i < elems; i++) {
        float v = frand(a);
        if (dt == KVGPT_DTYPE_F32) ((float *)c)[i] = v;
        else ((uint16_t *)c)[i] = dt == KVGPT_DTYPE_F16 ? kv_f32_to_f16(v) : kv_f32_to_bf16(v);
    }
    return c;
}

START_TEST(test_kv_store_and_slots)
{
    static const kvgpt_dtype dts[] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
    for (size_t d = 0; d < 3; d++) {
        open_rig(65, 200, 1600);
        const int H = 25, hs = 64, C = H * hs, ctx = 200, n_seq = 3, n = 65;
        const size_t elems = (size_t)n_seq * H * ctx * hs, bytes = elems * kv_dtype_size(dts[d]);
        float *qkv = xmalloc((size_t)n * 3 * C * 4);
        fill(qkv, (size_t)n * 3 * C, 2.0f);
        int32_t seq[65], pos[65];
        for (int r = 0; r < n; r++) seq[r] = r % n_seq, pos[r] = r / n_seq * 9 + r % 5;
        void *k = random_cache(dts[d], elems, 1.0f), *v = random_cache(dts[d], elems, 1.0f);
        void *dk = dput(k, bytes), *dv = dput(v, bytes);
        float *dq = dput(qkv, (size_t)n * 3 * C * 4);
        int32_t *ds = dput(seq, sizeof seq), *dp = dput(pos, sizeof pos);
        port_kv_store(R.p, dk, dv, dts[d], dq, 3 * C, ds, dp, n, H, hs, ctx);
        sync_ok("kv_store");
        ops_kv_store(k, dts[d], qkv + C, 3 * C, seq, pos, n, H, hs, ctx);
        ops_kv_store(v, dts[d], qkv + 2 * C, 3 * C, seq, pos, n, H, hs, ctx);
        unsigned char *g = xmalloc(bytes);
        dget(g, dk, bytes);
        ck_assert_msg(memcmp(g, k, bytes) == 0, "kv_store %s: the K cache differs from the CPU's", dt_name(dts[d]));
        dget(g, dv, bytes);
        ck_assert_msg(memcmp(g, v, bytes) == 0, "kv_store %s: the V cache differs from the CPU's", dt_name(dts[d]));

        /* Slots: write a saved state into slot 2, copy slot 2 to slot 0, read slot 0 back. */
        const int m = 77;
        const size_t state_b = (size_t)H * m * hs * kv_dtype_size(dts[d]);
        unsigned char *state = random_cache(dts[d], (size_t)H * m * hs, 3.0f), *back = xmalloc(state_b);
        kvgpt_error err = {0, ""};
        ck_assert(port_kv_write(R.p, dk, state, dts[d], H, ctx, hs, 2, m) == KVGPT_OK);
        port_kv_copy(R.p, dk, dts[d], H, ctx, hs, 2, 0, m);
        ck_assert(port_kv_read(R.p, back, dk, dts[d], H, ctx, hs, 0, m) == KVGPT_OK);
        ck_assert_msg(port_sync(R.p, &err) == KVGPT_OK, "%s", err.msg);
        ck_assert_msg(memcmp(back, state, state_b) == 0, "kv write/copy/read %s: the state did not come back",
                      dt_name(dts[d]));
        /* Slot 1 and the positions past m of slot 0 are untouched. */
        dget(g, dk, bytes);
        const size_t es = kv_dtype_size(dts[d]), head_b = (size_t)ctx * hs * es, slot_b = (size_t)H * head_b;
        ck_assert_msg(memcmp(g + slot_b, (unsigned char *)k + slot_b, slot_b) == 0, "slot 1 changed");
        for (int h = 0; h < H; h++)
            ck_assert_msg(memcmp(g + (size_t)h * head_b + (size_t)m * hs * es,
                                 (unsigned char *)k + (size_t)h * head_b + (size_t)m * hs * es,
                                 head_b - (size_t)m * hs * es) == 0,
                          "slot 0, head %d: positions past %d changed", h, m);
        free(qkv);
        free(k);
        free(v);
        free(g);
        free(state);
        free(back);
        rig_close(&R);
    }
    printf("  kv_store (25 heads x 64, 65 rows) and kv_write/copy/read of slots, every dtype, bit for bit\n");
}
END_TEST

START_TEST(test_attention)
{
    static const struct { int H, hs; } heads[] = {{25, 64}, {12, 64}, {4, 16}, {3, 20}};
    static const int ctxs[] = {64, 128, 129, 1024};
    static const int rows[] = {1, 9, 64, 65, 130};
    static const kvgpt_dtype dts[] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
    int cases = 0;
    for (size_t hi = 0; hi < 4; hi++)
        for (size_t ci = 0; ci < 4; ci++)
            for (size_t d = 0; d < 3; d++) {
                /* 25 heads with every row count; the rest with the awkward ones. */
                const int H = heads[hi].H, hs = heads[hi].hs, C = H * hs, ctx = ctxs[ci], n_seq = 3;
                if (hi > 0 && d > 0 && ci != 3) continue;
                open_rig(130, ctx, C);
                const size_t elems = (size_t)n_seq * H * ctx * hs, bytes = elems * kv_dtype_size(dts[d]);
                void *k = random_cache(dts[d], elems, 1.0f), *v = random_cache(dts[d], elems, 1.0f);
                void *dk = dput(k, bytes), *dv = dput(v, bytes);
                for (size_t ri = 0; ri < 5; ri++) {
                    const int n = rows[ri], ldq = 3 * C;
                    float *q = xmalloc((size_t)n * ldq * 4), *g = xmalloc((size_t)n * C * 4), *ref = xmalloc((size_t)n * C * 4);
                    fill(q, (size_t)n * ldq, 2.0f);
                    int32_t *seq = xmalloc((size_t)n * 4), *pos = xmalloc((size_t)n * 4);
                    for (int r = 0; r < n; r++) seq[r] = (int32_t)(urand() * n_seq), pos[r] = (int32_t)(urand() * ctx);
                    pos[0] = ctx - 1;
                    if (n > 1) pos[1] = 0;
                    if (n > 4) pos[2] = 127 % ctx, pos[3] = 128 % ctx, pos[4] = 129 % ctx;   /* around a split */
                    float *dq = dput(q, (size_t)n * ldq * 4), *dout = dtake((size_t)n * C * 4);
                    int32_t *ds = dput(seq, (size_t)n * 4), *dp = dput(pos, (size_t)n * 4);
                    port_attention(R.p, dout, C, dq, ldq, dk, dv, dts[d], ds, dp, n, H, hs, ctx);
                    sync_ok("attention");
                    dget(g, dout, (size_t)n * C * 4);
                    float *scratch = xmalloc(ops_attention_scratch(ctx, 0) * sizeof(float));
                    cpu_ops()->attention(ref, C, q, ldq, k, v, dts[d], seq, pos, n, H, hs, ctx, scratch, 0);
                    free(scratch);
                    /* A convex combination of V rows (|v| <= 1): softmax exp and sum order differ. */
                    for (size_t i = 0; i < (size_t)n * C; i++)
                        ck_assert_msg(fabs(g[i] - ref[i]) <= 2e-5, "attention %dx%d, ctx %d, %s, %d rows: row %zu "
                                      "(pos %d) dim %zu: %.9g vs %.9g", H, hs, ctx, dt_name(dts[d]), n, i / C,
                                      pos[i / C], i % C, (double)g[i], (double)ref[i]);
                    /* The first and last rows alone: the same bits. */
                    const int alone[2] = {0, n - 1};
                    for (int a = 0; a < 2; a++) {
                        const int r = alone[a];
                        port_attention(R.p, dout, C, dq + (size_t)r * ldq, ldq, dk, dv, dts[d], ds + r, dp + r, 1, H,
                                       hs, ctx);
                        sync_ok("attention of one row");
                        dget(ref, dout, (size_t)C * 4);
                        ck_assert_msg(first_bit_diff(ref, g + (size_t)r * C, (size_t)C) < 0,
                                      "attention %dx%d ctx %d %s: row %d alone differs from row %d of %d", H, hs, ctx,
                                      dt_name(dts[d]), r, r, n);
                    }
                    free(q);
                    free(g);
                    free(ref);
                    free(seq);
                    free(pos);
                    cases++;
                }
                free(k);
                free(v);
                rig_close(&R);
            }
    printf("  attention: %d cases (25/12/4/3 heads, contexts 64..1024 with splits, rows 1..130, every KV dtype) "
           "within 2e-5; rows alone = in a batch\n", cases);
}
END_TEST

/* Head sizes the kernel cannot take are refused loudly, not run wrong. */
START_TEST(test_attention_limit)
{
    open_rig(1, 2, 7000);
    const int H = 1, hs = 7000, ctx = 2;
    float *dq = dtake((size_t)hs * 4), *dout = dtake((size_t)hs * 4);
    void *dk = dtake((size_t)ctx * hs * 4), *dv = dtake((size_t)ctx * hs * 4);
    int32_t z[1] = {0};
    int32_t *ds = dput(z, 4), *dp = dput(z, 4);
    port_attention(R.p, dout, hs, dq, hs, dk, dv, KVGPT_DTYPE_F32, ds, dp, 1, H, hs, ctx);
    kvgpt_error err = {0, ""};
    kvgpt_status s = port_sync(R.p, &err);
    ck_assert_msg(s == KVGPT_ERR_BACKEND && strstr(err.msg, "shared memory"), "head size 7000: %s: %s",
                  kvgpt_strerror(s), err.msg);
    printf("  head size 7000: %s\n", err.msg);
    rig_close(&R);
}
END_TEST

/* ---- sampling ---- */
int tc_device_expf(const float *x, float *y, size_t n);   /* tests/cuda_fexp.cu */

/* The sampler's weights: kv_expf gives the device the host's bits. */
START_TEST(test_expf_bits)
{
    const size_t n = (size_t)1 << 24;
    float *x = xmalloc(n * 4), *y = xmalloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)(urand() * 210.0 - 110.0);
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.72f, 88.73f, -103.97f, -104.0f, -0x1.ee6274p+1f};
    memcpy(x, special, sizeof special);
    ck_assert_int_eq(tc_device_expf(x, y, n), 0);
    for (size_t i = 0; i < n; i++) {
        const float h = kv_expf(x[i]);
        ck_assert_msg(memcmp(&h, &y[i], 4) == 0 || (isnan(h) && isnan(y[i])), "kv_expf(%a): host %a, device %a",
                      (double)x[i], (double)h, (double)y[i]);
    }
    printf("  kv_expf: the device's bits are the host's on %zu arguments\n", n);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_sample)
{
    static const struct { float t, p; int k; } params[] = {
        {0.0f, 1.0f, 0},    {0.8f, 1.0f, 200}, {1.0f, 1.0f, 0},   {0.7f, 0.9f, 0},     {1.3f, 0.5f, 50},
        {0.8f, 1.0f, -1},   {0.8f, 1.0f, -2},  {1e-30f, 1.0f, 0}, {1e-38f, 1.0f, 10},  {0.9f, 0.95f, 1},
        {2.0f, 0.3f, 7},
    };   /* k -1: top_k = vocab; -2: top_k > vocab. 1e-38: scaled logits overflow (the greedy fallback) */
    static const int vocabs[] = {50257, 65, 1000};
    static const int rows[] = {1, 7, 64, 65};
    int draws = 0;
    open_rig(65, 64, 64);
    void *scratch = xmalloc((size_t)8 * 50257);
    for (size_t vi = 0; vi < 3; vi++)
        for (size_t ri = 0; ri < 4; ri++)
            for (int variant = 0; variant < 3; variant++) {
                const int V = vocabs[vi], n = rows[ri];
                float *l = xmalloc((size_t)n * V * 4);
                fill(l, (size_t)n * V, 4.0f);
                for (size_t i = 0; i < (size_t)n * V; i++) {
                    if (variant == 1) l[i] = roundf(l[i] * 2.0f) / 2.0f;      /* ties, also at the top-k cut */
                    if (variant == 2 && urand() < 0.3) l[i] = -INFINITY;     /* masked tokens */
                }
                float *dl = dput(l, (size_t)n * V * 4);
                for (size_t pi = 0; pi < sizeof params / sizeof params[0]; pi++) {
                    kvgpt_gen_options g;
                    kvgpt_gen_options_default(&g);
                    g.temperature = params[pi].t;
                    g.top_p = params[pi].p;
                    g.top_k = params[pi].k == -1 ? V : params[pi].k == -2 ? V + 5 : params[pi].k;
                    port_sample_params sp = {g.temperature, g.top_p, g.top_k};
                    uint64_t rh[65], rd[65];
                    int32_t ids[65];
                    for (int r = 0; r < n; r++) rh[r] = rd[r] = 0x1234567ull * (uint64_t)(r + 1) + pi;
                    rh[0] = rd[0] = 0;   /* a zero state: the sampler's fixed-point guard */
                    for (int rep = 0; rep < 3; rep++) {
                        kvgpt_error err = {0, ""};
                        kvgpt_status s = port_sample(R.p, ids, dl, n, V, &sp, rd, &err);
                        ck_assert_msg(s == KVGPT_OK, "port_sample: %s", err.msg);
                        for (int r = 0; r < n; r++) {
                            int32_t want = kvgpt_sample_logits(l + (size_t)r * V, V, &g, &rh[r], scratch);
                            ck_assert_msg(ids[r] == want && rd[r] == rh[r],
                                          "port_sample vocab %d, row %d of %d, variant %d, temperature %g top_p %g "
                                          "top_k %d, draw %d: device %d (state %llx), host %d (state %llx)", V, r, n,
                                          variant, (double)g.temperature, (double)g.top_p, g.top_k, rep, ids[r],
                                          (unsigned long long)rd[r], want, (unsigned long long)rh[r]);
                            draws++;
                        }
                    }
                }
                free(l);
            }
    free(scratch);
    printf("  port_sample: %d draws equal to kvgpt_sample_logits's (ids and generator states)\n", draws);
    rig_close(&R);
}
END_TEST

/* ---- decode graphs ---- */
/* A small forward: x (n x C) in page-locked host memory up, x += W2 gelu(W1 x + b1), layernorm, down. */
typedef struct {
    wpair w1, w2;
    float *b1, *lw, *lb, *dx, *dh, *dy;
    float *hx, *hy;   /* host, inside the page-locked block */
    int n, C;
} mini;

static void mini_forward(mini *m)
{
    ck_assert(port_upload(R.p, m->dx, m->hx, (size_t)m->n * m->C * 4) == KVGPT_OK);
    port_matmul(R.p, m->dh, 4 * m->C, m->dx, m->C, &m->w1.dev, m->b1, m->n);
    port_gelu(R.p, m->dh, (size_t)m->n * 4 * m->C, KVGPT_GELU_TANH);
    port_matmul(R.p, m->dy, m->C, m->dh, 4 * m->C, &m->w2.dev, NULL, m->n);
    port_add(R.p, m->dx, m->dy, (size_t)m->n * m->C);
    port_layernorm(R.p, m->dy, m->dx, m->lw, m->lb, m->n, m->C, 1e-5f);
    ck_assert(port_download(R.p, m->hy, m->dy, (size_t)m->n * m->C * 4) == KVGPT_OK);
}

START_TEST(test_graphs)
{
    open_rig(8, 64, 256);
    mini m;
    m.n = 3;
    m.C = 256;
    const size_t nc = (size_t)m.n * m.C;
    make_w(&m.w1, m.C, 4 * m.C, KVGPT_DTYPE_BF16);
    make_w(&m.w2, 4 * m.C, m.C, KVGPT_DTYPE_BF16);
    float *b = xmalloc((size_t)4 * m.C * 4);
    fill(b, (size_t)4 * m.C, 0.1f);
    m.b1 = dput(b, (size_t)4 * m.C * 4);
    m.lw = dput(b, (size_t)m.C * 4);
    m.lb = dput(b + m.C, (size_t)m.C * 4);
    m.dx = dtake(nc * 4);
    m.dh = dtake(nc * 16);
    m.dy = dtake(nc * 4);
    const size_t host_b = 1 << 20;
    char *host = xmalloc(host_b);
    memset(host, 0, host_b);
    kvgpt_error err = {0, ""};
    ck_assert_msg(port_host_memory(R.p, host, host_b, &err) == KVGPT_OK, "port_host_memory: %s", err.msg);
    m.hx = (float *)(void *)(host + 64);
    m.hy = (float *)(void *)(host + 64 + nc * 4 + 64);
    float *eager = xmalloc(nc * 4);

    if (!port_graph_record(R.p, 1)) {
        tf_skip(__func__, "KVGPT_CUDA_GRAPHS=0: graphs are off");
        rig_close(&R);
        free(host);
        return;
    }
    fill(m.hx, nc, 1.0f);
    float *x1 = xmalloc(nc * 4);
    memcpy(x1, m.hx, nc * 4);
    ck_assert_int_eq(port_graph_begin(R.p, m.n, m.n), 0);   /* recording: the calls are issued (captured) */
    mini_forward(&m);
    ck_assert_msg(port_graph_end(R.p, &err) == KVGPT_OK, "recording: %s", err.msg);
    sync_ok("the recorded forward");
    float *rec = xmalloc(nc * 4);
    memcpy(rec, m.hy, nc * 4);
    port_graph_record(R.p, 0);
    memcpy(m.hx, x1, nc * 4);
    mini_forward(&m);   /* eager, the same input */
    sync_ok("eager forward");
    ck_assert_msg(first_bit_diff(rec, m.hy, nc) < 0, "the recording run differs from an eager run");

    for (int round = 0; round < 3; round++) {   /* new inputs: the replay reads them from host memory */
        fill(m.hx, nc, 1.0f + (float)round);
        memcpy(x1, m.hx, nc * 4);
        mini_forward(&m);
        sync_ok("eager forward");
        memcpy(eager, m.hy, nc * 4);
        memcpy(m.hx, x1, nc * 4);
        memset(m.hy, 0, nc * 4);
        ck_assert_int_eq(port_graph_begin(R.p, m.n, m.n), 1);
        ck_assert_msg(port_graph_end(R.p, &err) == KVGPT_OK, "replay: %s", err.msg);
        sync_ok("replay");
        ck_assert_msg(first_bit_diff(eager, m.hy, nc) < 0, "round %d: the replayed graph differs from the eager run",
                      round);
    }
    ck_assert_int_eq(port_graph_begin(R.p, 2, 2), 0);   /* never recorded */
    ck_assert_int_eq(port_graph_begin(R.p, 3, 1), 0);   /* not a decode key */
    printf("  graphs: recorded once, replayed 3 times on new inputs = eager runs, bit for bit\n");
    free(x1);
    free(rec);
    free(eager);
    free(b);
    free_w(&m.w1);
    free_w(&m.w2);
    rig_close(&R);   /* unregisters the host block before it is freed */
    free(host);
}
END_TEST

START_TEST(test_probe)
{
    double gbps = port_probe_read_gbps((size_t)1 << 30, 3);
    ck_assert_msg(gbps > 50.0, "device read bandwidth probe: %.1f GB/s", gbps);
    printf("  device streaming read: %.0f GB/s (1 GiB, best of 3)\n", gbps);
}
END_TEST

int main(void)
{
    kvgpt_error err = {0, ""};
    kvgpt_status st = rig_open(&R, (size_t)64 << 20, 1, 1, 1, &err);
    if (st == KVGPT_ERR_BACKEND) {
        printf("SKIPPED: test_cuda_ops needs a usable CUDA device: %s\n", err.msg);
        return 77;
    }
    if (st) {
        printf("test_cuda_ops: a port on the device could not be set up: %s\n", err.msg);
        return 1;
    }
    rig_close(&R);
    Suite *s = suite_create("cuda_ops");
    TCase *tc = tcase_create("cuda_ops");
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_epilogues);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_elementwise);
    tcase_add_test(tc, test_embed_gather);
    tcase_add_test(tc, test_kv_store_and_slots);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_limit);
    tcase_add_test(tc, test_expf_bits);
    tcase_add_test(tc, test_sample);
    tcase_add_test(tc, test_graphs);
    tcase_add_test(tc, test_probe);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
