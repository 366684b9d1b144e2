/* tests/test_ckpt.c — nanoGPT's ckpt.pt and meta.pkl read without Python:
 * the fixture's tensors equal model.safetensors' bit for bit, model_args
 * equals config.json, meta.pkl equals vocab.json; a synthetic checkpoint
 * covers memo references, parameters, half storages, offsets and shared
 * tensors; a zip64 rewrite reads the same; and damaged or hostile files
 * (truncated, bad opcode, foreign GLOBAL, missing storage, out-of-range
 * tensor, strides, CRC, compression) are refused with a message. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/ckpt.h"
#include "tokenizer/charvocab.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

#define SKIP_WITHOUT_FIXTURES()                                                   \
    do {                                                                          \
        if (!tf_need_fixtures(__func__)) return;                                  \
    } while (0)

/* ---- small helpers ---------------------------------------------------------- */

static unsigned char *read_range(const char *path, uint64_t off, size_t n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b = malloc(n ? n : 1);
    ck_assert_msg(f && b, "cannot read %s", path);
    ck_assert_int_eq(fseek(f, (long)off, SEEK_SET), 0);
    ck_assert_msg(fread(b, 1, n, f) == n, "%s: short read at %llu", path, (unsigned long long)off);
    fclose(f);
    return b;
}

/* Opens and parses with exactly the planned scratch, deliberately misaligned,
 * so that ASan sees any byte used past the plan. *mem must be freed. */
static kvgpt_status open_exact(const char *path, st_file *s, void **mem, kvgpt_config *cfg, kvgpt_error *err)
{
    size_t bytes = 0;
    *mem = NULL;
    kvgpt_status st = ckpt_open(s, path, &bytes, cfg, err);
    if (st) return st;
    char *m = malloc(bytes + 1);
    *mem = m;
    st = ckpt_parse(s, m + 1, bytes, err);
    if (st) st_close(s);
    return st;
}

static const st_tensor *find_exact(const st_file *s, const char *name)
{
    for (size_t i = 0; i < s->n_tensors; i++)
        if (s->tensors[i].name_len == strlen(name) && memcmp(s->tensors[i].name, name, strlen(name)) == 0)
            return &s->tensors[i];
    return NULL;
}

/* A damaged copy lives in its own temporary folder. */
typedef struct {
    char dir[512], path[600];
} tmpfile_t;

