/* port/governor.c — the decode thread-count governor (see governor.h). */
#include "port/governor.h"

#include <string.h>

void gov_init(gov_state *g, int max_threads)
{
    memset(g, 0, sizeof *g);
    g->max = max_threads < 1 ? 1 : max_threads;
    g->cur = g->max;
}

int gov_threads(const gov_state *g)
{
    if (g->trial) return g->cur == g->max ? 1 : g->max;
    return g->cur;
}

/* Means, not medians: under contention a step is fast or very slow by turns,
 * and the slow ones are what the threads cost. */
static double mean(const double *v, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += v[i];
    return s / n;
}

/* Both halves of a full window slower than CONTENDED x the fastest step: a
 * lasting slow-down, not one hiccup, and not a window only half into one
 * (a trial then would be compared with steps from before it began). */
static int contended(const gov_state *g)
{
    const int h = GOV_WINDOW / 2;
    return mean(g->win_t, h) > GOV_CONTENDED * g->fastest && mean(g->win_t + h, h) > GOV_CONTENDED * g->fastest;
}

static void window_push(gov_state *g, double t)
{
    if (g->n_win == GOV_WINDOW) {
        memmove(g->win_t, g->win_t + 1, sizeof(double) * (GOV_WINDOW - 1));
        g->n_win--;
    }
    g->win_t[g->n_win++] = t;
}

/* A trial just ended: switch when the other setting was clearly faster. */
static void trial_end(gov_state *g)
{
    double tm = mean(g->trial_t, g->n_trial), wm = mean(g->win_t, g->n_win);
    g->cooldown = GOV_COOLDOWN;
    if (tm < GOV_WIN * wm) {
        g->cur = g->cur == g->max ? 1 : g->max;
        g->switches++;
        memcpy(g->win_t, g->trial_t, sizeof(double) * (size_t)g->n_trial);
        g->n_win = g->n_trial;
        if (g->cur == g->max) g->fastest = tm;
    } else if (g->cur == g->max) {
        /* One thread was no better: whatever slowed the steps down (a fuller
         * context, or contention one thread suffers as much), it is the new normal. */
        g->fastest = wm;
        g->cooldown = GOV_RETRY;
    }
    g->n_trial = 0;
}

void gov_step(gov_state *g, double seconds, int rows)
{
    if (g->max == 1 || !(seconds > 0.0)) return;
    if (rows != g->rows) {   /* another kind of step: times are not comparable */
        g->rows = rows;
        g->n_win = g->n_trial = g->trial = 0;
        g->fastest = 0.0;
        return;
    }
    if (g->trial) {
        g->trial_t[g->n_trial++] = seconds;
        if (--g->trial == 0) trial_end(g);
        return;
    }
    window_push(g, seconds);
    if (g->cur == g->max && (g->fastest == 0.0 || seconds < g->fastest)) g->fastest = seconds;
    if (g->cooldown > 0) {
        g->cooldown--;
        return;
    }
    if (g->n_win < GOV_WINDOW) return;
    /* At all threads, try one once at the start (a machine busy from the
     * first step shows no slow-down), then only when the steps look
     * contended; at one thread, try all of them again whenever the cooldown
     * allows. */
    if (g->cur != g->max || g->trials == 0 || contended(g)) {
        g->trial = GOV_TRIAL;
        g->trials++;
    }
}
