/* tests/test_loader.c — hostile model folders: damaged copies of the fixture
 * models (safetensors headers and entries, config.json, vocab.json), each
 * refused with its own status and a message naming the file and the fault,
 * with nothing left open; the layouts and file dtypes that must load (name
 * prefixes, F16, BF16) give nanoGPT's logits; and the kvgpt command fails
 * with one line, never a crash, on bad input. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvgpt.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"
#include "tests/support/loader_ref.h"
#include "tests/support/loader_st.h"

#define SC "shakespeare_char"
#define HF "gpt2_tiny_hf"

/* ---- temporary model folders ------------------------------------------- */

/* A fresh copy of a fixture model in a temp folder; 0 (skip) without fixtures. */
static int copy_model(const char *fixture, char *dir, size_t cap)
{
    if (!tf_need_fixtures(fixture)) return 0;
    ck_assert_int_eq(tf_tmpdir(dir, cap), 0);
    ck_assert_msg(tf_copy_dir(tf_path(fixture), dir) == 0, "cannot copy %s into %s", fixture, dir);
    return 1;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* kvgpt_open must refuse dir with status, *out NULL, no descriptor left open,
 * and a message naming dir/file and containing phrase. */
static void expect_open_fails(const char *dir, const char *file, kvgpt_status status, const char *phrase)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    kvgpt_error err = {0};
    kvgpt_model *m = (kvgpt_model *)&err;   /* must be overwritten with NULL */
    int fds = open_fds();
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, &err);
    if (s == KVGPT_OK) kvgpt_close(m);
    ck_assert_msg(s == status, "%s/%s: got %s (\"%s\"), want %s", dir, file, kvgpt_strerror(s), err.msg,
                  kvgpt_strerror(status));
    ck_assert_int_eq(err.status, status);
    ck_assert_msg(m == NULL, "a refused open left *out = %p", (void *)m);
    ck_assert_msg(open_fds() == fds, "a refused open left %d file descriptors open", open_fds() - fds);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name %s: \"%s\"", path, err.msg);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "message lacks \"%s\": \"%s\"", phrase, err.msg);
}

/* ---- safetensors: damaged headers -------------------------------------- */

static char *repeat(const char *pre, char c, size_t n, char c2, size_t n2, const char *post, size_t *len)
{
    size_t lp = strlen(pre), lq = strlen(post);
    char *b = malloc(lp + n + n2 + lq + 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, pre, lp);
    memset(b + lp, c, n);
    memset(b + lp + n, c2, n2);
    memcpy(b + lp + n + n2, post, lq + 1);
    *len = lp + n + n2 + lq;
    return b;
}

