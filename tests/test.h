/* Minimal test harness. Each test is `TEST(name) { ... }` at the start of a line in some
 * tests/ source file; the Makefile collects them into one table, so one runner runs any subset:
 *     build/celer-tests [substring ...]
 * CHECK records a failure and continues; REQUIRE stops the test. */
#ifndef CELER_TEST_H
#define CELER_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celer.h"

#define TEST(name) void test_##name(void)

void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Marks the current test skipped (e.g. data missing), with a reason. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int test_failed_now(void);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                     \
    } while (0)
#define CHECKF(cond, ...)                                                                      \
    do {                                                                                       \
        if (!(cond)) test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                            \
    } while (0)
#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            test_fail_at(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                            \
            return;                                                                            \
        }                                                                                      \
    } while (0)
#define REQUIREF(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                     \
            return;                                                                            \
        }                                                                                      \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                       \
        long long _a = (long long)(a), _b = (long long)(b);                                    \
        if (_a != _b) test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b); \
    } while (0)

/* $CELER_DATA (default ../shared) joined with rel; returns a static-per-call buffer from a
 * small ring, good for a few simultaneous uses. */
const char *test_data_path(const char *rel);
/* True if the file exists. */
bool test_file_exists(const char *path);
/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL on failure. */
char *test_read_file(const char *path, size_t *size);
/* A fresh temporary directory for this test run (created once). */
const char *test_tmp_dir(void);
/* Path of the celer binary ($CELER_BIN, default build/celer). */
const char *test_celer_bin(void);
/* Runs a shell command, captures stdout (and stderr if merge_stderr) into a malloc'd string;
 * returns the exit status (or -1). */
int test_run_cmd(const char *cmd, char **output, bool merge_stderr);

struct test_entry {
    const char *name;
    void (*fn)(void);
};

#endif
