/* ops/dispatch.c — which kernel sets this build has, and which of them this
 * CPU runs: CPUID says what the processor has, XGETBV whether the operating
 * system saves the registers those instructions use (a processor with
 * AVX-512 under an OS — or an emulator, such as valgrind — that does not save
 * ZMM registers cannot run the avx512 set). */
#include "ops/ops_internal.h"
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define DS_X86 1
#include <cpuid.h>
#endif

enum { DS_NONE, DS_AVX2, DS_AVX512 };

extern const ops_kernels ops_kernels_portable;
#ifdef DS_X86
extern const ops_kernels ops_kernels_avx2, ops_kernels_avx512;
#endif

static const struct {
    const ops_kernels *k;
    int need;
    const char *needs;
} ds_sets[] = {
    {&ops_kernels_portable, DS_NONE, "nothing beyond the architecture's baseline"},
#ifdef DS_X86
    {&ops_kernels_avx2, DS_AVX2, "AVX2, FMA and F16C, with the OS saving YMM registers"},
    {&ops_kernels_avx512, DS_AVX512, "AVX-512 F, BW, DQ and VL besides AVX2, FMA and F16C, "
                                     "with the OS saving ZMM registers"},
#endif
};
#define DS_COUNT ((int)(sizeof ds_sets / sizeof ds_sets[0]))

#ifdef DS_X86
/* XCR0: the register state the OS saves on a context switch. */
static uint64_t ds_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int ds_cpu_has(int need)
{
    unsigned a, b, c, d;
    if (need == DS_NONE) return 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned l1 = bit_OSXSAVE | bit_AVX | bit_FMA | bit_F16C;
    if ((c & l1) != l1) return 0;
    const uint64_t xcr0 = ds_xcr0();
    if ((xcr0 & 0x6) != 0x6) return 0;   /* XMM and YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & bit_AVX2)) return 0;
    if (need == DS_AVX2) return 1;
    const unsigned l7 = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
    return (b & l7) == l7 && (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM0-15 upper halves, ZMM16-31 */
}
#else
static int ds_cpu_has(int need) { return need == DS_NONE; }
#endif

int ops_set_count(void) { return DS_COUNT; }

const ops_kernels *ops_set_at(int i) { return i >= 0 && i < DS_COUNT ? ds_sets[i].k : NULL; }

const ops_kernels *ops_set_named(const char *name)
{
    for (int i = 0; name && i < DS_COUNT; i++)
        if (strcmp(ds_sets[i].k->name, name) == 0) return ds_sets[i].k;
    return NULL;
}

static int ds_index(const ops_kernels *k)
{
    for (int i = 0; i < DS_COUNT; i++)
        if (ds_sets[i].k == k) return i;
    return -1;
}

int ops_set_runs(const ops_kernels *k)
{
    int i = ds_index(k);
    return i >= 0 && ds_cpu_has(ds_sets[i].need);
}

const ops_kernels *ops_set_best(void)
{
    for (int i = DS_COUNT - 1; i > 0; i--)
        if (ds_cpu_has(ds_sets[i].need)) return ds_sets[i].k;
    return ds_sets[0].k;
}

const char *ops_set_needs(const ops_kernels *k)
{
    int i = ds_index(k);
    return i >= 0 ? ds_sets[i].needs : "";
}
