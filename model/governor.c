/* model/governor.c — the decode thread-count governor (see governor.h). */
#include "model/governor.h"

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

/* The lower (upper) median: the middle value of an odd count, the lower
 * (upper) of the two middle ones of an even count. The window's lower median
 * is above a threshold only when most of its steps are; a trial's upper median
 * is below one only when most of its steps are. */
static double median(const double *v, int n, int upper)
{
    double s[GOV_WINDOW > GOV_TRIAL ? GOV_WINDOW : GOV_TRIAL];
    memcpy(s, v, sizeof(double) * (size_t)n);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j] < s[j - 1]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return n % 2 || upper ? s[n / 2] : s[n / 2 - 1];
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
    double tm = median(g->trial_t, g->n_trial, 1), wm = median(g->win_t, g->n_win, 0);
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
    /* At all threads, try one only when the steps look contended; at one
     * thread, try all of them again whenever the cooldown allows. */
    if (g->cur != g->max || median(g->win_t, g->n_win, 0) > GOV_CONTENDED * g->fastest) g->trial = GOV_TRIAL;
}
