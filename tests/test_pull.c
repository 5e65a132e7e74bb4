/* Tests of `celer pull` (src/download): spec parsing, SHA-256, and downloads from a loopback
 * HTTP server (tests/http_server.py on 127.0.0.1, a fresh one per test, killed afterwards)
 * serving $CELER_DATA/models: redirects as on the Hub, interrupted transfers resumed in the
 * same call and by a later one, wrong checksums and sizes, 404, refused connections and disk
 * write errors. Nothing here leaves the machine. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "download/download.h"
#include "test.h"

extern char **environ;

#define MODEL_REL "models/stories260K.gguf"
#define MODEL_SIZE 1185376
#define MODEL_SHA "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"
#define HUB_SPEC "ggml-org/models"
#define HUB_FILE "tinyllamas/stories260K.gguf"

/* ---------------------------------------------------------------- loopback server */

typedef struct server {
    pid_t pid;
    int port;
    char base[64];   /* http://127.0.0.1:PORT */
    char log[512];
} server;

/* Starts tests/http_server.py; false (test skipped) when python3, the script or the data is
 * missing, false (test failed) when it does not come up. */
static bool server_start(server *s, const char *name) {
    memset(s, 0, sizeof *s);
    if (!test_file_exists(test_data_path(MODEL_REL))) {
        test_skip("%s not found", test_data_path(MODEL_REL));
        return false;
    }
    if (!test_file_exists("tests/http_server.py")) {
        test_skip("tests/http_server.py not found (run from the repository root)");
        return false;
    }
    snprintf(s->log, sizeof s->log, "%s/%s.log", test_tmp_dir(), name);
    unlink(s->log);
    int fds[2];
    if (pipe(fds) != 0) return false;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {"python3", "tests/http_server.py", "--root", (char *)test_data_path("models"),
                    "--log", s->log, "--lifetime", "60", NULL};
    int rc = posix_spawnp(&s->pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        s->pid = 0;
        test_skip("cannot start python3: %s", strerror(rc));
        return false;
    }
    /* The server prints its port once it listens; wait for it at most 10 s. */
    char line[32] = "";
    size_t n = 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    while (n < sizeof line - 1 && !strchr(line, '\n') && poll(&pfd, 1, 10000) > 0) {
        ssize_t got = read(fds[0], line + n, sizeof line - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
        line[n] = 0;
    }
    close(fds[0]);
    s->port = atoi(line);
    if (s->port <= 0) {
        test_fail_at(__FILE__, __LINE__, "loopback server did not start (got '%s')", line);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        return false;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return true;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Stops the server and deletes the test's downloads (test_tmp_dir()/cache-*): megabytes per
 * test would pile up in /tmp over many runs. */
static void server_stop(server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    unlink(s->log);
    DIR *d = opendir(test_tmp_dir());
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "cache-", 6) != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), e->d_name);
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (d) closedir(d);
}

static int log_lines(const server *s) {
    char *txt = test_read_file(s->log, NULL);
    int n = 0;
    for (char *p = txt; p && *p; p++) n += *p == '\n';
    free(txt);
    return n;
}

static bool log_has(const server *s, const char *needle) {
    char *txt = test_read_file(s->log, NULL);
    bool yes = txt && strstr(txt, needle);
    free(txt);
    return yes;
}

/* ---------------------------------------------------------------- helpers */

static const char *cache_dir(const char *name) {
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 512, "%s/cache-%s", test_tmp_dir(), name);
    return b;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static bool same_as_model(const char *path) {
    size_t na = 0, nb = 0;
    char *a = test_read_file(path, &na);
    char *b = test_read_file(test_data_path(MODEL_REL), &nb);
    bool same = a && b && na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    return same;
}

static const char *part_of(const char *path) {
    static char buf[4200];
    snprintf(buf, sizeof buf, "%s.part", path);
    return buf;
}

typedef struct progress_log {
    int calls;
    int64_t last_done, last_total;
    bool went_back;
} progress_log;

static void on_progress(void *user, int64_t done, int64_t total) {
    progress_log *p = user;
    if (p->calls > 0 && done < p->last_done) p->went_back = true;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
}

