/* tests/support/suite.h — running a Check suite the way every kvgpt test does. */
#ifndef KVGPT_TEST_SUITE_H
#define KVGPT_TEST_SUITE_H

#include <check.h>

/* Runs s without forking (a fork after OpenMP started hangs with libgomp, and
 * one after CUDA started fails), prints Check's summary; returns 0 when every
 * test passed, else 1 — main()'s exit status. */
int tf_run_suite(Suite *s);

#endif
