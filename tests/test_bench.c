/* tests/test_bench.c — the benchmarks' machine probes (bench/probe.c): they
 * measure something plausible on any buffer size and thread count, and they
 * stay out of the library a host links (only the benchmarks need them). */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench/bench.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

START_TEST(probes_measure)
{
    double g = bench_probe_fma_gflops(1, 0.02);
    ck_assert_msg(g > 0.1 && g < 1e5, "fma probe %g", g);
    /* A length that is no multiple of a line or of the threads' share. */
    size_t bytes = ((size_t)4 << 20) + 13;
    void *buf = malloc(bytes);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 1, bytes);
    double r = bench_probe_read_gbps(buf, bytes, 2, 2);
    ck_assert_msg(r > 0.01 && r < 1e5, "read probe %g", r);
    r = bench_probe_read_gbps(buf, 100, 3, 1);
    ck_assert_msg(r > 0.0, "read probe of 100 bytes on 3 threads %g", r);
    free(buf);
}
END_TEST

START_TEST(threads_as_asked)
{
    ck_assert_int_eq(bench_threads(3), 3);
    ck_assert_int_eq(bench_threads(0), omp_get_max_threads());
    ck_assert_int_eq(bench_threads(-2), omp_get_max_threads());
}
END_TEST

/* libkvgpt.a beside the tool make test passes (build/TARGET/kvgpt) defines
 * no probe: nm lists its global symbols. */
START_TEST(probes_not_in_library)
{
    const char *tool = getenv("KVGPT_TOOL");
    char lib[4096], cmd[8300];
    snprintf(lib, sizeof lib, "%s", tool && *tool ? tool : "build/cpu/kvgpt");
    const char *slash = strrchr(lib, '/');
    size_t dir = slash ? (size_t)(slash + 1 - lib) : 0;
    snprintf(lib + dir, sizeof lib - dir, "libkvgpt.a");
    struct stat st;
    if (stat(lib, &st) != 0 || system("command -v nm >/dev/null 2>&1") != 0) {
        tf_skip(__func__, "no libkvgpt.a beside the tool, or no nm");
        return;
    }
    snprintf(cmd, sizeof cmd, "nm -g --defined-only '%s' | grep -q ' kvgpt_open$'", lib);
    ck_assert_msg(system(cmd) == 0, "nm lists the library's symbols (kvgpt_open): %s", lib);
    snprintf(cmd, sizeof cmd, "nm -g --defined-only '%s' | grep -Eq ' (ops|bench)_probe_'", lib);
    ck_assert_msg(system(cmd) != 0, "%s defines a machine probe", lib);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("probes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, probes_measure);
    tcase_add_test(tc, threads_as_asked);
    tcase_add_test(tc, probes_not_in_library);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