/* Params for a test: its own cache, the server (with behaviour segments) as endpoint. */
static celer_pull_params params_for(const char *name, const server *s, const char *mods,
                                    char *endpoint, size_t cap) {
    celer_pull_params p = celer_pull_default_params();
    p.cache_dir = cache_dir(name);
    snprintf(endpoint, cap, "%s%s", s ? s->base : "http://127.0.0.1:1", mods);
    p.endpoint = endpoint;
    p.connect_timeout_s = 5;
    p.stall_timeout_s = 10;
    return p;
}

/* ---------------------------------------------------------------- no network */

TEST(pull_spec_forms) {
    celer_pull_params p = celer_pull_default_params();
    p.cache_dir = "/c";
    p.endpoint = "http://h:1/";
    char url[512], path[512];
    const char *want_url = "http://h:1/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf";
    const char *want_path = "/c/hf/ggml-org/models/tinyllamas/stories260K.gguf";
    const char *forms[][2] = {{HUB_SPEC, HUB_FILE},
                              {HUB_SPEC " " HUB_FILE, NULL},
                              {HUB_SPEC "  /" HUB_FILE, NULL},
                              {HUB_SPEC "/" HUB_FILE, NULL}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        celer_error err = {0};
        REQUIREF(celer_pull_locate(forms[i][0], forms[i][1], &p, url, sizeof url, path,
                                   sizeof path, &err) == CELER_OK,
                 "form %zu: %s", i, err.message);
        CHECKF(!strcmp(url, want_url), "form %zu: url %s", i, url);
        CHECKF(!strcmp(path, want_path), "form %zu: path %s", i, path);
    }

    p.endpoint = NULL; /* the real Hub by default */
    REQUIRE(celer_pull_locate(HUB_SPEC, HUB_FILE, &p, url, sizeof url, NULL, 0, NULL) == CELER_OK);
    CHECK(!strcmp(url, "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf"));
    REQUIRE(celer_pull_locate("a/b", "dir/my file+x.gguf", &p, url, sizeof url, path, sizeof path,
                              NULL) == CELER_OK);
    CHECKF(!strcmp(url, "https://huggingface.co/a/b/resolve/main/dir/my%20file%2Bx.gguf"), "%s", url);
    CHECKF(!strcmp(path, "/c/hf/a/b/dir/my file+x.gguf"), "%s", path);

    /* URLs: cached by a hash of the URL plus a safe base name. */
    char path2[512];
    REQUIRE(celer_pull_locate("https://example.com/x/model.gguf?download=1", NULL, &p, url,
                              sizeof url, path, sizeof path, NULL) == CELER_OK);
    CHECK(!strcmp(url, "https://example.com/x/model.gguf?download=1"));
    CHECKF(!strncmp(path, "/c/url/", 7) && strlen(path) == 7 + 16 + 1 + 10 &&
               !strcmp(path + strlen(path) - 11, "/model.gguf"),
           "%s", path);
    REQUIRE(celer_pull_locate("https://example.com/y/model.gguf", NULL, &p, NULL, 0, path2,
                              sizeof path2, NULL) == CELER_OK);
    CHECK(strcmp(path, path2) != 0);
    REQUIRE(celer_pull_locate("http://example.com", NULL, &p, NULL, 0, path2, sizeof path2,
                              NULL) == CELER_OK);
    CHECKF(!strcmp(path2 + strlen(path2) - 9, "/download"), "%s", path2);

    /* Everything malformed is refused with a message, never a crash. */
    const char *bad[][2] = {{"", NULL},          {"owner", NULL},          {"owner/repo", NULL},
                            {"o/r ../x.gguf", NULL}, {"o/r", "a//b.gguf"},  {"o/r", "a/./b"},
                            {"o/r", "a/b/"},     {"o/r", "a\\b"},          {"o/r", "a\tb"},
                            {"ftp://x/y", NULL}, {"https://x/y", "f.gguf"}, {"bad name!/r", "f"},
                            {"../r", "f.gguf"},  {"o/..", "f.gguf"},       {"https://", NULL},
                            {"http://h/a b", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        celer_error err = {0};
        celer_status st = celer_pull_locate(bad[i][0], bad[i][1], &p, url, sizeof url, path,
                                            sizeof path, &err);
        CHECKF(st == CELER_ERR_INVALID_ARG && err.message[0], "bad spec '%s' '%s': %d", bad[i][0],
               bad[i][1] ? bad[i][1] : "", st);
    }
    celer_error err = {0};
    p.endpoint = "ftp://mirror";
    CHECK(celer_pull_locate(HUB_SPEC, HUB_FILE, &p, url, sizeof url, NULL, 0, &err) ==
          CELER_ERR_INVALID_ARG);
    p.endpoint = NULL;
    p.cache_dir = NULL;
    CHECK(celer_pull_locate(HUB_SPEC, HUB_FILE, &p, url, sizeof url, NULL, 0, &err) ==
          CELER_ERR_INVALID_ARG);
    p.cache_dir = "/c";
    CHECK(celer_pull_locate(HUB_SPEC, HUB_FILE, &p, url, 10, NULL, 0, &err) ==
          CELER_ERR_BUFFER_TOO_SMALL);

    /* Telling specs from missing local files. */
    CHECK(dl_looks_like_spec("a/b c.gguf"));
    CHECK(dl_looks_like_spec("a/b/c.gguf"));
    CHECK(dl_looks_like_spec("https://x/y.gguf"));
    CHECK(!dl_looks_like_spec("model.gguf"));
    CHECK(!dl_looks_like_spec("dir/model.gguf"));
    CHECK(!dl_looks_like_spec("./a/b/c.gguf"));
    CHECK(!dl_looks_like_spec("/abs/a/b.gguf"));
    CHECK(!dl_looks_like_spec("a/b"));
    CHECK(!dl_looks_like_spec("a/b/"));
    CHECK(!dl_looks_like_spec(""));
}

TEST(pull_sha256) {
    char hex[DL_SHA256_HEX];
    dl_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    dl_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    if (test_file_exists(test_data_path(MODEL_REL))) {
        celer_error err = {0};
        CHECK(dl_sha256_file(test_data_path(MODEL_REL), hex, &err) == CELER_OK);
        CHECKF(!strcmp(hex, MODEL_SHA), "%s", hex);
    }
    celer_error err = {0};
    CHECK(dl_sha256_file("/nonexistent/file", hex, &err) == CELER_ERR_IO && err.message[0]);

    char out[DL_SHA256_HEX];
    CHECK(dl_parse_sha256("\"" MODEL_SHA "\"", 66, out) && !strcmp(out, MODEL_SHA));
    const char *upper = "W/\"270CBA1BD5109F42D03350F60406024560464DB173C0E387D91F0426D3BD256D\"";
    CHECK(dl_parse_sha256(upper, strlen(upper), out) && !strcmp(out, MODEL_SHA));
    CHECK(!dl_parse_sha256(MODEL_SHA, 63, out));
    CHECK(!dl_parse_sha256("\"d4f8a3c1e2b0\"", 14, out)); /* a git blob id style ETag */
    CHECK(!dl_parse_sha256("zz0cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d", 64,
                           out));
}

TEST(pull_resolve_local) {
    char out[4096];
    celer_error err = {0};
    const char *model = test_data_path(MODEL_REL);
    if (test_file_exists(model)) {
        /* An existing file needs no params and no network. */
        CHECK(celer_model_resolve(model, NULL, out, sizeof out, &err) == CELER_OK);
        CHECK(!strcmp(out, model));
        CHECK(celer_model_resolve(model, NULL, out, 4, &err) == CELER_ERR_BUFFER_TOO_SMALL);
    }
    CHECK(celer_model_resolve(test_tmp_dir(), NULL, out, sizeof out, &err) == CELER_ERR_INVALID_ARG);
    CHECK(celer_model_resolve("nope.gguf", NULL, out, sizeof out, &err) == CELER_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "nope.gguf") != NULL);
    CHECK(celer_model_resolve("./x/y/z.gguf", NULL, out, sizeof out, &err) == CELER_ERR_NOT_FOUND);
    CHECK(celer_model_resolve("", NULL, out, sizeof out, &err) == CELER_ERR_INVALID_ARG);
    CHECK(celer_model_resolve(NULL, NULL, out, sizeof out, &err) == CELER_ERR_INVALID_ARG);
    /* A spec without a cache to put it in. */
    CHECK(celer_model_resolve(HUB_SPEC " " HUB_FILE, NULL, out, sizeof out, &err) ==
          CELER_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------- loopback downloads */

TEST(pull_hub_redirect) {
    server s;
    if (!server_start(&s, "hub")) return;
    char ep[128], path[4096], want[4096];
    celer_pull_params p = params_for("hub", &s, "/_redirect", ep, sizeof ep);
    progress_log prog = {0};
    p.progress = on_progress;
    p.progress_user = &prog;
    celer_error err = {0};
    celer_status st = celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err);
    CHECKF(st == CELER_OK, "%s", err.message);
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
    CHECKF(!strcmp(path, want), "%s", path);
    CHECK(same_as_model(path));
    CHECK(!test_file_exists(part_of(path)));
    CHECK(prog.calls > 0 && prog.last_done == MODEL_SIZE && prog.last_total == MODEL_SIZE);
    CHECK(!prog.went_back);
    CHECK_EQ_INT(log_lines(&s), 2); /* the /resolve/ redirect, then the CDN */
    CHECK(log_has(&s, "/cdn/" HUB_FILE));

    /* Cached: a second pull (any spec form) touches no network. */
    p.progress = NULL;
    CHECK(celer_pull(HUB_SPEC "/" HUB_FILE, NULL, &p, path, sizeof path, &err) == CELER_OK);
    CHECK(!strcmp(path, want));
    CHECK(celer_model_resolve(HUB_SPEC " " HUB_FILE, &p, path, sizeof path, &err) == CELER_OK);
    CHECK(!strcmp(path, want));
    CHECK_EQ_INT(log_lines(&s), 2);
    /* With an explicit digest the cached file is checked, still without network. */
    p.sha256 = MODEL_SHA;
    CHECK(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK);
    CHECK_EQ_INT(log_lines(&s), 2);
    /* --force downloads again. */
    p.sha256 = NULL;
    p.force = true;
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK_EQ_INT(log_lines(&s), 4);
    CHECK(same_as_model(path));
    server_stop(&s);
}

TEST(pull_url_and_resolve) {
    server s;
    if (!server_start(&s, "url")) return;
    char ep[128], url[256], path[4096];
    celer_pull_params p = params_for("url", &s, "", ep, sizeof ep);
    snprintf(url, sizeof url, "%s/files/stories260K.gguf", s.base);
    celer_error err = {0};
    CHECKF(celer_pull(url, NULL, &p, path, sizeof path, &err) == CELER_OK, "%s", err.message);
    CHECK(same_as_model(path));
    CHECK(strstr(path, "/url/") && strstr(path, "/stories260K.gguf"));
    /* celer_model_resolve pulls a spec on first use. */
    CHECKF(celer_model_resolve(HUB_SPEC " " HUB_FILE, &p, path, sizeof path, &err) == CELER_OK,
           "%s", err.message);
    CHECK(same_as_model(path));
    CHECK_EQ_INT(log_lines(&s), 2);
    server_stop(&s);
}

TEST(pull_resume_in_one_call) {
    server s;
    if (!server_start(&s, "resume1")) return;
    char ep[128], path[4096];
    /* The first response breaks off after 300000 bytes; the retry asks for the rest. */
    celer_pull_params p = params_for("resume1", &s, "/_cut300000", ep, sizeof ep);
    progress_log prog = {0};
    p.progress = on_progress;
    p.progress_user = &prog;
    celer_error err = {0};
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK(same_as_model(path));
    CHECK_EQ_INT(log_lines(&s), 2);
    CHECK(log_has(&s, "bytes=300000-"));
    CHECK(!prog.went_back && prog.last_done == MODEL_SIZE);
    server_stop(&s);
}

TEST(pull_resume_later) {
    server s;
    if (!server_start(&s, "resume2")) return;
    char ep[128], path[4096], want[4096];
    /* Every response breaks off after 300000 bytes and only one retry is allowed: the call
     * fails, keeping 600000 bytes in the part file. */
    celer_pull_params p = params_for("resume2", &s, "/_cutall300000", ep, sizeof ep);
    p.max_retries = 1;
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
    celer_error err = {0};
    celer_status st = celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err);
    CHECK_EQ_INT(st, CELER_ERR_IO);
    CHECKF(strstr(err.message, "interrupted") && strstr(err.message, "resume"), "%s", err.message);
    CHECK(!test_file_exists(want));
    CHECK_EQ_INT(file_size(part_of(want)), 600000);
    CHECK_EQ_INT(log_lines(&s), 2);

    /* A later call, with a healthy server, asks only for the rest. */
    snprintf(ep, sizeof ep, "%s", s.base);
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK(!strcmp(path, want));
    CHECK(same_as_model(path));
    CHECK(!test_file_exists(part_of(want)));
    CHECK_EQ_INT(log_lines(&s), 3);
    CHECK(log_has(&s, "bytes=600000-"));
    server_stop(&s);
}

