/* celer pull SPEC [FILE]: download a model into the cache and print its path. Also the
 * environment-reading half of model resolution (cli_resolve_model) used by `celer run -m`:
 * the library never reads the environment, so the cache directory, endpoint and token are
 * chosen here. */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage_text[] =
    "usage: celer pull SPEC [FILE] [options]\n"
    "Downloads a model into the cache (if it is not there yet) and prints its path.\n"
    "  SPEC               an http(s) URL, or a Hugging Face repository 'owner/repo' followed by\n"
    "                     FILE, the path of a file in it (also 'owner/repo/path/file.gguf')\n"
    "  --cache-dir DIR    cache root (default $CELER_CACHE, else $XDG_CACHE_HOME/celer,\n"
    "                     else ~/.cache/celer)\n"
    "  --sha256 HEX       expected SHA-256; without it the server's digest is checked when it\n"
    "                     sends one (Hugging Face LFS files do)\n"
    "  --endpoint URL     Hugging Face endpoint (default $CELER_HF_ENDPOINT, else $HF_ENDPOINT,\n"
    "                     else https://huggingface.co); $HF_TOKEN is sent for gated repos\n"
    "  --retries N        resume an interrupted transfer up to N times (default 3)\n"
    "  --force            download again even if the file is cached\n"
    "  --progress         draw the progress bar even when stderr is not a terminal\n"
    "  --no-progress      never draw it\n"
    "example: celer pull ggml-org/models tinyllamas/stories260K.gguf\n";

/* ---------------------------------------------------------------- environment */

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $CELER_CACHE, else $XDG_CACHE_HOME/celer (absolute only, as the XDG spec says), else
 * $HOME/.cache/celer. */