static const char *write_tmp(tmpfile_t *t, const char *name, const void *b, size_t n)
{
    ck_assert_int_eq(tf_tmpdir(t->dir, sizeof t->dir), 0);
    ck_assert_int_eq(tf_write(t->dir, name, b, n), 0);
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

static void drop_tmp(tmpfile_t *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

/* Both ways in (with and without the plan-time model_args scan) must refuse,
 * with the status, the file's path and the needle in the message. */
static void expect_refused(const char *path, kvgpt_status want, const char *needle)
{
    for (int with_cfg = 1; with_cfg >= 0; with_cfg--) {
        st_file s;
        void *mem = NULL;
        kvgpt_config cfg;
        kvgpt_error err = {0, ""};
        kvgpt_status st = open_exact(path, &s, &mem, with_cfg ? &cfg : NULL, &err);
        if (!st) st_close(&s);
        free(mem);
        ck_assert_msg(st == want, "%s (scan %d): status %d, want %d (%s)", path, with_cfg, st, want, err.msg);
        ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
        ck_assert_msg(strstr(err.msg, needle) != NULL, "message lacks \"%s\": %s", needle, err.msg);
    }
}

/* ---- the fixture checkpoint, in memory, with data.pkl located ---------------- */

typedef struct {
    unsigned char *b;
    size_t n;
    uint64_t pkl_off, pkl_len, crc_at;   /* data.pkl's bytes; its CRC field in the central directory */
    uint64_t cd_off, cd_size, n_entries;
} ckimg;

static void ck_load(ckimg *im)
{
    const char *path = tf_path("shakespeare_char/ckpt.pt");
    im->b = (unsigned char *)tf_read_file(path, &im->n);
    ck_assert_msg(im->b != NULL, "cannot read %s", path);
    lf_file f;
    zip_dir d;
    zip_entry e;
    zip_cursor cur;
    kvgpt_error err = {0, ""};
    unsigned char *buf = malloc(ZIP_BUF_BYTES);
    char name[ZIP_NAME_MAX + 1];
    ck_assert_int_eq(lf_open(&f, path, &err), KVGPT_OK);
    ck_assert_msg(zip_dir_read(&f, &d, buf, ZIP_BUF_BYTES, &err) == KVGPT_OK, "%s", err.msg);
    im->cd_off = d.cd_off;
    im->cd_size = d.cd_size;
    im->n_entries = d.n_entries;
    zip_cursor_init(&cur, &f, &d, buf, ZIP_BUF_BYTES);
    im->pkl_len = 0;
    for (uint64_t i = 0; i < d.n_entries; i++) {
        uint64_t at = cur.pos;
        ck_assert_msg(zip_next(&cur, &e, &err) == KVGPT_OK, "%s", err.msg);
        if (e.name_len == 13 && memcmp(e.name, "ckpt/data.pkl", 13) == 0) {
            im->pkl_len = e.size;
            im->crc_at = at + 16;
            memcpy(name, e.name, e.name_len);
            e.name = name;
            unsigned char *local = malloc(ZIP_BUF_BYTES);
            ck_assert_int_eq(zip_data_off(&f, &d, &e, local, ZIP_BUF_BYTES, &im->pkl_off, &err), KVGPT_OK);
            free(local);
        }
    }
    lf_close(&f);
    free(buf);
    ck_assert_msg(im->pkl_len > 0, "no ckpt/data.pkl in the fixture");
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A consistent edit of data.pkl: the directory's CRC-32 and the data
 * descriptor torch writes after the bytes both follow it. */
static void ck_fix_crc(ckimg *im)
{
    uint32_t crc = zip_crc32(0, im->b + im->pkl_off, (size_t)im->pkl_len);
    unsigned char *dd = im->b + im->pkl_off + im->pkl_len;
    put32(im->b + im->crc_at, crc);
    ck_assert_msg(dd[0] == 'P' && dd[1] == 'K' && dd[2] == 7 && dd[3] == 8, "no data descriptor after data.pkl");
    put32(dd + 4, crc);
}

/* Offset in the file of the first occurrence of pat inside data.pkl. */
static uint64_t pkl_find(const ckimg *im, const void *pat, size_t len)
{
    for (uint64_t i = im->pkl_off; i + len <= im->pkl_off + im->pkl_len; i++)
        if (memcmp(im->b + i, pat, len) == 0) return i;
    ck_abort_msg("pattern of %zu bytes not found in data.pkl", len);
    return 0;
}

/* ---- the fixture: equal to the safetensors and config.json ------------------- */

START_TEST(test_config_matches_json)
{
    SKIP_WITHOUT_FIXTURES();
    kvgpt_config a, b;
    kvgpt_error err = {0, ""};
    size_t bytes = 0;
    ck_assert_msg(ckpt_plan(tf_path("shakespeare_char/ckpt.pt"), &bytes, &a, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(loader_read_config(tf_path("shakespeare_char"), &b, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(a.n_layer, 4);
    ck_assert_int_eq(a.n_layer, b.n_layer);
    ck_assert_int_eq(a.n_head, b.n_head);
    ck_assert_int_eq(a.n_embd, b.n_embd);
    ck_assert_int_eq(a.block_size, b.block_size);
    ck_assert_int_eq(a.vocab_size, b.vocab_size);
    ck_assert_int_eq(a.bias, 0);
    ck_assert_int_eq(a.bias, b.bias);
    ck_assert_int_eq(a.hf_layout, b.hf_layout);
    ck_assert_int_eq(a.gelu, KVGPT_GELU_ERF);
    ck_assert_int_eq(a.gelu, b.gelu);
    ck_assert(a.ln_eps == b.ln_eps);
    ck_assert_int_eq(a.eot_token, b.eot_token);
    /* The plan is an upper bound, not an absurd one: the pickle is 13826 bytes. */
    ck_assert_msg(bytes > 13826 && bytes < (4u << 20), "scratch %zu", bytes);
}
END_TEST

START_TEST(test_tensors_bit_exact)
{
    SKIP_WITHOUT_FIXTURES();
    const char *ck = tf_path("shakespeare_char/ckpt.pt");
    char stp[4096];
    snprintf(stp, sizeof stp, "%s", tf_path("shakespeare_char/model.safetensors"));
    st_file c, s;
    void *cmem, *smem;
    size_t sb;
    kvgpt_error err = {0, ""};
    ck_assert_msg(open_exact(ck, &c, &cmem, NULL, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(st_open(&s, stp, &sb, &err) == KVGPT_OK, "%s", err.msg);
    smem = malloc(sb);
    ck_assert_msg(st_parse(&s, smem, sb, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(c.data_start, 0);
    /* Every safetensors tensor, by name, bit for bit. */
    for (size_t i = 0; i < s.n_tensors; i++) {
        const st_tensor *t = &s.tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        const st_tensor *u = find_exact(&c, name);
        ck_assert_msg(u != NULL, "ckpt.pt has no \"%s\"", name);
        ck_assert_msg(u->dtype == t->dtype && u->ndim == t->ndim, "%s: dtype/ndim differ", name);
        for (int d = 0; d < t->ndim; d++) ck_assert_int_eq(u->shape[d], t->shape[d]);
        size_t n = (size_t)(t->end - t->begin);
        ck_assert_int_eq(u->end - u->begin, n);
        unsigned char *x = read_range(stp, s.data_start + t->begin, n), *y = read_range(ck, u->begin, n);
        ck_assert_msg(memcmp(x, y, n) == 0, "%s: bytes differ", name);
        free(x);
        free(y);
    }
    /* And nothing else but the tied head (the mask buffers are dropped). */
    ck_assert_int_eq(c.n_tensors, s.n_tensors + 1);
    const st_tensor *head = find_exact(&c, "lm_head.weight"), *wte = find_exact(&c, "transformer.wte.weight");
    ck_assert(head && wte);
    ck_assert_msg(head->begin == wte->begin && head->end == wte->end, "lm_head.weight does not share wte's storage");
    for (size_t i = 0; i < c.n_tensors; i++)
        ck_assert_msg(c.tensors[i].name_len < 10 || memcmp(c.tensors[i].name + c.tensors[i].name_len - 10,
                                                          ".attn.bias", 10) != 0, "mask buffer kept");
    for (size_t i = 1; i < c.n_tensors; i++)
        ck_assert_msg(memcmp(c.tensors[i - 1].name, c.tensors[i].name,
                             c.tensors[i].name_len < c.tensors[i - 1].name_len ? c.tensors[i].name_len
                                                                               : c.tensors[i - 1].name_len) <= 0,
                      "table not sorted by name");
    st_close(&s);
    st_close(&c);
    free(smem);
    free(cmem);
}
END_TEST

/* The loader's own entry points work on the ckpt table unchanged. */
START_TEST(test_st_interface)
{
    SKIP_WITHOUT_FIXTURES();
    st_file c, s;
    void *cmem, *smem;
    size_t sb;
    kvgpt_error err = {0, ""};
    ck_assert_msg(open_exact(tf_path("shakespeare_char/ckpt.pt"), &c, &cmem, NULL, &err) == KVGPT_OK, "%s",
                  err.msg);
    ck_assert_msg(st_open(&s, tf_path("shakespeare_char/model.safetensors"), &sb, &err) == KVGPT_OK, "%s", err.msg);
    smem = malloc(sb);
    ck_assert_msg(st_parse(&s, smem, sb, &err) == KVGPT_OK, "%s", err.msg);
    const char *names[] = {"h.3.mlp.c_proj.weight", "wte.weight", "ln_f.weight", "h.0.attn.c_attn.weight"};
    for (int k = 0; k < 4; k++) {
        const st_tensor *a = st_find(&c, names[k]), *b = st_find(&s, names[k]);
        ck_assert_msg(a && b, "st_find(\"%s\") failed", names[k]);
        size_t row = (size_t)(a->ndim == 2 ? a->shape[1] : a->shape[0]), rows = a->ndim == 2 ? 3 : 1;
        size_t r0 = a->ndim == 2 ? (size_t)a->shape[0] - rows : 0;
        float *x = malloc(rows * row * 4), *y = malloc(rows * row * 4);
        ck_assert_msg(st_read_rows(&c, a, r0, rows, row, x, NULL, &err) == KVGPT_OK, "%s", err.msg);
        ck_assert_msg(st_read_rows(&s, b, r0, rows, row, y, NULL, &err) == KVGPT_OK, "%s", err.msg);
        ck_assert_msg(memcmp(x, y, rows * row * 4) == 0, "%s: rows differ", names[k]);
        /* Reading past the tensor is refused, not served from the next one. */
        ck_assert_int_eq(st_read_rows(&c, a, r0 + 1, rows, row, x, NULL, &err), KVGPT_ERR_ST_TENSOR);
        free(x);
        free(y);
    }
    st_close(&s);
    st_close(&c);
    free(smem);
    free(cmem);
}
END_TEST

/* ---- meta.pkl ------------------------------------------------------------------ */

static kvgpt_status load_meta(const char *path, int V, cv_vocab *v, void **a, void **b, kvgpt_error *err)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    uint64_t size = (uint64_t)ftell(f);
    fclose(f);
    size_t fb = cv_meta_file_bytes(size, V), tb = cv_table_bytes(size, V);
    ck_assert_msg(fb > size, "cv_meta_file_bytes(%llu) = %zu", (unsigned long long)size, fb);
    *a = malloc(fb);
    *b = malloc(tb);
    return cv_load_meta(v, path, V, *a, fb, *b, tb, err);
}

START_TEST(test_meta_matches_vocab_json)
{
    SKIP_WITHOUT_FIXTURES();
    cv_vocab m, j;
    void *ma, *mb;
    size_t jsize;
    kvgpt_error err = {0, ""};
    ck_assert_msg(load_meta(tf_path("shakespeare_char/meta.pkl"), 65, &m, &ma, &mb, &err) == KVGPT_OK, "%s",
                  err.msg);
    const char *vj = tf_path("shakespeare_char/vocab.json");
    char *text = tf_read_file(vj, &jsize);
    ck_assert(text != NULL);
    free(text);
    void *ja = malloc(jsize), *jb = malloc(cv_table_bytes(jsize, 65));
    ck_assert_msg(cv_load(&j, vj, 65, ja, jsize, jb, cv_table_bytes(jsize, 65), &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(m.n, 65);
    ck_assert_int_eq(m.n, j.n);
    for (int i = 0; i <= m.n; i++) ck_assert_uint_eq(m.offsets[i], j.offsets[i]);
    ck_assert_msg(memcmp(m.bytes, j.bytes, m.offsets[m.n]) == 0, "token strings differ");
    ck_assert_msg(memcmp(m.byte_to_id, j.byte_to_id, sizeof m.byte_to_id) == 0, "byte_to_id differs");
    ck_assert_int_eq(m.bytes[m.offsets[0]], '\n');
    int32_t a[32], b[32];
    int na, nb;
    const char *s = "ROMEO:\nBut soft!";
    ck_assert_int_eq(cv_encode(&m, s, strlen(s), a, 32, &na, &err), KVGPT_OK);
    ck_assert_int_eq(cv_encode(&j, s, strlen(s), b, 32, &nb, &err), KVGPT_OK);
    ck_assert_int_eq(na, (int)strlen(s));
    ck_assert_int_eq(na, nb);
    ck_assert(memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
    free(ma);
    free(mb);
    free(ja);
    free(jb);
}
END_TEST

static void expect_meta_refused(const unsigned char *b, size_t n, int V, kvgpt_status want, const char *needle)
{
    tmpfile_t t;
    const char *p = write_tmp(&t, "meta.pkl", b, n);
    cv_vocab v;
    void *x, *y;
    kvgpt_error err = {0, ""};
    kvgpt_status st = load_meta(p, V, &v, &x, &y, &err);
    ck_assert_msg(st == want, "meta: status %d, want %d (%s)", st, want, err.msg);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, needle), "message lacks the path or \"%s\": %s", needle,
                  err.msg);
    free(x);
    free(y);
    drop_tmp(&t);
}

START_TEST(test_meta_damaged)
{
    SKIP_WITHOUT_FIXTURES();
    size_t n;
    unsigned char *b = (unsigned char *)tf_read_file(tf_path("shakespeare_char/meta.pkl"), &n);
    ck_assert(b != NULL);
    expect_meta_refused(b, n, 66, KVGPT_ERR_VOCAB, "vocab_size 65");
    expect_meta_refused(b, n / 2, 65, KVGPT_ERR_CKPT, "runs past the end");
    expect_meta_refused(b, n - 1, 65, KVGPT_ERR_CKPT, "FRAME of 692 bytes runs past the end");
    ck_assert_int_eq(b[11], '}');   /* the root EMPTY_DICT, after PROTO 4 and FRAME */
    b[11] = 'R';
    expect_meta_refused(b, n, 65, KVGPT_ERR_CKPT, "opcode 0x52 ('R')");
    b[11] = 'c';
    expect_meta_refused(b, n, 65, KVGPT_ERR_CKPT, "GLOBAL");
    b[11] = '}';
    /* stoi must be itos inverted: make its first id point elsewhere. */
    size_t at = 0;
    for (size_t i = 0; i + 6 < n; i++)
        if (memcmp(b + i, "\x8c\x04stoi", 6) == 0) at = i + 6;
    ck_assert_msg(at && memcmp(b + at, "\x94}\x94(h", 5) == 0 && b[at + 6] == 'K', "unexpected meta.pkl layout");
    b[at + 7] ^= 1;
    expect_meta_refused(b, n, 65, KVGPT_ERR_CKPT, "stoi maps");
    free(b);
}
END_TEST

/* ---- damaged checkpoints ---------------------------------------------------------- */

START_TEST(test_truncated)
{
    SKIP_WITHOUT_FIXTURES();
    ckimg im;
    ck_load(&im);
    size_t cuts[] = {0, 21, 100, (size_t)im.pkl_off + 5000, im.n / 2, (size_t)im.cd_off + 10, im.n - 23, im.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tmpfile_t t;
        const char *p = write_tmp(&t, "ckpt.pt", im.b, cuts[i]);
        expect_refused(p, KVGPT_ERR_CKPT, "not a zip archive");
        drop_tmp(&t);
    }
    /* Storage bytes cut out of the middle, the directory kept: offsets no longer fit. */
    size_t keep = (size_t)im.cd_off - 100000;
    unsigned char *b = malloc(im.n);
    memcpy(b, im.b, keep);
    memcpy(b + keep, im.b + im.cd_off, im.n - (size_t)im.cd_off);
    tmpfile_t t;
    const char *p = write_tmp(&t, "ckpt.pt", b, keep + im.n - (size_t)im.cd_off);
    expect_refused(p, KVGPT_ERR_CKPT, "");
    drop_tmp(&t);
    free(b);
    free(im.b);
}
END_TEST

/* Patches len bytes at the first match of pat (+ delta) and expects refusal. */
static void patch_and_expect(const char *pat, size_t pat_len, size_t delta, const char *with, size_t with_len,
                             int fix_crc, const char *needle)
{
    ckimg im;
    ck_load(&im);
    uint64_t at = pkl_find(&im, pat, pat_len) + delta;
    memcpy(im.b + at, with, with_len);
    if (fix_crc) ck_fix_crc(&im);
    tmpfile_t t;
    const char *p = write_tmp(&t, "ckpt.pt", im.b, im.n);
    expect_refused(p, KVGPT_ERR_CKPT, needle);
    drop_tmp(&t);
    free(im.b);
}

START_TEST(test_bad_opcode)
{
    SKIP_WITHOUT_FIXTURES();
    /* The root EMPTY_DICT, right after PROTO 2. */
    patch_and_expect("\x80\x02}", 3, 2, "\xff", 1, 1, "byte 2: opcode 0xff");
    /* INST (code execution in real pickle) where model_args' dict begins. */
    patch_and_expect("X\x0a\x00\x00\x00model_args", 15, 20, "i", 1, 1, "opcode 0x69 ('i')");
    /* An opcode that is valid pickle but outside the subset: NEWFALSE → INT (text). */
    patch_and_expect("\x89h\x02)R", 5, 0, "I", 1, 1, "opcode 0x49 ('I')");
}
END_TEST

START_TEST(test_bad_global)
{
    SKIP_WITHOUT_FIXTURES();
    patch_and_expect("collections\nOrderedDict\n", 24, 0, "os\nsystem\n", 10, 1, "GLOBAL 'os system' is not allowed");
    patch_and_expect("_rebuild_tensor_v2", 18, 0, "_rebuild_tensor_v3", 18, 1,
                     "GLOBAL 'torch._utils _rebuild_tensor_v3' is not allowed");
    patch_and_expect("torch\nFloatStorage\n", 19, 0, "torch\nFloatStorags\n", 19, 1, "FloatStorags");
}
END_TEST

START_TEST(test_bad_storage)
{
    SKIP_WITHOUT_FIXTURES();
    /* best_val_loss's storage key 112 → 999: no such record. */
    patch_and_expect("X\x03\x00\x00\x00" "112", 8, 5, "999", 3, 1, "storage key \"999\" has no record ckpt/data/999");
    /* wte's storage key 0 → 2: the record exists but holds 128 floats, not 8320. */
    patch_and_expect("X\x01\x00\x00\x00" "0", 6, 5, "2", 1, 1, "storage 2 is 8320 x 4 bytes");
    /* A key that is not a canonical decimal. */
    patch_and_expect("X\x01\x00\x00\x00" "0", 6, 5, "x", 1, 1, "storage key \"x\" has no record");
}
END_TEST

START_TEST(test_bad_tensor)
{
    SKIP_WITHOUT_FIXTURES();
    /* wte: BINPERSID, offset 0, size (65, 128): offset 1 runs one element past the storage. */
    patch_and_expect("QK\x00KAK\x80", 7, 2, "\x01", 1, 1, "elements [1, +8320) exceed its storage 0 of 8320");
    /* size 66 x 128 > 8320 elements. */
    patch_and_expect("QK\x00KAK\x80", 7, 4, "B", 1, 1, "exceed its storage");
    /* stride (64, 1) for (65, 128): not row-major. */
    patch_and_expect("K\x80K\x01\x86", 5, 1, "\x40", 1, 1, "not contiguous row-major (dimension 0 has stride 64");
}
END_TEST

START_TEST(test_crc_and_directory)
{
    SKIP_WITHOUT_FIXTURES();
    /* 'cpu' → 'cpv' without fixing the CRC. */
    patch_and_expect("X\x03\x00\x00\x00" "cpu", 8, 7, "v", 1, 0, "CRC-32");
    /* A storage's local header moved past the data. */
    ckimg im;
    ck_load(&im);
    uint64_t pos = im.cd_off;
    /* the second central entry is ckpt/data/0 */
    pos += 46 + (im.b[pos + 28] | im.b[pos + 29] << 8) + (im.b[pos + 30] | im.b[pos + 31] << 8);
    ck_assert(memcmp(im.b + pos + 46, "ckpt/data/0", 11) == 0);
    put32(im.b + pos + 42, (uint32_t)im.cd_off - 10);
    tmpfile_t t;
    const char *p = write_tmp(&t, "ckpt.pt", im.b, im.n);
    expect_refused(p, KVGPT_ERR_CKPT, "ckpt/data/0");
    drop_tmp(&t);
    /* A compressed (deflate) record. */
    im.b[pos + 10] = 8;
    put32(im.b + pos + 42, 13906);
    p = write_tmp(&t, "ckpt.pt", im.b, im.n);
    expect_refused(p, KVGPT_ERR_CKPT, "compressed (method 8)");
    drop_tmp(&t);
    free(im.b);
    /* Not a zip at all. */
    size_t n;
    char *st = tf_read_file(tf_path("shakespeare_char/model.safetensors"), &n);
    p = write_tmp(&t, "ckpt.pt", st, n);
    expect_refused(p, KVGPT_ERR_CKPT, "not a zip archive");
    drop_tmp(&t);
    free(st);
}
END_TEST

/* The same archive with a zip64 central directory (as torch writes past 4 GiB):
 * every size and offset saturated in the entry, the real ones in the extra field. */
START_TEST(test_zip64)
{
    SKIP_WITHOUT_FIXTURES();
    ckimg im;
    ck_load(&im);
    size_t cap = (size_t)im.cd_off + (size_t)im.n_entries * (46 + 64 + 28) + 200, o = (size_t)im.cd_off;
    unsigned char *b = calloc(1, cap);
    memcpy(b, im.b, (size_t)im.cd_off);
    uint64_t pos = im.cd_off;
    for (uint64_t i = 0; i < im.n_entries; i++) {
        const unsigned char *h = im.b + pos;
        uint32_t nl = h[28] | h[29] << 8, xl = h[30] | h[31] << 8, cl = h[32] | h[33] << 8;
        uint32_t size = h[24] | h[25] << 8 | h[26] << 16 | (uint32_t)h[27] << 24;
        uint32_t lho = h[42] | h[43] << 8 | h[44] << 16 | (uint32_t)h[45] << 24;
        memcpy(b + o, h, 46);
        put32(b + o + 20, 0xffffffffu);
        put32(b + o + 24, 0xffffffffu);
        put32(b + o + 42, 0xffffffffu);
        put16(b + o + 30, 28);
        put16(b + o + 32, 0);
        memcpy(b + o + 46, h + 46, nl);
        unsigned char *x = b + o + 46 + nl;
        put16(x, 1);
        put16(x + 2, 24);
        put64(x + 4, size);
        put64(x + 12, size);
        put64(x + 20, lho);
        o += 46 + nl + 28;
        pos += 46 + nl + xl + cl;
    }
    uint64_t cd_size = o - im.cd_off, z64 = o;
    unsigned char *r = b + o;   /* zip64 end record, locator, end record */
    put32(r, 0x06064b50u);
    put64(r + 4, 44);
    put16(r + 12, 45);
    put16(r + 14, 45);
    put64(r + 24, im.n_entries);
    put64(r + 32, im.n_entries);
    put64(r + 40, cd_size);
    put64(r + 48, im.cd_off);
    put32(r + 56, 0x07064b50u);
    put64(r + 64, z64);
    put32(r + 72, 1);
    put32(r + 76, 0x06054b50u);
    put16(r + 84, 0xffff);
    put16(r + 86, 0xffff);
    put32(r + 88, 0xffffffffu);
    put32(r + 92, 0xffffffffu);
    o += 98;
    tmpfile_t t;
    const char *p = write_tmp(&t, "ckpt.pt", b, o);
    st_file a, z;
    void *am, *zm;
    kvgpt_config ca, cz;
    kvgpt_error err = {0, ""};
    ck_assert_msg(open_exact(tf_path("shakespeare_char/ckpt.pt"), &a, &am, &ca, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(open_exact(p, &z, &zm, &cz, &err) == KVGPT_OK, "zip64: %s", err.msg);
    ck_assert_int_eq(a.n_tensors, z.n_tensors);
    for (size_t i = 0; i < a.n_tensors; i++) {
        ck_assert(a.tensors[i].name_len == z.tensors[i].name_len);
        ck_assert(memcmp(a.tensors[i].name, z.tensors[i].name, a.tensors[i].name_len) == 0);
        ck_assert_uint_eq(a.tensors[i].begin, z.tensors[i].begin);
        ck_assert_uint_eq(a.tensors[i].end, z.tensors[i].end);
    }
    ck_assert_int_eq(ca.n_embd, cz.n_embd);
    st_close(&a);
    st_close(&z);
    free(am);
    free(zm);
    drop_tmp(&t);
    /* The extra field missing while the sizes are saturated. */
    b[im.cd_off + 46 + 13] = 7;   /* first entry's extra id 1 → 7 */
    p = write_tmp(&t, "ckpt.pt", b, o);
    expect_refused(p, KVGPT_ERR_CKPT, "zip64 sizes missing");
    drop_tmp(&t);
    free(b);
    free(im.b);
}
END_TEST

/* ---- a synthetic checkpoint: what the fixture does not show ----------------------- */

typedef struct {
    unsigned char b[4096];
    size_t n;
} pkb;

static void op(pkb *p, int c) { p->b[p->n++] = (unsigned char)c; }
static void raw(pkb *p, const void *s, size_t n)
{
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void str(pkb *p, const char *s)
{
    op(p, 'X');
    put32(p->b + p->n, (uint32_t)strlen(s));
    p->n += 4;
    raw(p, s, strlen(s));
}
static void i1(pkb *p, int v) { op(p, 'K'); op(p, v); }
static void put(pkb *p, int i) { op(p, 'q'); op(p, i); }
static void get(pkb *p, int i) { op(p, 'h'); op(p, i); }
static void glob(pkb *p, const char *mod, const char *name)
{
    op(p, 'c');
    raw(p, mod, strlen(mod));
    op(p, '\n');
    raw(p, name, strlen(name));
    op(p, '\n');
}

/* _rebuild_tensor_v2(storage(key, type, numel), offset, (d0, d1), (s0, s1), False, OrderedDict()) */
static void tensor2(pkb *p, const char *key, const char *type, int numel, int off, int d0, int d1, int s0, int s1,
                    int first)
{
    if (first) {
        glob(p, "torch._utils", "_rebuild_tensor_v2");
        put(p, 9);
    } else {
        get(p, 9);
    }
    op(p, '(');
    op(p, '(');
    get(p, 10);   /* 'storage', put at the first use */
    glob(p, "torch", type);
    str(p, key);
    str(p, "cpu");
    i1(p, numel);
    op(p, 't');
    op(p, 'Q');
    i1(p, off);
    i1(p, d0);
    i1(p, d1);
    op(p, 0x86);
    i1(p, s0);
    i1(p, s1);
    op(p, 0x86);
    op(p, 0x89);
    get(p, 7);
    op(p, ')');
    op(p, 'R');
    op(p, 't');
    op(p, 'R');
}

/* model_args keys are memo references to the strings of an earlier dict
 * whose values differ: the plan's scan must follow them to the right place. */
static void synth_pickle(pkb *p)
{
    static const char *const keys[] = {"n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias"};
    p->n = 0;
    op(p, 0x80);
    op(p, 2);
    op(p, '}');   /* the root, set item by item (no MARK) */
    put(p, 0);
    str(p, "config");
    op(p, '}');
    op(p, '(');
    for (int k = 0; k < 6; k++) {
        str(p, keys[k]);
        put(p, 1 + k);
        i1(p, 99);
    }
    str(p, "storage");
    put(p, 10);
    i1(p, 99);
    op(p, 'u');
    op(p, 's');
    str(p, "model");
    glob(p, "collections", "OrderedDict");
    put(p, 7);
    op(p, ')');
    op(p, 'R');
    op(p, '(');
    str(p, "transformer.wte.weight");   /* a Parameter around a half tensor at offset 4 */
    glob(p, "torch._utils", "_rebuild_parameter");
    op(p, '(');
    tensor2(p, "0", "HalfStorage", 20, 4, 3, 4, 4, 1, 1);
    put(p, 13);
    op(p, 0x88);
    get(p, 7);
    op(p, ')');
    op(p, 'R');
    op(p, 't');
    op(p, 'R');
    str(p, "transformer.ln_f.weight");  /* (1, 4) with any stride on the size-1 dimension */
    tensor2(p, "1", "FloatStorage", 4, 0, 1, 4, 7, 1, 0);
    str(p, "lm_head.weight");           /* the same tensor object again */
    get(p, 13);
    str(p, "transformer.h.0.attn.bias");
    get(p, 13);
    op(p, 'u');
    op(p, 's');
    str(p, "model_args");
    op(p, '}');
    op(p, '(');
    int vals[] = {1, 1, 4, 8, 3};
    for (int k = 0; k < 5; k++) {
        get(p, 1 + k);
        i1(p, vals[k]);
    }
    get(p, 6);
    op(p, 0x88);
    op(p, 'u');
    op(p, 's');
    op(p, '.');
}

/* A stored zip of (name, bytes) records with a given method for data/0. */
static size_t synth_zip(unsigned char *out, const pkb *pk, const unsigned char *s0, size_t n0,
                        const unsigned char *s1, size_t n1, int method0)
{
    const char *names[] = {"arch/data.pkl", "arch/data/0", "arch/data/1", "arch/version"};
    const unsigned char *data[] = {pk->b, s0, s1, (const unsigned char *)"3\n"};
    size_t len[] = {pk->n, n0, n1, 2}, o = 0, lho[4];
    for (int i = 0; i < 4; i++) {
        unsigned char *h = out + o;
        memset(h, 0, 30);
        lho[i] = o;
        put32(h, 0x04034b50u);
        put16(h + 8, i == 1 ? (uint32_t)method0 : 0);
        put32(h + 14, zip_crc32(0, data[i], len[i]));
        put32(h + 18, (uint32_t)len[i]);
        put32(h + 22, (uint32_t)len[i]);
        put16(h + 26, (uint32_t)strlen(names[i]));
        memcpy(h + 30, names[i], strlen(names[i]));
        o += 30 + strlen(names[i]);
        memcpy(out + o, data[i], len[i]);
        o += len[i];
    }
    size_t cd = o;
    for (int i = 0; i < 4; i++) {
        unsigned char *h = out + o;
        memset(h, 0, 46);
        put32(h, 0x02014b50u);
        put16(h + 10, i == 1 ? (uint32_t)method0 : 0);
        put32(h + 16, zip_crc32(0, data[i], len[i]));
        put32(h + 20, (uint32_t)len[i]);
        put32(h + 24, (uint32_t)len[i]);
        put16(h + 28, (uint32_t)strlen(names[i]));
        put32(h + 42, (uint32_t)lho[i]);
        memcpy(h + 46, names[i], strlen(names[i]));
        o += 46 + strlen(names[i]);
    }
    unsigned char *e = out + o;
    memset(e, 0, 22);
    put32(e, 0x06054b50u);
    put16(e + 8, 4);
    put16(e + 10, 4);
    put32(e + 12, (uint32_t)(o - cd));
    put32(e + 16, (uint32_t)cd);
    return o + 22;
}

static uint16_t half_of_int(int i)
{
    /* Exact small integers 0..2047 in binary16. */
    if (i == 0) return 0;
    int e = 0;
    while ((1 << (e + 1)) <= i) e++;
    return (uint16_t)((e + 15) << 10 | ((i << (10 - e)) & 0x3ff));
}

START_TEST(test_synthetic)
{
    pkb pk;
    synth_pickle(&pk);
    unsigned char s0[40], s1[16], zip[8192];
    for (int i = 0; i < 20; i++) {
        uint16_t h = half_of_int(i);
        s0[2 * i] = (unsigned char)h;
        s0[2 * i + 1] = (unsigned char)(h >> 8);
    }
    float ln[4] = {0.5f, -1.25f, 3.0f, 1e-3f};
    memcpy(s1, ln, sizeof ln);
    size_t n = synth_zip(zip, &pk, s0, sizeof s0, s1, sizeof s1, 0);
    tmpfile_t t;
    const char *p = write_tmp(&t, "ckpt.pt", zip, n);
    st_file s;
    void *mem;
    kvgpt_config c;
    kvgpt_error err = {0, ""};
    ck_assert_msg(open_exact(p, &s, &mem, &c, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(c.n_layer, 1);
    ck_assert_int_eq(c.n_head, 1);
    ck_assert_int_eq(c.n_embd, 4);
    ck_assert_int_eq(c.block_size, 8);
    ck_assert_int_eq(c.vocab_size, 3);
    ck_assert_int_eq(c.bias, 1);
    ck_assert_int_eq(s.n_tensors, 3);
    const st_tensor *wte = st_find(&s, "wte.weight"), *head = st_find(&s, "lm_head.weight");
    const st_tensor *lnf = st_find(&s, "ln_f.weight");
    ck_assert(wte && head && lnf);
    ck_assert_int_eq(wte->dtype, ST_F16);
    ck_assert(head->begin == wte->begin && head->end == wte->end);
    ck_assert_int_eq(wte->end - wte->begin, 24);
    float rows[12];
    uint16_t raw16[12];
    ck_assert_msg(st_read_rows(&s, wte, 0, 3, 4, rows, raw16, &err) == KVGPT_OK, "%s", err.msg);
    for (int i = 0; i < 12; i++) ck_assert_msg(rows[i] == (float)(i + 4), "wte[%d] = %g", i, (double)rows[i]);
    ck_assert_int_eq(lnf->ndim, 2);
    ck_assert_msg(st_read_rows(&s, lnf, 0, 1, 4, rows, NULL, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert(memcmp(rows, ln, sizeof ln) == 0);
    st_close(&s);
    free(mem);
    drop_tmp(&t);

    /* The same, with data/0 claiming to be deflated. */
    n = synth_zip(zip, &pk, s0, sizeof s0, s1, sizeof s1, 8);
    p = write_tmp(&t, "ckpt.pt", zip, n);
    expect_refused(p, KVGPT_ERR_CKPT, "arch/data/0\" is compressed");
    drop_tmp(&t);

    /* A pickle that ends without STOP. */
    pk.n--;
    n = synth_zip(zip, &pk, s0, sizeof s0, s1, sizeof s1, 0);
    p = write_tmp(&t, "ckpt.pt", zip, n);
    expect_refused(p, KVGPT_ERR_CKPT, "without STOP");
    drop_tmp(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("ckpt");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_config_matches_json);
    tcase_add_test(tc, test_tensors_bit_exact);
    tcase_add_test(tc, test_st_interface);
    tcase_add_test(tc, test_meta_matches_vocab_json);
    tcase_add_test(tc, test_meta_damaged);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_bad_opcode);
    tcase_add_test(tc, test_bad_global);
    tcase_add_test(tc, test_bad_storage);
    tcase_add_test(tc, test_bad_tensor);
    tcase_add_test(tc, test_crc_and_directory);
    tcase_add_test(tc, test_zip64);
    tcase_add_test(tc, test_synthetic);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
