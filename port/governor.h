/* port/governor.h — how many threads the CPU port gives the next decode step.
 *
 * On a machine shared with other busy processes, OpenMP's spinning barriers
 * make a multi-threaded decode step wait for whichever of its threads the OS
 * has descheduled, dozens of times a token: measured here, 2 threads fell to
 * 10 tok/s where 1 thread still made 24 (GPT-2 small, one competing process).
 * The kernels give the same bits for any thread count, so the generate loop
 * may change the count between steps without changing a single token; this
 * decides when, from the step times alone:
 *
 *   - at all threads, the first full window of steps, and later a window
 *     whose halves are both well above the fastest step seen (CONTENDED), trigger
 *     a short trial at one thread (a machine busy from the start shows no
 *     slow-down: hence the first one, GOV_TRIAL steps once per model);
 *   - a trial that beats the window by a clear margin switches; one that
 *     does not re-bases "fastest" to the window (steps also grow slower as the
 *     context fills, which is not contention) and waits a little: the next
 *     trial needs the steps to slow down by as much again;
 *   - at one thread, every so often a short trial at all threads, switching
 *     back as soon as they win.
 *
 * Pure bookkeeping, no clock: the caller times the steps. */
#ifndef KVGPT_GOVERNOR_H
#define KVGPT_GOVERNOR_H

#define GOV_WINDOW 8        /* steps whose mean stands for the current setting */
#define GOV_TRIAL 4         /* steps of a trial */
#define GOV_CONTENDED 1.5   /* window mean / fastest step that suggests contention */
#define GOV_WIN 0.85        /* a trial's mean step must take at most this fraction of the window's */
#define GOV_COOLDOWN 64     /* steps after a switch, or a trial at one thread, before the next trial */
#define GOV_RETRY 16        /* steps after a trial of one thread that lost */

typedef struct gov_state {
    int max;                 /* threads the port was opened with */
    int cur;                 /* threads of the current setting */
    int trial;               /* steps left in a trial of the other setting; 0: none */
    int n_trial;
    double trial_t[GOV_TRIAL];
    int n_win;               /* steps in win_t (a ring) */
    double win_t[GOV_WINDOW];
    double fastest;          /* fastest step at max threads since the last re-base; 0: none */
    int cooldown;            /* steps before the next trial may start */
    int rows;                /* rows per step of the steps in the window */
    int switches;            /* settings changed so far */
    int trials;              /* trials so far (the first one comes with the first full window) */
} gov_state;

void gov_init(gov_state *g, int max_threads);
/* Threads for the next step. */
int gov_threads(const gov_state *g);
/* The step just run (at gov_threads' count) took `seconds` for `rows` rows.
 * Steps of a different row count start a new window. */
void gov_step(gov_state *g, double seconds, int rows);

#endif