static bool default_cache_dir(char *buf, size_t cap) {
    const char *v = env("CELER_CACHE");
    if (v) return (size_t)snprintf(buf, cap, "%s", v) < cap;
    v = env("XDG_CACHE_HOME");
    if (v && v[0] == '/') return (size_t)snprintf(buf, cap, "%s/celer", v) < cap;
    v = env("HOME");
    if (!v) {
        struct passwd *pw = getpwuid(getuid());
        v = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    if (!v) return false;
    return (size_t)snprintf(buf, cap, "%s/.cache/celer", v) < cap;
}

static const char *default_endpoint(void) {
    const char *v = env("CELER_HF_ENDPOINT");
    return v ? v : env("HF_ENDPOINT");
}

/* ---------------------------------------------------------------- progress bar */

typedef struct bar {
    double t0;
    int64_t first; /* bytes already there at the first call (a resumed download) */
    bool started, drawn;
} bar;

static void human(double bytes, char *buf, size_t cap) {
    if (bytes >= 1024.0 * 1024 * 1024) snprintf(buf, cap, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024) snprintf(buf, cap, "%.1f MiB", bytes / (1024.0 * 1024));
    else snprintf(buf, cap, "%.0f KiB", bytes / 1024.0);
}

static void draw_bar(void *user, int64_t done, int64_t total) {
    bar *b = user;
    if (done == 0 && total < 0) return; /* nothing to show before the first response */
    double t = cli_now();
    if (!b->started) {
        b->started = true;
        b->t0 = t;
        b->first = done;
    }
    double dt = t - b->t0;
    double rate = dt > 0 ? (double)(done - b->first) / dt : 0.0;
    char have[32], all[32], speed[32], eta[32] = "";
    human((double)done, have, sizeof have);
    speed[0] = 0;
    if (rate > 0) {
        char r[24];
        human(rate, r, sizeof r);
        snprintf(speed, sizeof speed, "  %s/s", r);
    }
    if (total > 0) {
        const int width = 30;
        int pct = (int)(100.0 * (double)done / (double)total);
        int fill = (int)((double)width * (double)done / (double)total);
        if (fill > width) fill = width;
        char cells[64];
        for (int i = 0; i < width; i++) cells[i] = i < fill ? '#' : '.';
        cells[width] = 0;
        human((double)total, all, sizeof all);
        if (rate > 0 && done < total) {
            long s = (long)((double)(total - done) / rate);
            snprintf(eta, sizeof eta, "  ETA %ld:%02ld", s / 60, s % 60);
        }
        fprintf(stderr, "\r[%s] %3d%%  %s / %s%s%s   ", cells, pct, have, all, speed, eta);
    } else {
        fprintf(stderr, "\r%s%s   ", have, speed);
    }
    b->drawn = true;
    fflush(stderr);
}

static void end_bar(bar *b) {
    if (b->drawn) fputc('\n', stderr);
    b->drawn = false;
}

/* ---------------------------------------------------------------- shared by run -m */

/* Adds a hint the library cannot give: which environment variables change where we look. */
static void print_pull_error(const celer_error *err) {
    cli_error("%s", err->message);
    if (strstr(err->message, "resolve host") || strstr(err->message, "cannot connect"))
        fprintf(stderr, "celer: hint: without a network, give a local .gguf file instead, or set "
                        "HF_ENDPOINT to a reachable mirror\n");
}

bool cli_resolve_model(const char *arg, char *path, size_t cap) {
    char cache[2048];
    celer_pull_params p = celer_pull_default_params();
    bool have_cache = default_cache_dir(cache, sizeof cache);
    p.cache_dir = have_cache ? cache : NULL;
    p.endpoint = default_endpoint();
    p.token = env("HF_TOKEN");
    bar b = {0};
    if (isatty(2)) {
        p.progress = draw_bar;
        p.progress_user = &b;
    }
    celer_error err = {0};
    celer_status st = celer_model_resolve(arg, &p, path, cap, &err);
    end_bar(&b);
    if (st != CELER_OK) {
        print_pull_error(&err);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- celer pull */

int cmd_pull(int argc, char **argv) {
    const char *spec = NULL, *file = NULL, *cache_arg = NULL;
    celer_pull_params p = celer_pull_default_params();
    p.endpoint = default_endpoint();
    p.token = env("HF_TOKEN");
    int progress = isatty(2) ? 1 : 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--cache-dir") && has_val) {
            cache_arg = argv[++i];
        } else if (!strcmp(a, "--sha256") && has_val) {
            p.sha256 = argv[++i];
        } else if (!strcmp(a, "--endpoint") && has_val) {
            p.endpoint = argv[++i];
        } else if (!strcmp(a, "--retries") && has_val) {
            int64_t n;
            if (!cli_parse_i64(argv[++i], &n) || n < 0 || n > 1000)
                return cli_error("--retries wants a whole number from 0 to 1000, got '%s'", argv[i]);
            p.max_retries = (int32_t)n;
        } else if (!strcmp(a, "--force")) {
            p.force = true;
        } else if (!strcmp(a, "--progress")) {
            progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            progress = 0;
        } else if (a[0] == '-' && a[1]) {
            fputs(usage_text, stderr);
            return cli_error("unknown option or missing value: %s", a);
        } else if (!spec) {
            spec = a;
        } else if (!file) {
            file = a;
        } else {
            fputs(usage_text, stderr);
            return cli_error("too many arguments: %s", a);
        }
    }
    if (!spec) {
        fputs(usage_text, stderr);
        return cli_error("missing SPEC: a URL or a Hugging Face 'owner/repo' and file");
    }
    char cache[2048];
    if (cache_arg) {
        p.cache_dir = cache_arg;
    } else {
        if (!default_cache_dir(cache, sizeof cache))
            return cli_error("cannot find a cache directory: set HOME or XDG_CACHE_HOME, or "
                             "pass --cache-dir");
        p.cache_dir = cache;
    }
    bar b = {0};
    if (progress) {
        p.progress = draw_bar;
        p.progress_user = &b;
    }
    char path[4096];
    celer_error err = {0};
    celer_status st = celer_pull(spec, file, &p, path, sizeof path, &err);
    end_bar(&b);
    if (st != CELER_OK) {
        print_pull_error(&err);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}