TEST(pull_wrong_checksum) {
    server s;
    if (!server_start(&s, "badsha")) return;
    char ep[128], path[4096], want[4096];
    celer_pull_params p = params_for("badsha", &s, "/_badsha", ep, sizeof ep);
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
    celer_error err = {0};
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_FORMAT);
    CHECKF(strstr(err.message, "SHA-256 mismatch") && strstr(err.message, "deleted"), "%s",
           err.message);
    CHECK(!test_file_exists(want));
    CHECK(!test_file_exists(part_of(want)));

    /* An explicit digest is checked too (the server's is right here, the user's is not). */
    snprintf(ep, sizeof ep, "%s", s.base);
    p.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_FORMAT);
    CHECK(strstr(err.message, "SHA-256 mismatch") != NULL);
    CHECK(!test_file_exists(want) && !test_file_exists(part_of(want)));
    p.sha256 = "not hex";
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err),
                 CELER_ERR_INVALID_ARG);
    /* The right digest, in capitals, for a plain URL that carries none. */
    char url[256];
    snprintf(url, sizeof url, "%s/files/stories260K.gguf", s.base);
    p.sha256 = "270CBA1BD5109F42D03350F60406024560464DB173C0E387D91F0426D3BD256D";
    CHECKF(celer_pull(url, NULL, &p, path, sizeof path, &err) == CELER_OK, "%s", err.message);
    CHECK(same_as_model(path));
    server_stop(&s);
}

