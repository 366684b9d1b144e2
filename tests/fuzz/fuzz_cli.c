/* tests/fuzz/fuzz_cli.c — libFuzzer target: the kvgpt option parser
 * (cli_parse, cli_ids, cli_dtype from tools/cli.c) with a table like
 * `kvgpt sample`'s. The input is split on 0 bytes into argv. Oracles: no
 * sanitizer report; cli_parse returns 0 or 2; string options point into
 * argv; and, for the input's first string as the value of a u64, a size and
 * an int option, acceptance exactly when it is a decimal in range, with the
 * value a reference parser gives. */
#include "fuzz_common.h"
#include "tools/cli.h"

#include <math.h>

#define FZ_MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* cli_error writes every complaint to stderr; libFuzzer keeps its own
     * copy of the stream (and the sanitizers write to fd 2 directly). */
    FILE *null = fopen("/dev/null", "w");
    fz_report = stderr;
    if (null) stderr = null;
    return 0;
}

/* Reference: 1 and *out when s is only decimal digits whose value fits below max. */
static int ref_decimal(const char *s, unsigned long long max, int neg_ok, long long *sv, unsigned long long *out)
{
    int neg = neg_ok && *s == '-';
    const char *p = s + neg;
    unsigned long long v = 0;
    if (!*p) return 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    if (sv) *sv = neg ? -(long long)v : (long long)v;
    return 1;
}

/* The first string of the input as the value of one option of each number kind. */
static void check_values(char *value)
{
    uint64_t u = 7;
    size_t z = 7;
    int i = 7;
    const cli_opt o[] = {{"u", OPT_U64, &u, ""}, {"z", OPT_SIZE, &z, ""}, {"i", OPT_INT, &i, ""}};
    char name_u[] = "--u", name_z[] = "--z", name_i[] = "--i";
    char *av[2] = {name_u, value};
    unsigned long long ref;
    long long sref;
    int r = cli_parse("fuzz", 2, av, o, 3);
    int ok = ref_decimal(value, UINT64_MAX, 0, NULL, &ref);
    FZ_CHECK((r == 0) == ok, "--u \"%s\": parse %d, reference %d", value, r, ok);
    if (ok) FZ_CHECK(u == ref, "--u \"%s\" gave %llu", value, (unsigned long long)u);
    av[0] = name_z;
    r = cli_parse("fuzz", 2, av, o, 3);
    ok = ref_decimal(value, SIZE_MAX, 0, NULL, &ref);
    FZ_CHECK((r == 0) == ok, "--z \"%s\": parse %d, reference %d", value, r, ok);
    if (ok) FZ_CHECK(z == ref, "--z \"%s\" gave %zu", value, z);
    av[0] = name_i;
    r = cli_parse("fuzz", 2, av, o, 3);
    /* strtol takes leading blanks and a '+': the reference accepts what it
     * should and the parser may accept those spellings too, but never a
     * different value or one out of range. */
    ok = ref_decimal(value, 2147483647ULL, 1, &sref, &ref);
    if (ok) FZ_CHECK(r == 0 && i == (int)sref, "--i \"%s\": parse %d, value %d", value, r, i);
    if (r == 0) FZ_CHECK(i >= -2147483647, "--i \"%s\" gave %d", value, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private NUL-terminated copy: argv strings must not share the input. */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[FZ_MAX_ARGS + 1];
    int argc = 0;
    for (size_t i = 0; i <= size && argc < FZ_MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    check_values(argv[0]);

    static const char def_start[] = "\n", def_kv[] = "on", def_dtype[] = "f32";
    const char *model = NULL, *start = def_start, *start_ids = NULL, *kv = def_kv, *dtype = def_dtype;
    int num_samples = 10, max_new = 500, top_k = 200, batch = 1, compare = 0;
    float temperature = 0.8f, top_p = 1.0f;
    uint64_t seed = 1337;
    size_t limit = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "model folder"},
        {"start", OPT_STR, &start, "prompt"},
        {"start-ids", OPT_STR, &start_ids, "ids"},
        {"num_samples", OPT_INT, &num_samples, "samples"},
        {"max_new_tokens", OPT_INT, &max_new, "tokens"},
        {"temperature", OPT_FLOAT, &temperature, "temperature"},
        {"top_k", OPT_INT, &top_k, "top k"},
        {"top_p", OPT_FLOAT, &top_p, "top p"},
        {"seed", OPT_U64, &seed, "seed"},
        {"kv-cache", OPT_STR, &kv, "on | off"},
        {"batch", OPT_INT, &batch, "batch"},
        {"dtype", OPT_STR, &dtype, "dtype"},
        {"arena-limit", OPT_SIZE, &limit, "bytes"},
        {"compare", OPT_FLAG, &compare, "flag"},
    };
    int r = cli_parse("fuzz", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]));
    FZ_CHECK(r == 0 || r == 2, "cli_parse returned %d", r);
    const char *strs[] = {model, start, start_ids, kv, dtype}, *defs[] = {NULL, def_start, NULL, def_kv, def_dtype};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i] != defs[i])
            FZ_CHECK(strs[i] >= buf && strs[i] <= buf + size, "option %zu points outside argv", i);
    FZ_CHECK(compare == 0 || compare == 1, "flag %d", compare);
    FZ_CHECK(isfinite(temperature) && isfinite(top_p), "non-finite float accepted");
    if (r == 0) {
        (void)cli_dtype(dtype);
        if (start_ids) {
            int32_t ids[16];
            int n = cli_ids("fuzz", start_ids, ids, 16);
            FZ_CHECK(n == -1 || (n >= 1 && n <= 16), "cli_ids gave %d", n);
        }
    }
    free(buf);
    return 0;
}
