/* tests/support/suite.c — the one way the test programs run their suite, and
 * how a test says it was skipped (fixtures.h declares tf_skip and
 * tf_need_fixtures; they live here because they need Check, which
 * fixtures.c does not: tests/fixture_check.c uses it without Check). */
#include "tests/support/suite.h"
#include "tests/support/fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Check's START_TEST(name) defines name_fn: say name. */
static int test_name_len(const char *test)
{
    size_t n = strlen(test);
    return (int)(n > 3 && strcmp(test + n - 3, "_fn") == 0 ? n - 3 : n);
}

void tf_skip(const char *test, const char *why)
{
    printf("SKIP: %.*s: %s\n", test_name_len(test), test, why);
    fflush(stdout);
}

int tf_need_fixtures(const char *test)
{
    if (tf_dir()) return 1;
    const char *req = getenv("KVGPT_REQUIRE_FIXTURES");
    if (req && *req)
        ck_abort_msg("%.*s: the fixtures are required here (KVGPT_REQUIRE_FIXTURES) but not found at %s",
                     test_name_len(test), test,
                     getenv("KVGPT_FIXTURES") && *getenv("KVGPT_FIXTURES") ? getenv("KVGPT_FIXTURES")
                                                                           : "../shared/fixtures");
    tf_skip(test, "no fixtures (../shared/fixtures, or $KVGPT_FIXTURES)");
    return 0;
}

int tf_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