TEST(pull_wrong_size) {
    server s;
    if (!server_start(&s, "size")) return;
    char ep[128], path[4096], want[4096];
    /* The Hub announces one size, the transfer has another: refused and deleted. */
    celer_pull_params p = params_for("size", &s, "/_badsize", ep, sizeof ep);
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
    celer_error err = {0};
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_FORMAT);
    CHECKF(strstr(err.message, "size mismatch"), "%s", err.message);
    CHECK(!test_file_exists(want) && !test_file_exists(part_of(want)));

    /* No Content-Length and a body that stops early looks complete to HTTP; the announced
     * size catches it, and the bytes are kept for a resume. */
    snprintf(ep, sizeof ep, "%s/_nolen500000", s.base);
    p.max_retries = 0;
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_IO);
    CHECKF(strstr(err.message, "500000 of 1185376"), "%s", err.message);
    CHECK_EQ_INT(file_size(part_of(want)), 500000);
    snprintf(ep, sizeof ep, "%s", s.base);
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK(same_as_model(path));
    server_stop(&s);
}

TEST(pull_range_edge_cases) {
    server s;
    if (!server_start(&s, "range")) return;
    char ep[128], path[4096], want[4096];
    celer_pull_params p = params_for("range", &s, "/_norange", ep, sizeof ep);
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/hf/" HUB_SPEC "/tinyllamas", p.cache_dir);
    celer_error err = {0};
    REQUIRE(dl_mkdir_p(dir, &err) == CELER_OK);

    /* A server that ignores Range sends the whole file: the stale part must be replaced. */
    FILE *f = fopen(part_of(want), "wb");
    REQUIRE(f);
    for (int i = 0; i < 1000; i++) fputc('x', f);
    fclose(f);
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK(same_as_model(path));
    CHECK(log_has(&s, "bytes=1000-"));

    /* A complete part file left by a run that stopped before the rename: the server answers
     * 416 and the file is checked and kept. */
    REQUIRE(rename(want, part_of(want)) == 0);
    snprintf(ep, sizeof ep, "%s", s.base);
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK(same_as_model(path));
    CHECK(log_has(&s, "bytes=1185376-"));

    /* A part file longer than the file: started again from zero. */
    REQUIRE(rename(want, part_of(want)) == 0);
    f = fopen(part_of(want), "ab");
    REQUIRE(f);
    fputs("trailing junk", f);
    fclose(f);
    CHECKF(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err) == CELER_OK, "%s",
           err.message);
    CHECK(same_as_model(path));
    server_stop(&s);
}

