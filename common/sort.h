/* common/sort.h — an in-place heapsort: O(n log n) on any input (hostile
 * headers included) and no allocation (glibc's qsort may malloc). */
#ifndef KVGPT_SORT_H
#define KVGPT_SORT_H

#include <stddef.h>

/* Sorts n elements of size bytes ascending by cmp (qsort's contract; size <= 256). */
void kv_heapsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif
