/* tests/test_governor.c — the decode thread-count governor on made-up
 * timelines: on a quiet machine it leaves all threads only for its one
 * initial trial, a context that slowly fills is not taken for contention,
 * contention (from the start, or later) moves decoding to one thread within
 * a few steps and its end moves it back.
 * (That a switch never changes a token is test_forward's and test_threads'
 * 1-vs-2-thread bitwise checks, and the forced switches of test_generate.) */
#include <check.h>
#include <stdint.h>
#include <stdio.h>

#include "port/governor.h"
#include "tests/support/suite.h"

/* Seconds a step takes at `threads`, step i of a timeline. */
typedef double (*cost_fn)(int threads, int i);

/* Deterministic ±3% jitter. */
static double jitter(int i)
{
    uint32_t x = (uint32_t)i * 2654435761u;
    x ^= x >> 15;
    return 1.0 + 0.06 * ((double)(x % 1000) / 1000.0 - 0.5);
}

/* Runs n steps; threads[i] gets the count step i ran with. */
static void run(gov_state *g, cost_fn cost, int n, int *threads)
{
    for (int i = 0; i < n; i++) {
        threads[i] = gov_threads(g);
        gov_step(g, cost(threads[i], i), 1);
    }
}

static int count_at(const int *threads, int from, int to, int t)
{
    int c = 0;
    for (int i = from; i < to; i++) c += threads[i] == t;
    return c;
}

static double quiet(int threads, int i) { return (threads == 2 ? 0.010 : 0.018) * jitter(i); }

START_TEST(test_quiet_machine_stays_on_all_threads)
{
    static int th[5000];
    gov_state g;
    gov_init(&g, 2);
    run(&g, quiet, 5000, th);
    /* The initial trial, once the first window is full (the very first step only sets the row count). */
    ck_assert_int_eq(count_at(th, 0, 2 * GOV_WINDOW, 1), GOV_TRIAL);
    ck_assert_int_eq(count_at(th, 2 * GOV_WINDOW, 5000, 1), 0);
    ck_assert_int_eq(g.switches, 0);
}
END_TEST

/* The context filling up: steps three times slower by the end, one thread
 * always 1.8x slower than two. */
static double filling(int threads, int i) { return quiet(threads, i) * (1.0 + i / 500.0); }

START_TEST(test_filling_context_is_not_contention)
{
    static int th[1000];
    gov_state g;
    gov_init(&g, 2);
    run(&g, filling, 1000, th);
    ck_assert_int_eq(g.switches, 0);
    int trials = count_at(th, 0, 1000, 1);
    ck_assert_msg(trials <= 4 * GOV_TRIAL, "%d steps spent on one-thread trials", trials);
}
END_TEST

/* Quiet, then 500 steps where two threads take 35 ms and one 20, then quiet. */
static double contended(int threads, int i)
{
    if (i < 100 || i >= 600) return quiet(threads, i);
    return (threads == 2 ? 0.035 : 0.020) * jitter(i);
}

START_TEST(test_contention_moves_to_one_thread_and_back)
{
    static int th[1000];
    gov_state g;
    gov_init(&g, 2);
    run(&g, contended, 1000, th);
    ck_assert_int_eq(count_at(th, 2 * GOV_WINDOW, 100, 1), 0);
    /* Within a window and a trial of the contention starting: one thread. */
    int settle = 100 + GOV_WINDOW + GOV_TRIAL + 2;
    ck_assert_msg(th[settle] == 1, "still on %d threads %d steps into contention", th[settle], settle - 100);
    /* While it lasts, only the periodic trials of two threads. */
    int two = count_at(th, settle, 600, 2);
    ck_assert_msg(two <= (600 - settle) / GOV_COOLDOWN * GOV_TRIAL + GOV_TRIAL, "%d contended steps on 2 threads", two);
    /* Once it ends, back to two threads within a cooldown and a trial. */
    int back = 600 + GOV_COOLDOWN + GOV_WINDOW + GOV_TRIAL;
    ck_assert_msg(count_at(th, back, 1000, 1) == 0, "one-thread steps after the machine went quiet");
    ck_assert_int_ge(g.switches, 2);
}
END_TEST

/* Busy from the first step: there is no slow-down to see, the initial trial finds it. */
static double busy(int threads, int i) { return (threads == 2 ? 0.035 : 0.020) * jitter(i); }

START_TEST(test_busy_from_the_start)
{
    static int th[500];
    gov_state g;
    gov_init(&g, 2);
    run(&g, busy, 500, th);
    int settle = GOV_WINDOW + GOV_TRIAL + 1;
    ck_assert_msg(th[settle] == 1, "on %d threads after %d busy steps", th[settle], settle);
    int two = count_at(th, settle, 500, 2);
    ck_assert_msg(two <= (500 - settle) / GOV_COOLDOWN * GOV_TRIAL + GOV_TRIAL, "%d busy steps on 2 threads", two);
}
END_TEST

/* Contention as it looks on a real busy machine: most steps on two threads
 * still fast, every third one very slow (a thread descheduled at a barrier);
 * the fastest step seen is a fast one, the mean is what counts. */
static double bimodal(int threads, int i)
{
    if (threads == 1) return 0.020 * jitter(i);
    return (i % 3 == 0 ? 0.090 : 0.012) * jitter(i);
}

START_TEST(test_bimodal_contention)
{
    static int th[500];
    gov_state g;
    gov_init(&g, 2);
    run(&g, bimodal, 500, th);
    int settle = 3 * GOV_WINDOW;
    int two = count_at(th, settle, 500, 2);
    ck_assert_msg(two <= (500 - settle) / GOV_COOLDOWN * GOV_TRIAL + GOV_TRIAL, "%d steps on 2 threads", two);
}
END_TEST

START_TEST(test_one_thread_never_changes)
{
    static int th[300];
    gov_state g;
    gov_init(&g, 1);
    run(&g, contended, 300, th);
    ck_assert_int_eq(count_at(th, 0, 300, 1), 300);
    ck_assert_int_eq(g.switches, 0);
}
END_TEST

/* Steps of changing size (sequences finishing in a batch) are not compared
 * with each other: alternating sizes never start a trial. */
START_TEST(test_other_row_counts_start_over)
{
    gov_state g;
    gov_init(&g, 2);
    for (int i = 0; i < 400; i++) {
        ck_assert_int_eq(gov_threads(&g), 2);
        gov_step(&g, i % 2 ? 0.080 : 0.010, i % 2 ? 10 : 1);
    }
    ck_assert_int_eq(g.switches, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("governor");
    TCase *tc = tcase_create("timelines");
    tcase_add_test(tc, test_quiet_machine_stays_on_all_threads);
    tcase_add_test(tc, test_filling_context_is_not_contention);
    tcase_add_test(tc, test_contention_moves_to_one_thread_and_back);
    tcase_add_test(tc, test_busy_from_the_start);
    tcase_add_test(tc, test_bimodal_contention);
    tcase_add_test(tc, test_one_thread_never_changes);
    tcase_add_test(tc, test_other_row_counts_start_over);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}
