/* tools/cmd_synth.c — `kvgpt synth`: a deterministic random-weight model of a
 * GPT-2 shape in the HuggingFace layout (config.json + model.safetensors),
 * for benchmarks on machines that cannot download the real weights. The
 * values follow GPT-2's initialisation (N(0, 0.02)-like; residual
 * projections scaled by 1/sqrt(2 n_layer)), so activations stay realistic. */
#include "tools/cli.h"
#include "common/half.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char name[64];
    int ndim;
    long long shape[2];
    int kind;            /* 0 matrix, 1 residual projection, 2 LN weight, 3 bias / LN bias */
} synth_tensor;

static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) times sqrt(3): unit variance, cheap and deterministic. */
static float unit(uint64_t *s)
{
    *s = mix(*s);
    return (float)(((double)(*s >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0) * 1.7320508075688772);
}

static int list_tensors(const kvgpt_config *c, synth_tensor *t)
{
    long long C = c->n_embd, V = c->vocab_size, T = c->block_size;
    int n = 0;
#define ADD(nm, d, s0, s1, k) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].ndim = d, t[n].shape[0] = s0, \
                               t[n].shape[1] = s1, t[n].kind = k, n++)
    ADD("wte.weight", 2, V, C, 0);
    ADD("wpe.weight", 2, T, C, 0);
    char nm[64];
    for (int l = 0; l < c->n_layer; l++) {
#define L(s, d, a, b, k) (snprintf(nm, sizeof nm, "h.%d.%s", l, s), ADD(nm, d, a, b, k))
        L("ln_1.weight", 1, C, 0, 2);
        L("ln_1.bias", 1, C, 0, 3);
        L("attn.c_attn.weight", 2, C, 3 * C, 0);
        L("attn.c_attn.bias", 1, 3 * C, 0, 3);
        L("attn.c_proj.weight", 2, C, C, 1);
        L("attn.c_proj.bias", 1, C, 0, 3);
        L("ln_2.weight", 1, C, 0, 2);
        L("ln_2.bias", 1, C, 0, 3);
        L("mlp.c_fc.weight", 2, C, 4 * C, 0);
        L("mlp.c_fc.bias", 1, 4 * C, 0, 3);
        L("mlp.c_proj.weight", 2, 4 * C, C, 1);
        L("mlp.c_proj.bias", 1, C, 0, 3);
#undef L
    }
    ADD("ln_f.weight", 1, C, 0, 2);
    ADD("ln_f.bias", 1, C, 0, 3);
#undef ADD
    return n;
}

static long long numel(const synth_tensor *t) { return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1]; }

static int copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char a[4096], b[4096], buf[65536];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    FILE *in = fopen(a, "rb");
    if (!in) return cli_error("synth", "%s: %s", a, strerror(errno));
    FILE *out = fopen(b, "wb");
    int rc = 0;
    if (!out) rc = cli_error("synth", "%s: %s", b, strerror(errno));
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = cli_error("synth", "%s: write failed", b);
    fclose(in);
    if (out && fclose(out) != 0 && !rc) rc = cli_error("synth", "%s: write failed", b);
    return rc;
}

