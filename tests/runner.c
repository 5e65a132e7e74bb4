/* Test runner: runs every registered test (or those whose name contains one of the
 * arguments) and ends with the line "N passed, N failed, N skipped". */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "test_table.h"

static int current_failed;
static int current_skipped;
static char skip_reason[256];

void test_fail_at(const char *file, int line, const char *fmt, ...) {
    if (current_failed < 20) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "    FAIL %s:%d: ", file, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    current_failed++;
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason, sizeof skip_reason, fmt, ap);
    va_end(ap);
    current_skipped = 1;
}

int test_failed_now(void) { return current_failed; }

const char *test_data_path(const char *rel) {
    static char ring[8][1024];
    static int next;
    const char *base = getenv("CELER_DATA");
    if (!base || !*base) base = "../shared";
    char *buf = ring[next++ % 8];
    snprintf(buf, 1024, "%s/%s", base, rel);
    return buf;
}

bool test_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (size) *size = (size_t)n;
    }
    return buf;
}

static char tmp_dir[256];

const char *test_tmp_dir(void) {
    char *dir = tmp_dir;
    if (!dir[0]) {
        snprintf(dir, sizeof tmp_dir, "/tmp/celer-tests-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

const char *test_celer_bin(void) {
    const char *b = getenv("CELER_BIN");
    return (b && *b) ? b : "build/celer";
}

int test_run_cmd(const char *cmd, char **output, bool merge_stderr) {
    char full[8192];
    snprintf(full, sizeof full, "%s%s", cmd, merge_stderr ? " 2>&1" : "");
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[len] = 0;
    int st = pclose(p);
    if (output) *output = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool selected(const char *name, int argc, char **argv) {
    if (argc <= 1) return true;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return true;
    return false;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    size_t n = sizeof test_table / sizeof test_table[0];
    for (size_t i = 0; i < n; i++) {
        if (!selected(test_table[i].name, argc, argv)) continue;
        current_failed = 0;
        current_skipped = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        test_table[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (current_failed) {
            failed++;
            printf("FAIL %s (%d failures, %.0f ms)\n", test_table[i].name, current_failed, ms);
        } else if (current_skipped) {
            skipped++;
            printf("SKIP %s: %s\n", test_table[i].name, skip_reason);
        } else {
            passed++;
            printf("ok   %s (%.0f ms)\n", test_table[i].name, ms);
        }
        fflush(stdout);
    }
    if (tmp_dir[0]) {
        /* Remove what the tests wrote; the directory name came from mkdtemp. */
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