TEST(pull_not_found) {
    server s;
    if (!server_start(&s, "404")) return;
    char ep[128], path[4096], want[4096];
    celer_pull_params p = params_for("404", &s, "/_redirect", ep, sizeof ep);
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/nothere.gguf", p.cache_dir);
    celer_error err = {0};
    CHECK_EQ_INT(celer_pull(HUB_SPEC, "nothere.gguf", &p, path, sizeof path, &err),
                 CELER_ERR_NOT_FOUND);
    CHECKF(strstr(err.message, "404") && strstr(err.message, "nothere.gguf"), "%s", err.message);
    CHECK(!test_file_exists(want) && !test_file_exists(part_of(want)));
    server_stop(&s);
}

TEST(pull_offline) {
    /* A loopback port nobody listens on: connection refused, at once. */
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    REQUIRE(bind(sock, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(getsockname(sock, (struct sockaddr *)&a, &alen) == 0);
    close(sock);
    char ep[128], path[4096];
    celer_pull_params p = params_for("offline", NULL, "", ep, sizeof ep);
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
    celer_error err = {0};
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_IO);
    CHECKF(strstr(err.message, "cannot connect") && strstr(err.message, "offline"), "%s",
           err.message);
    char want[4096];
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
    CHECK(!test_file_exists(part_of(want)));
}

TEST(pull_disk_errors) {
    server s;
    if (!server_start(&s, "disk")) return;
    char ep[128], path[4096], want[4096];
    celer_error err = {0};

    /* The cache directory cannot be made: a file is in the way. */
    celer_pull_params p = params_for("disk-file", &s, "", ep, sizeof ep);
    FILE *f = fopen(p.cache_dir, "w");
    REQUIRE(f);
    fclose(f);
    CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_IO);
    CHECKF(strstr(err.message, "cannot create directory"), "%s", err.message);

    /* The disk fills up during the transfer: the part file is /dev/full. */
    if (test_file_exists("/dev/full")) {
        p = params_for("disk-full", &s, "", ep, sizeof ep);
        snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE, p.cache_dir);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/hf/" HUB_SPEC "/tinyllamas", p.cache_dir);
        REQUIRE(dl_mkdir_p(dir, &err) == CELER_OK);
        REQUIRE(symlink("/dev/full", part_of(want)) == 0);
        CHECK_EQ_INT(celer_pull(HUB_SPEC, HUB_FILE, &p, path, sizeof path, &err), CELER_ERR_IO);
        CHECKF(strstr(err.message, "cannot write") && strstr(err.message, strerror(ENOSPC)), "%s",
               err.message);
        CHECK(!test_file_exists(want));
        unlink(part_of(want));
    }
    server_stop(&s);
}

