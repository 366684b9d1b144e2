/* tests/test_ckpt_bounds.c — hostile checkpoints, round two (issue 14): the
 * plan's pickle scan is linear in the pickle (a far memo chain read by 58
 * model_args entries costs a few passes, not one per reference), the
 * interpreter's scratch follows what the pickle builds (an unused 32 MiB
 * string costs nothing; a pickle of millions of objects is refused before
 * memory is planned), a damaged zip entry is refused by name (a local
 * header's extra length that moves the data, a flipped byte in a storage,
 * found as the storage is read), and a directory of 100k entries is read
 * in a few large reads. Every file is built here. Work is measured in the
 * reader's own counters (lf_file's reads and bytes), not in seconds. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvgpt.h"
#include "loader/ckpt.h"
#include "tokenizer/charvocab.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

/* ---- a growing byte buffer and pickle opcodes ------------------------------------ */

typedef struct {
    unsigned char *b;
    size_t n, cap;
} buf;

static void room(buf *p, size_t more)
{
    if (p->n + more <= p->cap) return;
    while (p->n + more > p->cap) p->cap = p->cap ? 2 * p->cap : 4096;
    p->b = realloc(p->b, p->cap);
    ck_assert_ptr_nonnull(p->b);
}
static void raw(buf *p, const void *s, size_t n)
{
    room(p, n);
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void op(buf *p, int c)
{
    unsigned char b = (unsigned char)c;
    raw(p, &b, 1);
}
static void u16(buf *p, uint32_t v)
{
    op(p, (int)(v & 255));
    op(p, (int)(v >> 8 & 255));
}
static void u32(buf *p, uint32_t v)
{
    u16(p, v & 0xffff);
    u16(p, v >> 16);
}
static void str(buf *p, const char *s)
{
    op(p, 'X');
    u32(p, (uint32_t)strlen(s));
    raw(p, s, strlen(s));
}
static void i1(buf *p, int v)
{
    op(p, 'K');
    op(p, v);
}
static void put(buf *p, uint32_t i)
{
    op(p, 'r');
    u32(p, i);
}
static void get(buf *p, uint32_t i)
{
    op(p, 'j');
    u32(p, i);
}
static void glob(buf *p, const char *mod, const char *name)
{
    op(p, 'c');
    raw(p, mod, strlen(mod));
    op(p, '\n');
    raw(p, name, strlen(name));
    op(p, '\n');
}

/* _rebuild_tensor_v2(storage(key, FloatStorage, numel), 0, (d0[, d1]), strides, False, {}) */
static void tensor(buf *p, const char *key, int numel, int d0, int d1)
{
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    op(p, '(');
    str(p, "storage");
    glob(p, "torch", "FloatStorage");
    str(p, key);
    str(p, "cpu");
    i1(p, numel);
    op(p, 't');
    op(p, 'Q');
    i1(p, 0);
    op(p, '(');
    i1(p, d0);
    if (d1) i1(p, d1);
    op(p, 't');
    op(p, '(');
    if (d1) i1(p, d1);
    i1(p, 1);
    op(p, 't');
    op(p, 0x89);
    op(p, '}');
    op(p, 't');
    op(p, 'R');
}

/* What the test pickles carry besides the model. */
typedef struct {
    size_t frames;           /* FRAME opcodes of length 0: work for the scan that builds nothing */
    size_t nones;            /* a list of that many None (the 4 Mi) */
    size_t big_string;       /* an unused string of that many bytes */
    int far_args;            /* extra model_args entries, each a memo reference to the end of a chain */
    int ln_numel;            /* storage 1's elements (ln_f uses the first 4) */
} extras;

/* {'model': OrderedDict(wte [3,4] in storage 0, ln_f [4] in storage 1), extras,
 *  'model_args': {n_layer 1, n_head 1, n_embd 4, block_size 8, vocab_size 3, bias False, x0..: the chain}} */
static void pickle_of(buf *p, const extras *x)
{
    p->n = 0;
    op(p, 0x80);
    op(p, 2);
    op(p, '}');
    op(p, '(');
    str(p, "model");
    glob(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    op(p, '(');
    str(p, "transformer.wte.weight");
    tensor(p, "0", 12, 3, 4);
    str(p, "transformer.ln_f.weight");
    tensor(p, "1", x->ln_numel ? x->ln_numel : 4, 4, 0);
    op(p, 'u');
    /* The far memo entry first, then what the scan must walk past, then its readers. */
    str(p, "chain");
    op(p, ']');
    op(p, '(');
    i1(p, 1);
    put(p, 0);
    for (uint32_t k = 1; k < 4; k++) {   /* memo 3 = memo 2 = memo 1 = memo 0 = 1 */
        get(p, k - 1);
        put(p, k);
    }
    op(p, 'e');
    for (size_t i = 0; i < x->frames; i++) {
        op(p, 0x95);
        u32(p, 0);
        u32(p, 0);
    }
    if (x->nones) {
        str(p, "junk");
        op(p, ']');
        op(p, '(');
        room(p, x->nones);
        memset(p->b + p->n, 'N', x->nones);
        p->n += x->nones;
        op(p, 'e');
    }
    if (x->big_string) {
        str(p, "unused");
        op(p, 'X');
        u32(p, (uint32_t)x->big_string);
        room(p, x->big_string);
        memset(p->b + p->n, 'A', x->big_string);
        p->n += x->big_string;
    }
    str(p, "model_args");
    op(p, '}');
    op(p, '(');
    static const char *const keys[] = {"n_layer", "n_head", "n_embd", "block_size", "vocab_size"};
    static const int vals[] = {1, 1, 4, 8, 3};
    for (int k = 0; k < 5; k++) {
        str(p, keys[k]);
        if (k == 0) get(p, 3);   /* n_layer: the end of the chain */
        else i1(p, vals[k]);
    }
    str(p, "bias");
    op(p, 0x89);
    for (int k = 0; k < x->far_args; k++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", k);
        str(p, name);
        get(p, 3);
    }
    op(p, 'u');
    op(p, 'u');
    op(p, '.');
}

/* ---- a stored zip as torch writes it (flag 8: a data descriptor after each entry) ---- */

typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
    unsigned extra;          /* local header extra field: an "FB" padding record of this many bytes */
} entry;

static size_t local_at[16], data_at[16];

static void zip_of(buf *z, const entry *e, int n, int n_junk)
{
    z->n = 0;
    for (int i = 0; i < n; i++) {
        uint32_t crc = zip_crc32(0, e[i].data, e[i].len);
        local_at[i] = z->n;
        u32(z, 0x04034b50u);
        u16(z, 20);
        u16(z, 8);
        u16(z, 0);
        u32(z, 0);
        u32(z, 0);   /* CRC-32 and sizes: in the descriptor */
        u32(z, 0);
        u32(z, 0);
        u16(z, (uint32_t)strlen(e[i].name));
        u16(z, e[i].extra ? e[i].extra + 4 : 0);
        raw(z, e[i].name, strlen(e[i].name));
        if (e[i].extra) {
            u16(z, 0x4246);
            u16(z, e[i].extra);
            for (unsigned k = 0; k < e[i].extra; k++) op(z, 'Z');
        }
        data_at[i] = z->n;
        raw(z, e[i].data, e[i].len);
        u32(z, 0x08074b50u);
        u32(z, crc);
        u32(z, (uint32_t)e[i].len);
        u32(z, (uint32_t)e[i].len);
    }
    size_t cd = z->n;
    for (int i = 0; i < n + n_junk; i++) {
        char name[32];
        const char *nm = name;
        uint32_t crc = 0, len = 0, lho = 0;
        if (i < n) {
            nm = e[i].name;
            crc = zip_crc32(0, e[i].data, e[i].len);
            len = (uint32_t)e[i].len;
            lho = (uint32_t)local_at[i];
        } else {
            snprintf(name, sizeof name, "arch/junk/%d", i);
        }
        u32(z, 0x02014b50u);
        u16(z, 20);
        u16(z, 20);
        u16(z, 8);
        u16(z, 0);
        u32(z, 0);
        u32(z, crc);
        u32(z, len);
        u32(z, len);
        u16(z, (uint32_t)strlen(nm));
        u16(z, 0);
        u16(z, 0);
        u16(z, 0);
        u16(z, 0);
        u32(z, 0);
        u32(z, lho);
        raw(z, nm, strlen(nm));
    }
    uint32_t cd_size = (uint32_t)(z->n - cd), total = (uint32_t)(n + n_junk);
    ck_assert_msg(total < 0xffff, "too many entries for a plain end record");
    u32(z, 0x06054b50u);
    u16(z, 0);
    u16(z, 0);
    u16(z, total);
    u16(z, total);
    u32(z, cd_size);
    u32(z, (uint32_t)cd);
    u16(z, 0);
}

static float g_wte[12], g_ln[64];

/* data.pkl, storage 0 (wte), storage 1 (ln_f and what follows), version; n_junk more directory entries. */
static void ckpt_of(buf *z, const buf *pk, int ln_numel, unsigned extra0, int n_junk)
{
    for (int i = 0; i < 12; i++) g_wte[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 64; i++) g_ln[i] = 1.0f + (float)i / 64.0f;
    entry e[4] = {
        {"arch/data.pkl", pk->b, pk->n, 0},
        {"arch/data/0", (const unsigned char *)g_wte, sizeof g_wte, extra0},
        {"arch/data/1", (const unsigned char *)g_ln, (size_t)(ln_numel ? ln_numel : 4) * 4, 0},
        {"arch/version", (const unsigned char *)"3\n", 2, 0},
    };
    zip_of(z, e, 4, n_junk);
}

typedef struct {
    char dir[512], path[600];
} tmpfile_t;

static const char *write_tmp(tmpfile_t *t, const buf *z)
{
    ck_assert_int_eq(tf_tmpdir(t->dir, sizeof t->dir), 0);
    ck_assert_int_eq(tf_write(t->dir, "ckpt.pt", z->b, z->n), 0);
    snprintf(t->path, sizeof t->path, "%s/ckpt.pt", t->dir);
    return t->path;
}

static void drop_tmp(tmpfile_t *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

/* The pickle of x in the standard zip (n_junk more directory entries), written out. */
static const char *write_ckpt(tmpfile_t *t, buf *pk, buf *z, const extras *x, int n_junk)
{
    pickle_of(pk, x);
    ckpt_of(z, pk, x->ln_numel, 0, n_junk);
    return write_tmp(t, z);
}

/* ckpt_open + ckpt_parse with exactly the planned scratch; the st_file's
 * counters tell the work. Returns the status; *mem to free. */
static kvgpt_status open_parse(const char *path, st_file *s, void **mem, size_t *bytes, kvgpt_config *cfg,
                               kvgpt_error *err)
{
    *mem = NULL;
    kvgpt_status st = ckpt_open(s, path, bytes, cfg, err);
    if (st) return st;
    *mem = malloc(*bytes + 1);
    st = ckpt_parse(s, (char *)*mem + 1, *bytes, err);
    if (st) st_close(s);
    return st;
}

/* ---- 1. the scan is linear; 2. memory follows what the pickle builds ---------------- */

START_TEST(test_far_memo_chain_is_linear)
{
    /* 1.5 Mi FRAME opcodes (14 MB that build nothing) between a memo chain and
     * the extra model_args entries that each refer to its far end: the old scan
     * went back to the start for every reference (the 58: about 20 s);
     * this one reads the pickle a bounded number of times. 26 more entries fill
     * model_args to its 32; the 58 are refused (below), just as fast. */
    buf pk = {0}, z = {0};
    extras x = {.frames = 1536u << 10, .far_args = 26};
    tmpfile_t t;
    const char *p = write_ckpt(&t, &pk, &z, &x, 0);
    st_file s;
    size_t bytes = 0;
    kvgpt_config c;
    kvgpt_error err = {0, ""};
    ck_assert_msg(ckpt_open(&s, p, &bytes, &c, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_int_eq(c.n_layer, 1);   /* read through the chain */
    ck_assert_int_eq(c.vocab_size, 3);
    /* The CRC pass, the scan, and one resolve pass per link of the chain (4). */
    ck_assert_msg(s.file.bytes_read < 7 * (uint64_t)pk.n + (1u << 20), "read %llu bytes of a %zu-byte pickle",
                  (unsigned long long)s.file.bytes_read, pk.n);
    /* The plan reads through a 2 KiB buffer and a 1 KiB window (it takes no memory). */
    ck_assert_msg(s.file.n_reads < 7 * (pk.n >> 10) + 64, "%llu reads", (unsigned long long)s.file.n_reads);
    /* Nothing built, nothing planned: the scratch is the fixed part. */
    ck_assert_msg(bytes < (1u << 20), "scratch %zu", bytes);
    st_close(&s);
    drop_tmp(&t);
    x.far_args = 58;
    p = write_ckpt(&t, &pk, &z, &x, 0);
    ck_assert_int_eq(ckpt_open(&s, p, &bytes, &c, &err), KVGPT_ERR_CKPT);
    ck_assert_msg(strstr(err.msg, "more than 32 entries"), "%s", err.msg);
    drop_tmp(&t);
    free(pk.b);
    free(z.b);
}
END_TEST

START_TEST(test_many_objects_refused)
{
    /* The construction: a list of 4 Mi None and the far chain. A
     * checkpoint of one layer holds tens of thousands of objects, not millions:
     * refused by the plan, which takes no memory for it, in linear work. */
    buf pk = {0}, z = {0};
    extras x = {.nones = 4u << 20, .far_args = 26};
    tmpfile_t t;
    const char *p = write_ckpt(&t, &pk, &z, &x, 0);
    st_file s;
    size_t bytes = 0;
    kvgpt_error err = {0, ""};
    ck_assert_int_eq(ckpt_open(&s, p, &bytes, NULL, &err), KVGPT_ERR_CKPT);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, "not a nanoGPT checkpoint") && strstr(err.msg, "4194"),
                  "%s", err.msg);
    kvgpt_config c;
    ck_assert_int_eq(ckpt_plan(p, &bytes, &c, &err), KVGPT_ERR_CKPT);
    drop_tmp(&t);
    free(pk.b);
    free(z.b);
}
END_TEST

START_TEST(test_unused_string_costs_nothing)
{
    /* data.pkl carries an unused 32 MiB string: it used to plan 36 bytes a
     * pickle byte (1.2 GB) and touch them; a string is now kept only when it is
     * short enough to be a name, and the scratch is what the pickle builds. */
    buf pk = {0}, z = {0};
    extras x = {.big_string = 32u << 20};
    tmpfile_t t;
    const char *p = write_ckpt(&t, &pk, &z, &x, 0);
    st_file s;
    void *mem;
    size_t bytes = 0;
    kvgpt_config c;
    kvgpt_error err = {0, ""};
    ck_assert_msg(open_parse(p, &s, &mem, &bytes, &c, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(bytes < (1u << 20), "scratch %zu for a %zu-byte pickle", bytes, pk.n);
    ck_assert_int_eq(s.n_tensors, 2);
    const st_tensor *wte = st_find(&s, "wte.weight");
    ck_assert_ptr_nonnull(wte);
    float rows[12];
    ck_assert_msg(st_read_rows(&s, wte, 0, 3, 4, rows, NULL, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert(memcmp(rows, g_wte, sizeof rows) == 0);
    st_close(&s);
    free(mem);
    drop_tmp(&t);
    /* meta.pkl's interpreter is bounded by the vocabulary, not the file. */
    ck_assert_msg(cv_meta_file_bytes(16u << 20, 65) < (1u << 20), "meta.pkl scratch %zu",
                  cv_meta_file_bytes(16u << 20, 65));
    free(pk.b);
    free(z.b);
}
END_TEST

/* ---- 3. damaged entries: refused by name -------------------------------------------- */

/* A 70 KB entry after the storages, so that a moved data start still lies inside the file. */
static void expect_open_refused(const buf *z, const char *needle1, const char *needle2)
{
    tmpfile_t t;
    const char *p = write_tmp(&t, z);
    st_file s;
    void *mem;
    size_t bytes;
    kvgpt_error err = {0, ""};
    kvgpt_status st = open_parse(p, &s, &mem, &bytes, NULL, &err);
    if (!st) st_close(&s);
    free(mem);
    ck_assert_msg(st == KVGPT_ERR_CKPT, "status %d (%s)", st, err.msg);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, needle1) && strstr(err.msg, needle2), "%s", err.msg);
    drop_tmp(&t);
}

START_TEST(test_local_header_checked)
{
    buf pk = {0}, z = {0};
    extras x = {0};
    pickle_of(&pk, &x);
    /* A proper padding record in the local extra field is read past. */
    ckpt_of(&z, &pk, 0, 40, 0);
    tmpfile_t t;
    const char *p = write_tmp(&t, &z);
    st_file s;
    void *mem;
    size_t bytes;
    kvgpt_error err = {0, ""};
    ck_assert_msg(open_parse(p, &s, &mem, &bytes, NULL, &err) == KVGPT_OK, "%s", err.msg);
    st_close(&s);
    free(mem);
    drop_tmp(&t);

    /* The damage: data/0's extra length set to 0xfff0 (the data start
     * moves 64 KiB on, inside the big last entry here). */
    static unsigned char filler[70000];
    entry e[5] = {
        {"arch/data.pkl", pk.b, pk.n, 0},
        {"arch/data/0", (const unsigned char *)g_wte, sizeof g_wte, 0},
        {"arch/data/1", (const unsigned char *)g_ln, 16, 0},
        {"arch/version", (const unsigned char *)"3\n", 2, 0},
        {"arch/filler", filler, sizeof filler, 0},
    };
    for (size_t i = 0; i < sizeof filler; i++) filler[i] = (unsigned char)(i * 7);
    zip_of(&z, e, 5, 0);
    z.b[local_at[1] + 28] = 0xf0;
    z.b[local_at[1] + 29] = 0xff;
    expect_open_refused(&z, "\"arch/data/0\"", "extra field");
    /* The extra field's records must tile it: one that runs past is as bad. */
    zip_of(&z, e, 5, 0);
    z.b[local_at[1] + 28] = 4;   /* 4 bytes of extra field: the data's first bytes read as a record */
    expect_open_refused(&z, "\"arch/data/0\"", "extra field");
    /* Flags that differ from the directory's, and a descriptor that does. */
    zip_of(&z, e, 5, 0);
    z.b[local_at[1] + 6] = 0x08 | 0x01;
    expect_open_refused(&z, "\"arch/data/0\"", "flags");
    zip_of(&z, e, 5, 0);
    z.b[data_at[1] + sizeof g_wte + 4] ^= 1;   /* its CRC-32 */
    expect_open_refused(&z, "\"arch/data/0\"", "data descriptor");
    free(pk.b);
    free(z.b);
}
END_TEST

START_TEST(test_storage_crc_checked_as_read)
{
    buf pk = {0}, z = {0};
    extras x = {.ln_numel = 16};   /* ln_f reads 4 of storage 1's 16 floats */
    pickle_of(&pk, &x);
    float rows[16];
    kvgpt_error err = {0, ""};
    for (int which = 0; which < 3; which++) {
        ckpt_of(&z, &pk, 16, 0, 0);
        /* 0: a flipped byte in wte's storage; 1: one in the part of storage 1
         * no tensor covers; 2: none. */
        if (which == 0) z.b[data_at[1] + 5] ^= 0x10;
        if (which == 1) z.b[data_at[2] + 40] ^= 0x10;
        tmpfile_t t;
        const char *p = write_tmp(&t, &z);
        st_file s;
        void *mem;
        size_t bytes;
        ck_assert_msg(open_parse(p, &s, &mem, &bytes, NULL, &err) == KVGPT_OK, "%s", err.msg);
        const st_tensor *wte = st_find(&s, "wte.weight"), *ln = st_find(&s, "ln_f.weight");
        ck_assert(wte && ln);
        /* ln_f alone first: its storage's tail is checked at the end of the reads. */
        ck_assert_int_eq(st_read_rows(&s, ln, 0, 1, 4, rows, NULL, &err), KVGPT_OK);
        kvgpt_status done = st_read_done(&s, &err);
        ck_assert_msg(which == 1 ? done == KVGPT_ERR_CKPT && strstr(err.msg, "\"arch/data/1\"") : done == KVGPT_OK,
                      "flip %d: st_read_done %d (%s)", which, done, err.msg);
        st_close(&s);
        free(mem);
        ck_assert_msg(open_parse(p, &s, &mem, &bytes, NULL, &err) == KVGPT_OK, "%s", err.msg);
        wte = st_find(&s, "wte.weight");
        ln = st_find(&s, "ln_f.weight");
        /* ln_f first (its storage's tail unread), then wte: moving on checks the tail. */
        kvgpt_status a = st_read_rows(&s, ln, 0, 1, 4, rows, NULL, &err);
        ck_assert_msg(a == KVGPT_OK, "%s", err.msg);
        kvgpt_status b = st_read_rows(&s, wte, 0, 3, 4, rows, NULL, &err);
        if (which == 2) {
            ck_assert_msg(b == KVGPT_OK, "%s", err.msg);
            /* Read again: verified storages are not read twice for their CRC. */
            uint64_t before = s.file.bytes_read;
            ck_assert_int_eq(st_read_rows(&s, wte, 0, 3, 4, rows, NULL, &err), KVGPT_OK);
            ck_assert_uint_eq(s.file.bytes_read - before, sizeof g_wte);
        } else {
            ck_assert_msg(b == KVGPT_ERR_CKPT, "flip %d not found: %d", which, b);
            ck_assert_msg(strstr(err.msg, which == 0 ? "\"arch/data/0\"" : "\"arch/data/1\"") &&
                          strstr(err.msg, "CRC-32") && strstr(err.msg, p), "%s", err.msg);
        }
        st_close(&s);
        free(mem);
        drop_tmp(&t);
    }
    free(pk.b);
    free(z.b);
}
END_TEST

/* ---- 7. many entries: one pass through a buffer ------------------------------------- */

START_TEST(test_many_entries_few_reads)
{
    buf pk = {0}, z = {0};
    extras x = {0};
    tmpfile_t t;
    const char *p = write_ckpt(&t, &pk, &z, &x, 60000);
    st_file s;
    void *mem;
    size_t bytes;
    kvgpt_error err = {0, ""};
    ck_assert_msg(ckpt_open(&s, p, &bytes, NULL, &err) == KVGPT_OK, "%s", err.msg);
    /* 60k entries, 3.7 MB of directory: the plan reads it 2 KiB at a time (the
     * old reader made two reads an entry), the load 96 KiB at a time. */
    ck_assert_msg(s.file.n_reads < 60000 / 25, "%llu reads for ckpt_open", (unsigned long long)s.file.n_reads);
    mem = malloc(bytes);
    uint64_t before = s.file.n_reads;
    ck_assert_msg(ckpt_parse(&s, mem, bytes, &err) == KVGPT_OK, "%s", err.msg);
    ck_assert_msg(s.file.n_reads - before < 150, "%llu reads for ckpt_parse",
                  (unsigned long long)(s.file.n_reads - before));
    st_close(&s);
    free(mem);
    drop_tmp(&t);
    free(pk.b);
    free(z.b);
}
END_TEST

/* ---- the real checkpoint, damaged as the issue did, through kvgpt_open ------------------ */

static kvgpt_status open_model(const char *dir, kvgpt_error *err)
{
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.model_dir = dir;
    o.threads = 1;
    kvgpt_model *m = NULL;
    kvgpt_status s = kvgpt_open(&o, NULL, 0, &m, err);
    if (!s) kvgpt_close(m);
    return s;
}

START_TEST(test_fixture_damaged)
{
    if (!tf_need_fixtures(__func__)) return;
    size_t n;
    unsigned char *b = (unsigned char *)tf_read_file(tf_path("shakespeare_char/ckpt.pt"), &n);
    ck_assert_ptr_nonnull(b);
    /* Where ckpt/data/0's local header is (the second entry of the file). */
    size_t at = 0;
    for (size_t i = 0; i + 41 < n; i++)
        if (memcmp(b + i, "PK\3\4", 4) == 0 && memcmp(b + i + 30, "ckpt/data/0", 11) == 0 &&
            (b[i + 26] | b[i + 27] << 8) == 11) {
            at = i;
            break;
        }
    ck_assert_msg(at > 0, "no ckpt/data/0 in the fixture");
    char dir[512];
    kvgpt_error err = {0, ""};
    for (int which = 0; which < 2; which++) {
        unsigned char *c = malloc(n);
        memcpy(c, b, n);
        if (which == 0) {
            c[at + 28] = 0xf0;   /* the extra length: wte would read shifted bytes */
            c[at + 29] = 0xff;
        } else {
            size_t data = at + 30 + 11 + (c[at + 28] | c[at + 29] << 8);
            c[data + 1000] ^= 0x04;   /* one bit of one weight */
        }
        ck_assert_int_eq(tf_tmpdir(dir, sizeof dir), 0);
        ck_assert_int_eq(tf_write(dir, "ckpt.pt", c, n), 0);
        kvgpt_status s = open_model(dir, &err);
        ck_assert_msg(s == KVGPT_ERR_CKPT, "damage %d accepted (%d: %s)", which, s, err.msg);
        ck_assert_msg(strstr(err.msg, "\"ckpt/data/0\"") && strstr(err.msg, which ? "CRC-32" : "extra field"),
                      "%s", err.msg);
        printf("  %s\n", err.msg);
        char p[600];
        snprintf(p, sizeof p, "%s/ckpt.pt", dir);
        unlink(p);
        rmdir(dir);
        free(c);
    }
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ckpt_bounds");
    TCase *tc = tcase_create("ckpt_bounds");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_far_memo_chain_is_linear);
    tcase_add_test(tc, test_many_objects_refused);
    tcase_add_test(tc, test_unused_string_costs_nothing);
    tcase_add_test(tc, test_local_header_checked);
    tcase_add_test(tc, test_storage_crc_checked_as_read);
    tcase_add_test(tc, test_many_entries_few_reads);
    tcase_add_test(tc, test_fixture_damaged);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