/* mkdir -p: the folder and any missing parents. */
static int mkdir_p(const char *dir)
{
    char p[4096];
    int n = snprintf(p, sizeof p, "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return -1;
        *c = '/';
    }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

int cmd_synth(int argc, char **argv)
{
    const char *shape = NULL, *out = NULL, *dtype = "f32", *tok = NULL;
    uint64_t seed = 1234;
    int help = 0;
    const cli_opt opts[] = {
        {"shape", OPT_STR, &shape, "gpt2 | gpt2-medium | gpt2-large | gpt2-xl"},
        {"out", OPT_STR, &out, "folder to write (created)"},
        {"seed", OPT_U64, &seed, "random seed (default 1234)"},
        {"dtype", OPT_STR, &dtype, "file dtype: f32 | f16 | bf16 (default f32)"},
        {"tokenizer", OPT_STR, &tok, "copy vocab.json + merges.txt from this folder"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n_opts = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("synth", argc, argv, opts, n_opts)) return 2;
    if (help) {
        cli_usage("synth", "Writes a deterministic random-weight GPT-2 model (HuggingFace layout).", opts, n_opts);
        return 0;
    }
    if (!shape || !out) return cli_error("synth", "--shape and --out are required");
    kvgpt_shape sh = kvgpt_shape_from_name(shape);
    if (sh == KVGPT_SHAPE_NONE) return cli_error("synth", "unknown --shape \"%s\"", shape);
    int dt = cli_dtype(dtype);
    if (dt < 0) return cli_error("synth", "--dtype must be f32, f16 or bf16, not \"%s\"", dtype);
    kvgpt_config c;
    kvgpt_shape_config(sh, &c);
    if (mkdir_p(out) != 0) return cli_error("synth", "%s: %s", out, strerror(errno));

    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *f = fopen(path, "w");
    if (!f) return cli_error("synth", "%s: %s", path, strerror(errno));
    fprintf(f, "{\n  \"activation_function\": \"gelu_new\",\n  \"architectures\": [\"GPT2LMHeadModel\"],\n"
               "  \"bos_token_id\": 50256,\n  \"eos_token_id\": 50256,\n  \"layer_norm_epsilon\": 1e-05,\n"
               "  \"model_type\": \"gpt2\",\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n  \"n_head\": %d,\n"
               "  \"n_layer\": %d,\n  \"n_positions\": %d,\n  \"vocab_size\": %d,\n"
               "  \"kvgpt_synthesized\": {\"shape\": \"%s\", \"seed\": %llu}\n}\n",
            c.block_size, c.n_embd, c.n_head, c.n_layer, c.block_size, c.vocab_size, shape,
            (unsigned long long)seed);
    if (fclose(f) != 0) return cli_error("synth", "%s: write failed", path);

    static synth_tensor t[4 + 12 * 64];
    int nt = list_tensors(&c, t);
    size_t es = dt == KVGPT_DTYPE_F32 ? 4 : 2;
    const char *dname = dt == KVGPT_DTYPE_F32 ? "F32" : dt == KVGPT_DTYPE_F16 ? "F16" : "BF16";
    /* Header: JSON padded with spaces to a multiple of 8, as safetensors writes it. */
    size_t cap = 256 + (size_t)nt * 160, len = 0;
    char *hdr = malloc(cap);
    if (!hdr) return cli_error("synth", "out of memory");
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    unsigned long long off = 0;
    for (int i = 0; i < nt; i++) {
        unsigned long long bytes = (unsigned long long)numel(&t[i]) * es;
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t[i].name, dname,
                                t[i].shape[0]);
        if (t[i].ndim == 2) len += (size_t)snprintf(hdr + len, cap - len, ",%lld", t[i].shape[1]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';

    snprintf(path, sizeof path, "%s/model.safetensors", out);
    f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return cli_error("synth", "%s: %s", path, strerror(errno));
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)len >> (8 * i));
    int rc = fwrite(lenb, 1, 8, f) != 8 || fwrite(hdr, 1, len, f) != len;
    free(hdr);
    enum { CHUNK = 1 << 16 };
    static float vals[CHUNK];
    static uint16_t halves[CHUNK];
    float proj_scale = 0.02f / sqrtf(2.0f * (float)c.n_layer);
    for (int i = 0; i < nt && !rc; i++) {
        uint64_t s = mix(seed * 1000003u + (uint64_t)i);
        long long total = numel(&t[i]);
        for (long long done = 0; done < total && !rc; done += CHUNK) {
            int n = total - done < CHUNK ? (int)(total - done) : CHUNK;
            for (int k = 0; k < n; k++) {
                float u = unit(&s);
                vals[k] = t[i].kind == 0 ? 0.02f * u : t[i].kind == 1 ? proj_scale * u
                        : t[i].kind == 2 ? 1.0f + 0.1f * u : 0.02f * u;
            }
            if (dt == KVGPT_DTYPE_F32) {
                rc = fwrite(vals, 4, (size_t)n, f) != (size_t)n;
            } else {
                for (int k = 0; k < n; k++)
                    halves[k] = dt == KVGPT_DTYPE_F16 ? kv_f32_to_f16(vals[k]) : kv_f32_to_bf16(vals[k]);
                rc = fwrite(halves, 2, (size_t)n, f) != (size_t)n;
            }
        }
    }
    if (fclose(f) != 0) rc = 1;
    if (rc) return cli_error("synth", "%s: write failed", path);
    if (tok && (copy_file(tok, out, "vocab.json") || copy_file(tok, out, "merges.txt"))) return 1;
    fprintf(stderr, "kvgpt synth: wrote %s (%s, %d tensors, %.1f MB)\n", out, shape, nt, (double)(off + 8 + len) / 1e6);
    return 0;
}