TEST(pull_cli) {
    const char *bin = test_celer_bin();
    if (!test_file_exists(bin)) {
        test_skip("%s not built", bin);
        return;
    }
    server s;
    if (!server_start(&s, "cli")) return;
    char cmd[4096], want[4096];
    char *out = NULL;
    const char *cache = cache_dir("cli");
    snprintf(want, sizeof want, "%s/hf/" HUB_SPEC "/" HUB_FILE "\n", cache);

    snprintf(cmd, sizeof cmd, "%s pull " HUB_SPEC " " HUB_FILE " --endpoint %s/_redirect --cache-dir %s",
             bin, s.base, cache);
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    CHECKF(out && !strcmp(out, want), "stdout: %s", out ? out : "");
    free(out);
    want[strlen(want) - 1] = 0;
    CHECK(same_as_model(want));

    /* The environment picks the endpoint and the cache; --progress draws the bar. */
    snprintf(cmd, sizeof cmd,
             "CELER_HF_ENDPOINT=%s CELER_CACHE=%s %s pull " HUB_SPEC "/" HUB_FILE
             " --force --progress 2>&1 >/dev/null",
             s.base, cache, bin);
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    CHECKF(out && strstr(out, "100%"), "stderr: %s", out ? out : "");
    free(out);

    snprintf(cmd, sizeof cmd, "%s pull " HUB_SPEC " missing.gguf --endpoint %s --cache-dir %s", bin,
             s.base, cache);
    CHECK(test_run_cmd(cmd, &out, true) != 0);
    CHECKF(out && strstr(out, "404"), "output: %s", out ? out : "");
    free(out);

    snprintf(cmd, sizeof cmd, "%s pull --cache-dir %s", bin, cache);
    CHECK(test_run_cmd(cmd, &out, true) != 0);
    CHECK(out && strstr(out, "usage"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s pull " HUB_SPEC " " HUB_FILE " --sha256 bad --cache-dir %s", bin,
             cache);
    CHECK(test_run_cmd(cmd, &out, true) != 0);
    CHECK(out && strstr(out, "SHA-256"));
    free(out);
    server_stop(&s);
}
