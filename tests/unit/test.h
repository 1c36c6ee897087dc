/* test.h: a minimal unit-test harness. One binary per suite; each TEST is a
 * function registered in the suite's table; CHECK records a failure and
 * returns from the test; the runner prints one line per failure and a summary
 * line `NAME: N passed, N failed`, exiting non-zero on any failure. */
#ifndef SHOAL_TEST_H
#define SHOAL_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(int *failed);
};

#define TEST(name) static void name(int *test__failed)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            *test__failed = 1;                                               \
            return;                                                          \
        }                                                                    \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                   \
    do {                                                                     \
        unsigned long long test__a = (unsigned long long)(a);                \
        unsigned long long test__b = (unsigned long long)(b);                \
        if (test__a != test__b) {                                            \
            fprintf(stderr, "  %s:%d: CHECK failed: %s == %s (%llu != %llu)\n", \
                    __FILE__, __LINE__, #a, #b, test__a, test__b);           \
            *test__failed = 1;                                               \
            return;                                                          \
        }                                                                    \
    } while (0)

/* Runs every case (only the one named by the environment's TEST_ONLY, when
 * set: the canaries run just the case that must catch them); prints the
 * summary line; returns the process exit code. */
static inline int test_run(const char *suite, const struct test_case *cases,
                           int count) {
    int passed = 0;
    int failed = 0;
    const char *only = getenv("TEST_ONLY");
    for (int i = 0; i < count; i++) {
        int case_failed = 0;
        if (only != NULL && *only != '\0' && strcmp(only, cases[i].name) != 0) continue;
        cases[i].fn(&case_failed);
        if (case_failed) {
            fprintf(stderr, "FAIL %s.%s\n", suite, cases[i].name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%s: %d passed, %d failed\n", suite, passed, failed);
    return failed == 0 ? 0 : 1;
}

#define TEST_ENTRY(name) {#name, name}

#endif
