/* ops/threads.c — the OpenMP thread team: how many threads, the stack each
 * of them gets, and starting libgomp's pool so that a thread the system
 * refuses makes a smaller team instead of ending the process.
 *
 * libgomp starts its pool at a host thread's first parallel region, and when
 * pthread_create fails there (a container's pids limit, ulimit -u, an address
 * space too small for one more stack) it prints "Thread creation failed" and
 * calls exit(1). So before a region asks libgomp for T threads, ops_team_start
 * starts T - 1 threads of its own, with the stack libgomp would give them,
 * all alive at once: a chain, each link starting the next, so that the
 * caller's stack holds one link only. The chain ends where the system first
 * refuses; each link waits for its successor to be gone — the kernel counts a
 * thread against the limits until it is released, a little after
 * pthread_join has returned — and libgomp is then asked for exactly as many
 * threads as the system just allowed.
 */
#define _GNU_SOURCE   /* syscall(): gettid, tgkill */
#include "ops/ops_internal.h"
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

int ops_threads(int nt)
{
    return nt > 0 ? nt : omp_get_max_threads();
}

/* libgomp's reading of OMP_STACKSIZE / GOMP_STACKSIZE: a number, then B, K,
 * M or G (K when none), spaces around; 0 when unset or not valid (libgomp
 * then keeps the default too). */
static size_t th_env_stack(const char *name)
{
    const char *v = getenv(name);
    if (!v) return 0;
    while (*v == ' ' || *v == '\t') v++;
    if (*v < '0' || *v > '9') return 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    unsigned shift = 10;
    switch (*end) {
    case 'b': case 'B': shift = 0; end++; break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    while (*end == ' ' || *end == '\t') end++;
    if (*end || n > ((unsigned long long)SIZE_MAX >> shift)) return 0;
    return (size_t)(n << shift);
}

static size_t th_env_stacksize(void)
{
    size_t s = th_env_stack("OMP_STACKSIZE");
    return s ? s : th_env_stack("GOMP_STACKSIZE");
}

/* The attributes libgomp starts its threads with: the default ones, with
 * the stack size of the environment when pthread_attr_setstacksize takes it. */
static int th_attr(pthread_attr_t *a)
{
    if (pthread_attr_init(a) != 0) return -1;
    size_t env = th_env_stacksize();
    if (env) (void)pthread_attr_setstacksize(a, env);
    return 0;
}

size_t ops_thread_stack(void)
{
    pthread_attr_t a;
    size_t s = 0;
    if (th_attr(&a) != 0) return 0;
    if (pthread_attr_getstacksize(&a, &s) != 0) s = 0;
    pthread_attr_destroy(&a);
    return s;
}

typedef struct {
    const pthread_attr_t *attr;
    int left;        /* threads this link and those after it are to be */
    int got;         /* of them, those the system allowed */
    long tid;        /* this link's kernel thread id (Linux), 0 elsewhere */
} th_link;

/* Returns once the kernel has released thread tid of this process. */
static void th_wait_released(long tid)
{
#if defined(__linux__)
    /* A few milliseconds at most in practice; bounded all the same. */
    for (int i = 0; tid > 0 && i < 100000 && syscall(SYS_tgkill, (long)getpid(), tid, 0) == 0; i++)
        sched_yield();
#else
    (void)tid;
#endif
}

static void *th_chain(void *arg)
{
    th_link *me = arg;
#if defined(__linux__)
    me->tid = syscall(SYS_gettid);
#endif
    me->got = 1;
    if (me->left > 1) {
        th_link next = {me->attr, me->left - 1, 0, 0};
        pthread_t t;
        if (pthread_create(&t, me->attr, th_chain, &next) == 0) {
            pthread_join(t, NULL);
            th_wait_released(next.tid);
            me->got += next.got;
        }
    }
    return NULL;
}

int ops_team_start(int nt)
{
    if (nt <= 1) return 1;
    pthread_attr_t attr;
    if (th_attr(&attr) != 0) return 1;
    int got = 0;
    th_link first = {&attr, nt - 1, 0, 0};
    pthread_t t;
    if (pthread_create(&t, &attr, th_chain, &first) == 0) {
        pthread_join(t, NULL);
        th_wait_released(first.tid);
        got = first.got;
    }
    pthread_attr_destroy(&attr);
    const int T = 1 + got;
    if (T > 1) {
        /* libgomp starts (allocating) the pool now, inside open, rather than
         * in the first generation. */
        int started = 0;
#pragma omp parallel num_threads(T)
        {
#pragma omp atomic
            started++;
        }
        (void)started;
    }
    return T;
}