static const struct {
    const char *name;
    int kind;                /* 0: exact bytes; 1: length field + header text; 2: nested */
    uint64_t len_field;      /* kind 1: 0 = the header's own length */
    const char *bytes;
    size_t n_bytes;          /* kind 0 */
    const char *nest_pre, *nest_post;   /* kind 2: pre + 10000 '[' + 10000 ']' + post */
    kvgpt_status status;
    const char *phrase;
} raw_cases[] = {
    {"empty file", 0, 0, "", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "empty"},
    {"shorter than 8 bytes", 0, 0, "\x10\0\0\0\0", 5, NULL, NULL, KVGPT_ERR_ST_HEADER, "truncated"},
    {"header length > file", 1, 1000, "{}      ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "larger than the file"},
    {"header length 2^62", 1, (uint64_t)1 << 62, "{}      ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "absurd"},
    {"header length 2^64-1", 1, UINT64_MAX, "{}      ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "absurd"},
    {"header length 0", 1, 0, "", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "cannot be a JSON object"},
    {"header not JSON", 1, 0, "hello, world!   ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "not a valid JSON"},
    {"header an array", 1, 0, "[1,2,3] ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "expected an object"},
    {"header a string", 1, 0, "\"abc\"   ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "expected an object"},
    {"unterminated", 1, 0, "{\"a\":{\"dtype\":\"F32", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "unterminated"},
    {"trailing garbage", 1, 0, "{} xyz  ", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "trailing"},
    {"entry not an object", 1, 0, "{\"a\":[1]}", 0, NULL, NULL, KVGPT_ERR_ST_HEADER, "expected an object"},
    {"entry without offsets", 1, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, NULL, NULL, KVGPT_ERR_ST_TENSOR,
     "missing data_offsets"},
    {"three offsets", 1, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 0, NULL, NULL,
     KVGPT_ERR_ST_TENSOR, "two"},
    {"fractional offset", 1, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 0, NULL, NULL,
     KVGPT_ERR_ST_TENSOR, "data_offsets"},
    {"10000 '[' at the top", 2, 0, NULL, 0, "", "", KVGPT_ERR_ST_HEADER, "expected an object"},
    {"10000 '[' in __metadata__", 2, 0, NULL, 0, "{\"__metadata__\":", "}", KVGPT_ERR_ST_HEADER, "nesting too deep"},
    {"10000 '[' as a shape", 2, 0, NULL, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":", ",\"data_offsets\":[0,4]}}",
     KVGPT_ERR_ST_TENSOR, "bad dimension"},
};

START_TEST(test_st_raw)
{
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    const char *name = raw_cases[_i].name;
    size_t len = raw_cases[_i].n_bytes;
    char *hdr = NULL;
    int rc;
    if (raw_cases[_i].kind == 0) {
        rc = tf_write(dir, "model.safetensors", raw_cases[_i].bytes, len);
    } else {
        const char *h = raw_cases[_i].bytes;
        if (raw_cases[_i].kind == 2) h = hdr = repeat(raw_cases[_i].nest_pre, '[', 10000, ']', 10000,
                                                     raw_cases[_i].nest_post, &len);
        else len = strlen(h);
        uint64_t field = raw_cases[_i].len_field ? raw_cases[_i].len_field : len;
        rc = ts_write_raw(dir, "model.safetensors", field, h, len, 16);
    }
    ck_assert_msg(rc == 0, "%s: cannot write the file", name);
    printf("  safetensors %-28s", name);
    expect_open_fails(dir, "model.safetensors", raw_cases[_i].status, raw_cases[_i].phrase);
    printf(" refused\n");
    free(hdr);
    tf_rm_dir(dir);
}
END_TEST

/* ---- safetensors: damaged entries of a real file ----------------------- */

#define LN_F "transformer.ln_f.weight"
#define C_ATTN0 "transformer.h.0.attn.c_attn.weight"

static void mut_out_of_range(ts_file *f)
{
    ts_entry *e = ts_find(f, LN_F);
    uint64_t n = ts_data_len(f);
    e->begin = n - e->nbytes + 4;   /* the right size, 4 bytes past the end */
    e->end = n + 4;
}
static void mut_far_out_of_range(ts_file *f)
{
    ts_entry *e = ts_find(f, LN_F);
    e->begin = (uint64_t)1 << 62;    /* the right size, far past the end: begin + offsets must not wrap */
    e->end = e->begin + e->nbytes;
}
static void mut_offset_2_64(ts_file *f)
{
    ts_entry *e = ts_find(f, LN_F);
    e->begin = UINT64_MAX - 8;       /* not an int64: refused while parsing */
    e->end = UINT64_MAX - 8 + e->nbytes;
}
static void mut_reversed(ts_file *f)
{
    ts_entry *e = ts_find(f, LN_F);
    uint64_t b = e->begin;
    e->begin = e->end;
    e->end = b;
}
static void mut_overlap(ts_file *f)
{
    /* Entry 1 starts 4 bytes into entry 0's data; both keep their sizes. */
    f->e[1].begin = f->e[0].begin + 4;
    f->e[1].end = f->e[1].begin + f->e[1].nbytes;
}
static void mut_size(ts_file *f) { ts_find(f, LN_F)->shape[0] = 127; }
static void mut_dtype(ts_file *f) { strcpy(ts_find(f, LN_F)->dtype, "I64"); }
static void mut_dtype_f64(ts_file *f) { strcpy(ts_find(f, LN_F)->dtype, "F64"); }
static void mut_negative(ts_file *f) { ts_find(f, C_ATTN0)->shape[0] = -384; }
static void mut_overflow(ts_file *f)
{
    /* Each dimension is plausible; the product is 2^66 elements. */
    ts_entry *e = ts_find(f, C_ATTN0);
    e->ndim = 3;
    e->shape[0] = e->shape[1] = (int64_t)1 << 22;
    e->shape[2] = (int64_t)1 << 22;
}
static void mut_huge_dim(ts_file *f) { ts_find(f, C_ATTN0)->shape[0] = (int64_t)1 << 62; }
static void mut_many_dims(ts_file *f)
{
    ts_entry *e = ts_find(f, LN_F);   /* [128] -> [128,1,1,1,1,1,1,1]: same bytes, 8 dimensions */
    e->ndim = TS_MAX_DIMS;
    for (int d = 1; d < TS_MAX_DIMS; d++) e->shape[d] = 1;
}
static void mut_missing(ts_file *f) { ck_assert_int_eq(ts_remove(f, "transformer.h.1.mlp.c_fc.weight"), 0); }
static void mut_missing_wte(ts_file *f) { ck_assert_int_eq(ts_remove(f, "transformer.wte.weight"), 0); }
static void mut_transposed(ts_file *f)
{
    ts_entry *e = ts_find(f, C_ATTN0);   /* [384,128] -> [128,384]: same bytes, wrong layout */
    int64_t t = e->shape[0];
    e->shape[0] = e->shape[1];
    e->shape[1] = t;
}
static void mut_ln_shape(ts_file *f)
{
    ts_entry *e = ts_find(f, LN_F);      /* [128] -> [2,64]: same bytes */
    e->ndim = 2;
    e->shape[0] = 2;
    e->shape[1] = 64;
}
static void mut_duplicate(ts_file *f) { strcpy(f->e[1].name, f->e[0].name); }
static void mut_extra_layer(ts_file *f) { strcpy(ts_find(f, LN_F)->name, "transformer.h.4.ln_1.weight"); }

/* A copy of a real tensor under a new name (appended; then packed). */
static void add_copy(ts_file *f, const char *from, const char *to, int64_t d0, int64_t d1)
{
    ts_entry *src = ts_find(f, from);
    ck_assert_ptr_nonnull(src);
    ts_entry *ne = realloc(f->e, (size_t)(f->n + 1) * sizeof *ne);
    ck_assert_ptr_nonnull(ne);
    f->e = ne;
    src = ts_find(f, from);
    ts_entry *e = &f->e[f->n++];
    *e = *src;
    snprintf(e->name, sizeof e->name, "%s", to);
    e->data = malloc(src->nbytes);
    ck_assert_ptr_nonnull(e->data);
    memcpy(e->data, src->data, src->nbytes);
    e->shape[0] = d0;
    e->shape[1] = d1;
    ts_pack(f);
}
static void mut_bias(ts_file *f) { add_copy(f, LN_F, "transformer.ln_f.bias", 128, 0); }
static void mut_lm_head(ts_file *f)
{
    /* An untied lm_head is accepted only with wte's shape: here it is [128, 65]. */
    add_copy(f, "transformer.wte.weight", "lm_head.weight", 128, 65);
}

static const struct {
    const char *name;
    void (*mutate)(ts_file *);
    int repack;              /* lay the data out again after the change */
    kvgpt_status status;
    const char *phrase;
} entry_cases[] = {
    {"offsets past the data", mut_out_of_range, 0, KVGPT_ERR_ST_TENSOR, "past the data"},
    {"offsets at 2^62", mut_far_out_of_range, 0, KVGPT_ERR_ST_TENSOR, "past the data"},
    {"offsets near 2^64", mut_offset_2_64, 0, KVGPT_ERR_ST_TENSOR, "data_offsets must be two non-negative"},
    {"offsets reversed", mut_reversed, 0, KVGPT_ERR_ST_TENSOR, "reversed"},
    {"offsets overlapping", mut_overlap, 0, KVGPT_ERR_ST_TENSOR, "overlap"},
    {"size != shape x dtype", mut_size, 0, KVGPT_ERR_ST_TENSOR, "need"},
    {"dtype I64", mut_dtype, 0, KVGPT_ERR_ST_TENSOR, "unsupported dtype \"I64\""},
    {"dtype F64", mut_dtype_f64, 0, KVGPT_ERR_ST_TENSOR, "unsupported dtype \"F64\""},
    {"negative dimension", mut_negative, 0, KVGPT_ERR_ST_TENSOR, "negative"},
    {"shape product overflows", mut_overflow, 0, KVGPT_ERR_ST_TENSOR, "overflows"},
    {"dimension 2^62", mut_huge_dim, 0, KVGPT_ERR_ST_TENSOR, "dimension"},
    {"missing h.1.mlp.c_fc.weight", mut_missing, 1, KVGPT_ERR_MISSING_TENSOR, "h.1.mlp.c_fc.weight"},
    {"missing wte", mut_missing_wte, 1, KVGPT_ERR_MISSING_TENSOR, "wte.weight"},
    {"c_attn transposed", mut_transposed, 0, KVGPT_ERR_SHAPE, "h.0.attn.c_attn.weight"},
    {"ln_f [2,64]", mut_ln_shape, 0, KVGPT_ERR_SHAPE, "ln_f.weight"},
    {"name twice", mut_duplicate, 0, KVGPT_ERR_ST_TENSOR, "appears twice"},
    {"a 5th layer in the file", mut_extra_layer, 0, KVGPT_ERR_SHAPE, "n_layer 4"},
    {"a bias with bias false", mut_bias, 0, KVGPT_ERR_SHAPE, "bias false"},
    {"lm_head of the wrong shape", mut_lm_head, 0, KVGPT_ERR_SHAPE, "lm_head"},
};

START_TEST(test_st_entries)
{
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    ts_file f;
    ck_assert_int_eq(ts_read(tf_path(SC "/model.safetensors"), &f), 0);
    ts_pack(&f);
    entry_cases[_i].mutate(&f);
    if (entry_cases[_i].repack) ts_pack(&f);
    ck_assert_int_eq(ts_write(&f, dir, "model.safetensors"), 0);
    ts_free(&f);
    printf("  safetensors %-28s", entry_cases[_i].name);
    expect_open_fails(dir, "model.safetensors", entry_cases[_i].status, entry_cases[_i].phrase);
    printf(" refused\n");
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_st_max_dims)
{
    /* 8 dimensions parse (then the shape is wrong for the config); 9 do not. */
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    ts_file f;
    ck_assert_int_eq(ts_read(tf_path(SC "/model.safetensors"), &f), 0);
    ts_pack(&f);
    mut_many_dims(&f);
    ck_assert_int_eq(ts_write(&f, dir, "model.safetensors"), 0);
    expect_open_fails(dir, "model.safetensors", KVGPT_ERR_SHAPE, "[128,1,1,1,1,1,1,1]");
    char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}";
    ck_assert_int_eq(ts_write_raw(dir, "model.safetensors", strlen(hdr), hdr, strlen(hdr), 4), 0);
    expect_open_fails(dir, "model.safetensors", KVGPT_ERR_ST_TENSOR, "more than 8 dimensions");
    ts_free(&f);
    tf_rm_dir(dir);
}
END_TEST

/* ---- config.json ------------------------------------------------------- */

#define SC_CFG(fields) "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64, \"bias\": false, " \
                       "\"vocab_size\": 65" fields "}"

static const struct {
    const char *name;
    const char *text;        /* NULL: no config.json at all */
    kvgpt_status status;
    const char *file, *phrase;
} config_cases[] = {
    {"missing", NULL, KVGPT_ERR_IO, "config.json", "No such file"},
    {"empty", "", KVGPT_ERR_JSON, "config.json", "not a JSON object"},
    {"not JSON", "n_layer = 4\n", KVGPT_ERR_JSON, "config.json", "not a JSON object"},
    {"an array", "[4, 4, 128]", KVGPT_ERR_JSON, "config.json", "expected an object"},
    {"truncated", "{\"n_layer\": 4, \"n_head\": ", KVGPT_ERR_JSON, "config.json", "not a JSON object"},
    {"a string for n_layer", "{\"n_layer\": \"4\", \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_JSON, "config.json", "expected a number"},
    {"n_layer 4.5", "{\"n_layer\": 4.5, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_JSON, "config.json", "integer"},
    {"deep nesting", NULL, KVGPT_ERR_JSON, "config.json", "nesting too deep"},   /* built below */
    {"n_embd % n_head", "{\"n_layer\": 4, \"n_head\": 3, \"n_embd\": 128, \"block_size\": 64, \"bias\": false, "
                        "\"vocab_size\": 65}", KVGPT_ERR_CONFIG, "config.json", "not divisible by n_head"},
    {"n_layer 0", "{\"n_layer\": 0, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_CONFIG, "config.json", "missing or zero n_layer"},
    {"n_head -4", "{\"n_layer\": 4, \"n_head\": -4, \"n_embd\": 128, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_CONFIG, "config.json", "n_head = -4 is out of range"},
    {"n_embd -1", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": -1, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_CONFIG, "config.json", "n_embd = -1 is out of range"},
    {"block_size 0", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 0, \"vocab_size\": 65}",
     KVGPT_ERR_CONFIG, "config.json", "block_size"},
    {"no block_size", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"vocab_size\": 65}", KVGPT_ERR_CONFIG,
     "config.json", "block_size"},
    {"no vocab_size", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64}", KVGPT_ERR_CONFIG,
     "config.json", "vocab_size"},
    {"n_embd 2^31", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 2147483648, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_CONFIG, "config.json", "n_embd = 2147483648 is out of range"},
    {"vocab_size 2^40", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64, "
                        "\"vocab_size\": 1099511627776}", KVGPT_ERR_CONFIG, "config.json", "vocab_size = 1099511627776 is out of range"},
    {"n_layer 2^20", "{\"n_layer\": 1048576, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 64, \"vocab_size\": 65}",
     KVGPT_ERR_CONFIG, "config.json", "n_layer = 1048576 is out of range"},
    {"n_head 2^63", "{\"n_layer\": 4, \"n_head\": 9223372036854775808, \"n_embd\": 128, \"block_size\": 64, "
                    "\"vocab_size\": 65}", KVGPT_ERR_JSON, "config.json", "out of range"},
    {"block_size 2^30", "{\"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"block_size\": 1073741824, "
                        "\"vocab_size\": 65}", KVGPT_ERR_CONFIG, "config.json", "block_size = 1073741824 is out of range"},
    {"model_type bert", "{\"model_type\": \"bert\", \"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, \"n_positions\": 64, "
                        "\"vocab_size\": 65}", KVGPT_ERR_CONFIG, "config.json", "model_type"},
    {"activation relu", "{\"activation_function\": \"relu\", \"n_layer\": 4, \"n_head\": 4, \"n_embd\": 128, "
                        "\"n_positions\": 64, \"vocab_size\": 65}", KVGPT_ERR_CONFIG, "config.json", "relu"},
    /* Valid configs that disagree with the file. */
    {"n_layer 5 (file has 4)", SC_CFG(",\"n_layer\": 5"), KVGPT_ERR_MISSING_TENSOR, "model.safetensors",
     "h.4.ln_1.weight"},
    {"n_layer 3 (file has 4)", SC_CFG(",\"n_layer\": 3"), KVGPT_ERR_SHAPE, "model.safetensors", "n_layer 3"},
    {"n_embd 64 (file has 128)", SC_CFG(",\"n_embd\": 64"), KVGPT_ERR_SHAPE, "model.safetensors", "wte.weight"},
    {"vocab_size 66", SC_CFG(",\"vocab_size\": 66"), KVGPT_ERR_SHAPE, "model.safetensors", "wte.weight"},
    {"block_size 128", SC_CFG(",\"block_size\": 128"), KVGPT_ERR_SHAPE, "model.safetensors", "wpe.weight"},
    {"bias true", SC_CFG(",\"bias\": true"), KVGPT_ERR_MISSING_TENSOR, "model.safetensors", "bias"},
};

START_TEST(test_config)
{
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    const char *text = config_cases[_i].text;
    char *nest = NULL;
    size_t len = text ? strlen(text) : 0;
    if (strcmp(config_cases[_i].name, "deep nesting") == 0)
        text = nest = repeat("{\"n_layer\": 4, \"x\": ", '[', 10000, ']', 10000, "}", &len);
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (text) ck_assert_int_eq(tf_write(dir, "config.json", text, len), 0);
    else ck_assert_int_eq(unlink(p), 0);
    printf("  config.json %-28s", config_cases[_i].name);
    expect_open_fails(dir, config_cases[_i].file, config_cases[_i].status, config_cases[_i].phrase);
    printf(" refused\n");
    /* The plan reads the same config and must refuse it the same way. */
    if (strcmp(config_cases[_i].file, "config.json") == 0) {
        kvgpt_options o;
        kvgpt_options_default(&o);
        o.model_dir = dir;
        kvgpt_plan plan;
        kvgpt_error err = {0};
        ck_assert_int_eq(kvgpt_plan_model(&o, &plan, &err), config_cases[_i].status);
    }
    free(nest);
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_config_too_big)
{
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    size_t len;
    char *big = repeat("{\"n_layer\": 4, \"pad\": \"", 'x', 70000, 'x', 0, "\"}", &len);
    ck_assert_int_eq(tf_write(dir, "config.json", big, len), 0);
    expect_open_fails(dir, "config.json", KVGPT_ERR_CONFIG, "at most");
    free(big);
    tf_rm_dir(dir);
}
END_TEST

/* ---- vocab.json -------------------------------------------------------- */

/* A char vocab of n tokens ("a", "b", ... then "\u00e9"-style escapes). */
/* A char vocab.json of n tokens U+0100.. (stoi its exact inverse), extra
 * appended inside itos. */
static char *char_vocab(int n, const char *extra)
{
    size_t cap = 64 + (size_t)n * 32 + strlen(extra);
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    size_t at = (size_t)snprintf(b, cap, "{\"stoi\": {");
    for (int i = 0; i < n; i++) at += (size_t)snprintf(b + at, cap - at, "%s\"\\u%04x\": %d", i ? ", " : "", 0x100 + i, i);
    at += (size_t)snprintf(b + at, cap - at, "}, \"itos\": [");
    for (int i = 0; i < n; i++) at += (size_t)snprintf(b + at, cap - at, "%s\"\\u%04x\"", i ? ", " : "", 0x100 + i);
    snprintf(b + at, cap - at, "%s]}", extra);
    return b;
}

static const struct {
    const char *name;
    int n_tokens;            /* > 0: a generated vocab of that many tokens */
    const char *text;        /* else this text */
    const char *phrase;
} vocab_cases[] = {
    {"not JSON", 0, "stoi: a b c", "not valid JSON"},
    {"truncated", 0, "{\"itos\": [\"a\", \"b\"", "not valid JSON"},
    {"itos 64 of 65", 64, NULL, "itos has 64 entries but the model's vocab_size is 65"},
    {"itos 66 of 65", 66, NULL, "more than vocab_size 65"},
    {"no itos", 0, "{\"stoi\": {\"a\": 0}}", "no \"itos\""},
    {"empty token", 0, "{\"itos\": [\"\"]}", "empty"},
    {"bad escape", 0, "{\"itos\": [\"\\ud800\"]}", "badly escaped"},
    {"itos of numbers", 0, "{\"itos\": [1, 2, 3]}", "not valid JSON"},
    {"deep nesting", 0, NULL, "nesting too deep"},
};

START_TEST(test_char_vocab)
{
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    char *text;
    size_t len;
    if (vocab_cases[_i].n_tokens) text = char_vocab(vocab_cases[_i].n_tokens, "");
    else if (vocab_cases[_i].text) text = strdup(vocab_cases[_i].text);
    else text = repeat("{\"stoi\": ", '[', 10000, ']', 10000, ", \"itos\": []}", &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(tf_write(dir, "vocab.json", text, strlen(text)), 0);
    printf("  vocab.json  %-28s", vocab_cases[_i].name);
    expect_open_fails(dir, "vocab.json", KVGPT_ERR_VOCAB, vocab_cases[_i].phrase);
    printf(" refused\n");
    free(text);
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_char_vocab_valid_generated)
{
    /* The generator above makes a vocab the loader accepts at the right length:
     * the refusals above are about the fault, not the generator. */
    char dir[4096];
    if (!copy_model(SC, dir, sizeof dir)) return;
    char *text = char_vocab(65, "");
    ck_assert_int_eq(tf_write(dir, "vocab.json", text, strlen(text)), 0);
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    kvgpt_model *m = NULL;
    kvgpt_error err = {0};
    ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_OK, "%s", err.msg);
    int32_t ids[4];
    int n;
    ck_assert_int_eq(kvgpt_encode(m, "\xc4\x81\xc4\x80", 4, ids, 4, &n, &err), KVGPT_OK);   /* U+0101 U+0100 */
    ck_assert(n == 2 && ids[0] == 1 && ids[1] == 0);
    kvgpt_close(m);
    free(text);
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_bpe_vocab_broken)
{
    char dir[4096];
    if (!copy_model(HF, dir, sizeof dir)) return;
    const char *bad = "{\"!\": 0, \"\\\"\": 1,";
    ck_assert_int_eq(tf_write(dir, "vocab.json", bad, strlen(bad)), 0);
    expect_open_fails(dir, "vocab.json", KVGPT_ERR_VOCAB, "vocab.json");
    const char *merges = "#version: 0.2\nnot-a-merge\n";
    ck_assert_int_eq(tf_write(dir, "merges.txt", merges, strlen(merges)), 0);
    size_t len;
    char *v = tf_read_file(tf_path(HF "/vocab.json"), &len);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(tf_write(dir, "vocab.json", v, len), 0);
    free(v);
    expect_open_fails(dir, "merges.txt", KVGPT_ERR_VOCAB, "merges.txt:2");
    tf_rm_dir(dir);
}
END_TEST

/* ---- layouts and file dtypes that must load ---------------------------- */

/* Runs the last (longest) reference entry of a model folder; returns its max |diff|. */
static double logits_vs_reference(const char *dir, const char *model, double tol, const char *what)
{
    ref_set set;
    char why[512];
    const int sc = strcmp(model, SC) == 0;
    const char *idx = sc ? "reference/shakespeare_char_logits.json" : "reference/gpt2_tiny_hf_logits.json";
    const char *f32 = sc ? "reference/shakespeare_char_logits.f32" : "reference/gpt2_tiny_hf_logits_gelu_tanh.f32";
    ck_assert_msg(ref_load(tf_path(idx), sc ? NULL : "gelu_tanh", &set, why, sizeof why) == 0, "%s", why);
    double worst = 0;
    for (int i = 0; i < set.n; i++) {
        const ref_entry *e = &set.e[i];
        kvgpt_options o;
        kvgpt_options_default(&o);
        o.model_dir = dir;
        float *got;
        kvgpt_error err = {0};
        kvgpt_status s = ref_run(&o, e, &got, &err);
        ck_assert_msg(s == KVGPT_OK, "%s: %s: %s", what, kvgpt_strerror(s), err.msg);
        float *want = ref_logits(tf_path(f32), e, set.vocab_size);
        ck_assert_ptr_nonnull(want);
        ref_diff d;
        ref_compare(got, want, e, set.vocab_size, &d);
        ck_assert_msg(d.max_abs <= tol, "%s %s: logit [%d,%d] off by %g (tolerance %g)", what, e->name, d.worst_row,
                      d.worst_col, d.max_abs, tol);
        if (tol <= 1e-4)
            ck_assert_msg(d.argmax_mismatch == 0, "%s %s: argmax differs at %d positions", what, e->name,
                          d.argmax_mismatch);
        if (d.max_abs > worst) worst = d.max_abs;
        free(got);
        free(want);
    }
    printf("  %-40s max |diff| vs nanoGPT %.3g (tolerance %g)\n", what, worst, tol);
    return worst;
}

/* A fixture copy whose safetensors is rewritten by f (prefix, dtype). */
static int rewrite_model(const char *fixture, char *dir, size_t cap, const char *prefix, const char *half,
                         int add_lm_head)
{
    if (!copy_model(fixture, dir, cap)) return 0;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s/model.safetensors", tf_dir(), fixture);
    ts_file f;
    ck_assert_int_eq(ts_read(p, &f), 0);
    if (prefix) ts_prefix(&f, prefix);
    if (add_lm_head) {   /* GPT2LMHeadModel files may carry the tied head: [vocab, n_embd] */
        char wte[200];
        snprintf(wte, sizeof wte, "%swte.weight", prefix ? prefix : "");
        const ts_entry *e = ts_find(&f, wte);
        ck_assert_ptr_nonnull(e);
        add_copy(&f, wte, "lm_head.weight", e->shape[0], e->shape[1]);
    }
    if (half) ck_assert_int_eq(ts_to_half(&f, half), 0);
    ts_pack(&f);
    ck_assert_int_eq(ts_write(&f, dir, "model.safetensors"), 0);
    ts_free(&f);
    return 1;
}

START_TEST(test_orig_mod_prefix)
{
    char dir[4096];
    if (!rewrite_model(SC, dir, sizeof dir, "_orig_mod.", NULL, 0)) return;
    logits_vs_reference(dir, SC, 1e-4, "shakespeare_char, _orig_mod. names");
    tf_rm_dir(dir);
}
END_TEST

START_TEST(test_hf_transformer_prefix)
{
    /* GPT2LMHeadModel names: "transformer.h.0..." with Conv1D tensors and a
     * tied "lm_head.weight". The layout follows the config (HF form), not the
     * nanoGPT-like names. */
    char dir[4096];
    if (!rewrite_model(HF, dir, sizeof dir, "transformer.", NULL, 1)) return;
    logits_vs_reference(dir, HF, 1e-4, "gpt2_tiny_hf, transformer. names");
    tf_rm_dir(dir);
}
END_TEST

/* Half-precision files: every weight rounded once, then computed in f32.
 * Tolerances are 3-4x the error measured here with a correct conversion; a
 * wrong one (bytes swapped, truncated exponent) is off by whole units. */
START_TEST(test_half_dtypes)
{
    static const struct { const char *model, *dtype; double tol; } cases[] = {
        {SC, "F16", 0.03}, {SC, "BF16", 0.2}, {HF, "F16", 0.05}, {HF, "BF16", 0.3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[4096], what[96];
        if (!rewrite_model(cases[i].model, dir, sizeof dir, NULL, cases[i].dtype, 0)) return;
        snprintf(what, sizeof what, "%s, %s file", cases[i].model, cases[i].dtype);
        double worst = logits_vs_reference(dir, cases[i].model, cases[i].tol, what);
        /* Not suspiciously exact either: the file really was half precision. */
        ck_assert_msg(worst > 1e-4, "%s matches f32 to %g: was it converted?", what, worst);
        tf_rm_dir(dir);
    }
}
END_TEST

START_TEST(test_converters)
{
    /* The test-side converters against values whose halves are known. */
    static const struct { float f; uint16_t h, b; } v[] = {
        {1.0f, 0x3c00, 0x3f80},       {-2.0f, 0xc000, 0xc000},     {65504.0f, 0x7bff, 0x4780},
        {65520.0f, 0x7c00, 0x4780},   {5.9604645e-8f, 0x0001, 0x3380}, {0.1f, 0x2e66, 0x3dcd},
        {1.00048828125f, 0x3c00, 0x3f80},   /* exactly half an f16 ulp above 1: ties to even */
        {1.00146484375f, 0x3c02, 0x3f80},   /* 1.5 ulp: ties to even, up */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ck_assert_msg(ts_f32_to_f16(v[i].f) == v[i].h, "f16(%g) = 0x%04x, want 0x%04x", (double)v[i].f,
                      ts_f32_to_f16(v[i].f), v[i].h);
        ck_assert_msg(ts_f32_to_bf16(v[i].f) == v[i].b, "bf16(%g) = 0x%04x, want 0x%04x", (double)v[i].f,
                      ts_f32_to_bf16(v[i].f), v[i].b);
    }
}
END_TEST

/* ---- bad options ------------------------------------------------------- */

START_TEST(test_open_bad_options)
{
    if (!tf_need_fixtures(__func__)) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tf_path(SC));
    static const struct { const char *what; int batch, context, wdt, gelu; const char *phrase; } v[] = {
        {"batch 0", 0, 0, 0, 0, "batch 0"},
        {"batch 65", 65, 0, 0, 0, "batch 65"},
        {"context 65 > block_size 64", 1, 65, 0, 0, "context 65"},
        {"context -1", 1, -1, 0, 0, "context -1"},
        {"weight dtype 7", 1, 0, 7, 0, "dtype"},
        {"gelu 9", 1, 0, 0, 9, "GELU"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        kvgpt_options o;
        kvgpt_options_default(&o);
        o.model_dir = dir;
        o.batch = v[i].batch;
        o.context = v[i].context;
        o.weight_dtype = (kvgpt_dtype)v[i].wdt;
        o.gelu = (kvgpt_gelu)v[i].gelu;
        kvgpt_model *m = (kvgpt_model *)&o;
        kvgpt_error err = {0};
        ck_assert_msg(kvgpt_open(&o, NULL, 0, &m, &err) == KVGPT_ERR_ARG, "%s: %s", v[i].what, err.msg);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(err.msg, v[i].phrase), "%s: message \"%s\"", v[i].what, err.msg);
    }
    kvgpt_options o;
    kvgpt_options_default(&o);
    kvgpt_model *m = (kvgpt_model *)&o;
    kvgpt_error err = {0};
    ck_assert_int_eq(kvgpt_open(NULL, NULL, 0, &m, &err), KVGPT_ERR_ARG);
    ck_assert_ptr_null(m);
    m = (kvgpt_model *)&o;
    ck_assert_int_eq(kvgpt_open(&o, NULL, 0, &m, &err), KVGPT_ERR_ARG);   /* no model_dir */
    ck_assert_ptr_null(m);
    o.model_dir = dir;
    ck_assert_int_eq(kvgpt_open(&o, NULL, 0, NULL, &err), KVGPT_ERR_ARG);
    o.model_dir = "/nonexistent/kvgpt-model";
    ck_assert_int_eq(kvgpt_open(&o, NULL, 0, &m, &err), KVGPT_ERR_IO);
    ck_assert_msg(strstr(err.msg, "/nonexistent/kvgpt-model/config.json"), "message: %s", err.msg);
    kvgpt_close(NULL);
}
END_TEST

/* ---- the kvgpt command on bad input ------------------------------------ */

static const char *tool_path(void)
{
    const char *t = getenv("KVGPT_TOOL");
    if (!t || !*t) t = "build/cpu/kvgpt";
    if (access(t, X_OK) != 0) return NULL;
    return t;
}

typedef struct {
    int code;                /* exit code; -1 when it died from a signal */
    char out[8192], err[8192];
} run_result;

static void read_into(const char *path, char *buf, size_t cap)
{
    size_t len = 0;
    char *b = tf_read_file(path, &len);
    snprintf(buf, cap, "%s", b ? b : "");
    free(b);
}

static void run_tool(const char *tool, const char *args, run_result *r)
{
    char dir[4096], cmd[16384], p[4200];
    ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
    snprintf(cmd, sizeof cmd, "exec '%s' %s >'%s/out' 2>'%s/err' </dev/null", tool, args, dir, dir);
    int st = system(cmd);
    ck_assert_msg(st != -1, "system() failed");
    /* exec: the shell is replaced, so a signal shows as a signal (or 128+n). */
    if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) >= 128)) r->code = -1;
    else r->code = WEXITSTATUS(st);
    snprintf(p, sizeof p, "%s/out", dir);
    read_into(p, r->out, sizeof r->out);
    snprintf(p, sizeof p, "%s/err", dir);
    read_into(p, r->err, sizeof r->err);
    tf_rm_dir(dir);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The command must exit non-zero (not from a signal) with exactly one line on
 * stderr that starts with "kvgpt CMD:" and contains phrase. */
static void expect_cli_error(const char *tool, const char *cmd, const char *args, const char *phrase)
{
    char full[8192];
    snprintf(full, sizeof full, "%s %s", cmd, args);
    run_result r;
    run_tool(tool, full, &r);
    printf("  kvgpt %-60.60s -> %d: %s", full, r.code, r.err[0] ? r.err : "(nothing on stderr)\n");
    ck_assert_msg(r.code != -1, "kvgpt %s crashed (signal); stderr: %s", full, r.err);
    ck_assert_msg(r.code != 0, "kvgpt %s succeeded on bad input; stdout: %.200s", full, r.out);
    ck_assert_msg(count_lines(r.err) == 1 && r.err[strlen(r.err) - 1] == '\n',
                  "kvgpt %s: stderr is not one line: \"%s\"", full, r.err);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "kvgpt %s: ", cmd);
    ck_assert_msg(strncmp(r.err, prefix, strlen(prefix)) == 0, "kvgpt %s: stderr does not start with \"%s\": %s", full,
                  prefix, r.err);
    ck_assert_msg(strstr(r.err, phrase) != NULL, "kvgpt %s: stderr lacks \"%s\": %s", full, phrase, r.err);
}

START_TEST(test_cli_bad_input)
{
    const char *tool = tool_path();
    if (!tool) {
        tf_skip(__func__, "the kvgpt tool is not built (KVGPT_TOOL)");
        return;
    }
    if (!tf_need_fixtures(__func__)) return;
    char sc[4200], args[8400];
    snprintf(sc, sizeof sc, "%s/%s", tf_dir(), SC);

    expect_cli_error(tool, "logits", "--ids 1,2", "--model");
    expect_cli_error(tool, "logits", "--model /nonexistent/kvgpt-model --ids 1", "/nonexistent/kvgpt-model/config.json");
    snprintf(args, sizeof args, "--model '%s' --ids 1,x", sc);
    expect_cli_error(tool, "logits", args, "1,x");
    snprintf(args, sizeof args, "--model '%s' --ids ,", sc);
    expect_cli_error(tool, "logits", args, "token ids");
    snprintf(args, sizeof args, "--model '%s' --ids 1,65", sc);
    expect_cli_error(tool, "logits", args, "65");
    snprintf(args, sizeof args, "--model '%s' --ids -1", sc);
    expect_cli_error(tool, "logits", args, "-1");
    snprintf(args, sizeof args, "--model '%s' --ids 99999999999999999999", sc);
    expect_cli_error(tool, "logits", args, "token id 99999999999999999999 is out of range");
    snprintf(args, sizeof args, "--model '%s' --ids 1 --bogus", sc);
    expect_cli_error(tool, "logits", args, "unknown option --bogus");
    snprintf(args, sizeof args, "--model '%s' --ids 1 --threads", sc);
    expect_cli_error(tool, "logits", args, "needs a value");
    snprintf(args, sizeof args, "--model '%s' --text 'a#b'", sc);
    expect_cli_error(tool, "logits", args, "vocabulary");
    /* 65 tokens: one more than block_size. */
    char *ids = malloc(65 * 3 + 1);
    ck_assert_ptr_nonnull(ids);
    ids[0] = 0;
    for (int i = 0; i < 65; i++) strcat(ids, i ? ",1" : "1");
    snprintf(args, sizeof args, "--model '%s' --ids %s", sc, ids);
    free(ids);
    expect_cli_error(tool, "logits", args, "64");

    expect_cli_error(tool, "budget", "", "--model");
    expect_cli_error(tool, "budget", "--model /nonexistent/kvgpt-model", "/nonexistent/kvgpt-model/config.json");
    expect_cli_error(tool, "budget", "--shape gpt5", "gpt5");
    expect_cli_error(tool, "budget", "--shape gpt2 --batch x", "--batch");
    expect_cli_error(tool, "budget", "--shape gpt2 --batch 0", "batch");
    expect_cli_error(tool, "budget", "--shape gpt2 --context 2048", "context");
    expect_cli_error(tool, "budget", "--shape gpt2 --arena-limit -5", "arena-limit");
    expect_cli_error(tool, "budget", "--shape gpt2 --dtype f8", "f8");
    expect_cli_error(tool, "budget", "--shape gpt2 --nope", "unknown option --nope");
}
END_TEST

START_TEST(test_cli_arena_limit)
{
    const char *tool = tool_path();
    if (!tool) {
        tf_skip(__func__, "the kvgpt tool is not built (KVGPT_TOOL)");
        return;
    }
    if (!tf_need_fixtures(__func__)) return;
    char args[8400];
    snprintf(args, sizeof args, "--model '%s/%s' --arena-limit 100000", tf_dir(), SC);
    expect_cli_error(tool, "budget", args, "missing");
    run_result r;
    snprintf(args, sizeof args, "budget --model '%s/%s' --arena-limit 100000", tf_dir(), SC);
    run_tool(tool, args, &r);
    ck_assert_msg(strstr(r.out, "kv.k") && strstr(r.out, "TOTAL"), "the refused plan is not printed: %s", r.out);
    ck_assert_msg(strstr(r.err, "Requested") && strstr(r.err, "available 100000"), "stderr: %s", r.err);
    run_tool(tool, "budget --shape gpt2 --arena-limit 1000000", &r);
    ck_assert_msg(r.code > 0 && strstr(r.err, "missing") && strstr(r.out, "kv.v"), "gpt2 shape: %d %s", r.code, r.err);
    /* And the same command with room succeeds. */
    snprintf(args, sizeof args, "budget --model '%s/%s'", tf_dir(), SC);
    run_tool(tool, args, &r);
    ck_assert_msg(r.code == 0 && strstr(r.out, "TOTAL"), "budget of a good model: %d %s", r.code, r.err);
    snprintf(args, sizeof args, "logits --model '%s/%s' --ids 0", tf_dir(), SC);
    run_tool(tool, args, &r);
    ck_assert_msg(r.code == 0 && strstr(r.out, "1 tokens"), "logits of a good model: %d %s", r.code, r.err);
}
END_TEST

START_TEST(test_cli_damaged_model)
{
    /* Damaged files reach the command as one line naming the file, not a crash. */
    const char *tool = tool_path();
    char dir[4096], args[8400];
    if (!tool || !copy_model(SC, dir, sizeof dir)) return;
    ck_assert_int_eq(ts_write_raw(dir, "model.safetensors", (uint64_t)1 << 62, "{}", 2, 0), 0);
    snprintf(args, sizeof args, "--model '%s' --ids 1", dir);
    expect_cli_error(tool, "logits", args, "model.safetensors");
    ck_assert_int_eq(tf_write(dir, "config.json", "{", 1), 0);
    expect_cli_error(tool, "logits", args, "config.json");
    snprintf(args, sizeof args, "--model '%s'", dir);
    expect_cli_error(tool, "budget", args, "config.json");
    tf_rm_dir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *st = tcase_create("safetensors");
    tcase_add_loop_test(st, test_st_raw, 0, (int)(sizeof raw_cases / sizeof raw_cases[0]));
    tcase_add_loop_test(st, test_st_entries, 0, (int)(sizeof entry_cases / sizeof entry_cases[0]));
    tcase_add_test(st, test_st_max_dims);
    suite_add_tcase(s, st);
    TCase *cfg = tcase_create("config");
    tcase_add_loop_test(cfg, test_config, 0, (int)(sizeof config_cases / sizeof config_cases[0]));
    tcase_add_test(cfg, test_config_too_big);
    suite_add_tcase(s, cfg);
    TCase *voc = tcase_create("vocab");
    tcase_add_loop_test(voc, test_char_vocab, 0, (int)(sizeof vocab_cases / sizeof vocab_cases[0]));
    tcase_add_test(voc, test_char_vocab_valid_generated);
    tcase_add_test(voc, test_bpe_vocab_broken);
    suite_add_tcase(s, voc);
    TCase *lay = tcase_create("layouts");
    tcase_set_timeout(lay, 120);
    tcase_add_test(lay, test_converters);
    tcase_add_test(lay, test_orig_mod_prefix);
    tcase_add_test(lay, test_hf_transformer_prefix);
    tcase_add_test(lay, test_half_dtypes);
    suite_add_tcase(s, lay);
    TCase *opt = tcase_create("options");
    tcase_add_test(opt, test_open_bad_options);
    suite_add_tcase(s, opt);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, test_cli_bad_input);
    tcase_add_test(cli, test_cli_arena_limit);
    tcase_add_test(cli, test_cli_damaged_model);
    suite_add_tcase(s, cli);
    return tf_run_suite(s);
}
