/* build/llama-peer (bench/peer/llama_peer.c) without a llama.cpp: every way of not finding one
 * ends in one clear message and a non-zero exit, never a crash. */
#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static bool make_dir(const char *dir) { return mkdir(dir, 0700) == 0 || errno == EEXIST; }

/* build/llama-peer, beside the celer binary. */
static const char *peer_bin(void) {
    static char path[1024];
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", test_celer_bin());
    snprintf(path, sizeof path, "%s/llama-peer", dirname(bin));
    return path;
}

/* Runs the peer with `args`; true when it exits with `want_rc` and its output contains `want`. */
static bool peer_says(const char *args, int want_rc, const char *want) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s", peer_bin(), args);
    const int rc = test_run_cmd(cmd, &out, true);
    const bool ok = rc == want_rc && out && strstr(out, want);
    if (!ok) fprintf(stderr, "  llama-peer %s: rc %d, output: %s\n", args, rc, out ? out : "(none)");
    free(out);
    return ok;
}

TEST(bench_llama_peer_reports_missing_llama) {
    REQUIRE(access(peer_bin(), X_OK) == 0);
    char dir[1024], args[2048];
    CHECK(peer_says("", 2, "usage: llama-peer"));
    CHECK(peer_says("/nonexistent-celer-dir model.gguf", 1, "cannot open folder"));
    CHECK(peer_says(". model.gguf 0", 2, "REPS must be"));
    /* a folder without llama.cpp */
    snprintf(dir, sizeof dir, "%s/peer-empty", test_tmp_dir());
    REQUIRE(make_dir(dir));
    snprintf(args, sizeof args, "%s model.gguf", dir);
    CHECK(peer_says(args, 1, "no loadable libggml"));
    /* files named like llama.cpp's libraries that are not libraries */
    snprintf(dir, sizeof dir, "%s/peer-fake", test_tmp_dir());
    REQUIRE(make_dir(dir));
    char lib[1200];
    snprintf(lib, sizeof lib, "%s/libggml.so.1", dir);
    FILE *f = fopen(lib, "w");
    REQUIRE(f);
    fputs("not a shared library\n", f);
    fclose(f);
    snprintf(args, sizeof args, "%s model.gguf", dir);
    CHECK(peer_says(args, 1, "no loadable libggml"));
    /* real libraries without llama.cpp's functions (libm stands in for both) */
    const char *libm = "/lib/x86_64-linux-gnu/libm.so.6";
    if (access(libm, R_OK) == 0) {
        snprintf(dir, sizeof dir, "%s/peer-wrong", test_tmp_dir());
        REQUIRE(make_dir(dir));
        char link[1200];
        snprintf(link, sizeof link, "%s/libggml.so.1", dir);
        CHECK(symlink(libm, link) == 0);
        snprintf(link, sizeof link, "%s/libllama.so.1", dir);
        CHECK(symlink(libm, link) == 0);
        snprintf(args, sizeof args, "%s model.gguf", dir);
        CHECK(peer_says(args, 1, "llama_model_default_params not found"));
    }
}
