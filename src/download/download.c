/* celer_pull and celer_model_resolve: fetch a model file over HTTP(S) with libcurl into the
 * cache, resuming partial downloads and checking size and SHA-256 before the file is renamed
 * into place. Only one process at a time works on a given file (flock on PATH.part). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "download/download.h"

celer_pull_params celer_pull_default_params(void) {
    celer_pull_params p;
    memset(&p, 0, sizeof p);
    p.max_retries = 3;
    p.connect_timeout_s = 15;
    p.stall_timeout_s = 60;
    return p;
}

celer_status celer_pull_locate(const char *spec, const char *file, const celer_pull_params *params,
                               char *url, size_t url_cap, char *path, size_t path_cap,
                               celer_error *err) {
    celer_pull_params p = params ? *params : celer_pull_default_params();
    dl_target *t = malloc(sizeof *t);
    if (!t) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    celer_status st = dl_resolve(spec, file, p.endpoint, p.cache_dir, t, err);
    if (st == CELER_OK && url) {
        if (strlen(t->url) >= url_cap)
            st = celer_fail(err, CELER_ERR_BUFFER_TOO_SMALL, "URL needs %zu bytes",
                            strlen(t->url) + 1);
        else
            strcpy(url, t->url);
    }
    if (st == CELER_OK && path) {
        if (strlen(t->path) >= path_cap)
            st = celer_fail(err, CELER_ERR_BUFFER_TOO_SMALL, "path needs %zu bytes",
                            strlen(t->path) + 1);
        else
            strcpy(path, t->path);
    }
    free(t);
    return st;
}

/* ---------------------------------------------------------------- one transfer */

typedef struct xfer {
    CURL *curl;
    const char *url;
    const char *part;
    int fd;
    EVP_MD_CTX *sha;           /* SHA-256 of bytes 0..have of the part file */
    int64_t have;              /* bytes in the part file */
    int64_t start;             /* bytes there when the current request was made */
    /* Headers of the response being received; reset at each status line (redirects). */
    int n_responses;
    long status;
    int64_t content_length;
    int64_t range_first, range_total;
    /* Headers kept across responses: Hugging Face puts them on the redirect. */
    char linked_sha[DL_SHA256_HEX];
    char etag_sha[DL_SHA256_HEX];
    int64_t linked_size;
    /* Body of the final response. */
    bool body_started, discard, bad_range;
    int write_errno;
    int64_t total;             /* expected total once known, else -1 */
    bool restarted;            /* the part file was emptied during this attempt */
    celer_pull_progress_fn progress;
    void *progress_user;
    double last_report;
} xfer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(xfer *x, bool final) {
    if (!x->progress) return;
    double t = now_s();
    if (!final && t - x->last_report < 0.1) return;
    x->last_report = t;
    x->progress(x->progress_user, x->have, x->total >= 0 ? x->total : x->linked_size);
}

/* Parses a whole non-negative decimal; -1 on anything else. */
static int64_t parse_size(const char *s, size_t n) {
    if (n == 0 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "bytes FIRST-LAST/TOTAL" or "bytes * /TOTAL" (without the space). */
static void parse_content_range(xfer *x, const char *v, size_t n) {
    if (n < 6 || strncasecmp(v, "bytes ", 6) != 0) return;
    v += 6, n -= 6;
    const char *slash = memchr(v, '/', n);
    if (!slash) return;
    x->range_total = parse_size(slash + 1, n - (size_t)(slash + 1 - v));
    const char *dash = memchr(v, '-', (size_t)(slash - v));
    if (dash) x->range_first = parse_size(v, (size_t)(dash - v));
}

static bool header_is(const char *name, size_t n, const char *want) {
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t len = size * nmemb, l = len;
    while (l > 0 && (data[l - 1] == '\r' || data[l - 1] == '\n')) l--;
    if (l >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', l);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->n_responses++;
        x->content_length = x->range_first = x->range_total = -1;
        return len;
    }
    const char *colon = memchr(data, ':', l);
    if (!colon) return len;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vn = l - name_len - 1;
    while (vn > 0 && (*v == ' ' || *v == '\t')) v++, vn--;
    if (header_is(data, name_len, "content-length")) {
        x->content_length = parse_size(v, vn);
    } else if (header_is(data, name_len, "content-range")) {
        parse_content_range(x, v, vn);
    } else if (header_is(data, name_len, "x-linked-etag")) {
        dl_parse_sha256(v, vn, x->linked_sha);
    } else if (header_is(data, name_len, "x-linked-size")) {
        x->linked_size = parse_size(v, vn);
    } else if (header_is(data, name_len, "etag") && x->n_responses == 1) {
        /* Only the repository server's own ETag can be a SHA-256; a CDN's is something else. */
        dl_parse_sha256(v, vn, x->etag_sha);
    }
    return len;
}

/* Empties the part file: the server sent the whole file instead of the range asked for. */
static bool restart_from_zero(xfer *x) {
    if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
        x->write_errno = errno;
        return false;
    }
    EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL);
    x->have = x->start = 0;
    x->restarted = true;
    return true;
}

/* Decides, at the first byte of the final response's body, where the body goes. */
static bool begin_body(xfer *x) {
    x->body_started = true;
    if (x->status == 206) {
        if (x->range_first != x->start) {
            x->bad_range = true;
            return false;
        }
        if (x->range_total >= 0) x->total = x->range_total;
        else if (x->content_length >= 0) x->total = x->start + x->content_length;
    } else if (x->status == 200) {
        if (x->start > 0 && !restart_from_zero(x)) return false;
        x->total = x->content_length;
    } else {
        x->discard = true; /* an error page */
    }
    return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t len = size * nmemb;
    if (!x->body_started && !begin_body(x)) return 0;
    if (x->discard) return len;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            x->write_errno = w < 0 ? errno : EIO;
            return 0;
        }
        off += (size_t)w;
    }
    EVP_DigestUpdate(x->sha, data, len);
    x->have += (int64_t)len;
    report(x, false);
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    report(user, false);
    return 0;
}

typedef enum { ATTEMPT_DONE, ATTEMPT_RETRY, ATTEMPT_FAIL, ATTEMPT_FAIL_DELETE } attempt_result;

/* Host name of a URL, for messages. */
static void url_host(const char *url, char *out, size_t cap) {
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/?#");
    if (n >= cap) n = cap - 1;
    memcpy(out, h, n);
    out[n] = 0;
}

static const char *size_str(int64_t n, char *buf, size_t cap) {
    if (n < 0) snprintf(buf, cap, "an unknown number of");
    else snprintf(buf, cap, "%lld", (long long)n);
    return buf;
}

static attempt_result classify_http(xfer *x, celer_error *err) {
    long code = x->status;
    char a[32];
    if (code == 200 || code == 206) {
        int64_t expect = x->total >= 0 ? x->total : x->linked_size;
        if (x->total >= 0 && x->linked_size >= 0 && x->total != x->linked_size) {
            celer_fail(err, CELER_ERR_FORMAT,
                       "size mismatch: %s announces %lld bytes (X-Linked-Size) but sends %lld",
                       x->url, (long long)x->linked_size, (long long)x->total);
            return ATTEMPT_FAIL_DELETE;
        }
        if (expect >= 0 && x->have > expect) {
            celer_fail(err, CELER_ERR_FORMAT, "size mismatch: got %lld bytes from %s, expected %lld",
                       (long long)x->have, x->url, (long long)expect);
            return ATTEMPT_FAIL_DELETE;
        }
        if (expect >= 0 && x->have < expect) {
            celer_fail(err, CELER_ERR_IO,
                       "transfer interrupted: the connection closed after %lld of %lld bytes",
                       (long long)x->have, (long long)expect);
            return ATTEMPT_RETRY;
        }
        return ATTEMPT_DONE;
    }
    if (code == 416) {
        /* Nothing left to send: either the part file is already complete (an earlier run
         * stopped before the rename) or it is longer than the file. */
        if (x->range_total >= 0 && x->have == x->range_total) {
            x->total = x->range_total;
            return ATTEMPT_DONE;
        }
        if (x->have > 0 && restart_from_zero(x)) {
            celer_fail(err, CELER_ERR_IO, "server refused to resume at byte %lld of %s bytes",
                       (long long)x->start, size_str(x->range_total, a, sizeof a));
            return ATTEMPT_RETRY;
        }
    }
    if (code == 404 || code == 410) {
        celer_fail(err, CELER_ERR_NOT_FOUND,
                   "HTTP %ld: %s not found (check the repository and file name)", code, x->url);
        return ATTEMPT_FAIL;
    }
    if (code == 401 || code == 403) {
        celer_fail(err, CELER_ERR_IO,
                   "HTTP %ld: access to %s denied (a gated or private repository needs a token)",
                   code, x->url);
        return ATTEMPT_FAIL;
    }
    if (code == 429) {
        celer_fail(err, CELER_ERR_IO, "HTTP 429: %s is rate limiting requests; try again later",
                   x->url);
        return ATTEMPT_FAIL;
    }
    celer_fail(err, CELER_ERR_IO, "HTTP %ld from %s%s", code, x->url,
               code >= 500 ? " (server error; try again later)" : "");
    return code >= 500 ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

static attempt_result classify_curl(xfer *x, CURLcode rc, const char *curl_msg,
                                    celer_error *err) {
    char host[256], a[32], b[32];
    char *eff = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff);
    url_host(eff ? eff : x->url, host, sizeof host);
    const char *detail = curl_msg[0] ? curl_msg : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_WRITE_ERROR:
        if (x->bad_range) {
            celer_fail(err, CELER_ERR_IO, "%s answered a resume request with the wrong range",
                       host);
            return ATTEMPT_FAIL_DELETE;
        }
        celer_fail(err, CELER_ERR_IO, "cannot write %s: %s", x->part,
                   strerror(x->write_errno ? x->write_errno : EIO));
        return ATTEMPT_FAIL;
    case CURLE_COULDNT_RESOLVE_HOST:
        celer_fail(err, CELER_ERR_IO,
                   "cannot resolve host '%s': no network connection? (%s)", host, detail);
        return ATTEMPT_FAIL;
    case CURLE_COULDNT_RESOLVE_PROXY:
        celer_fail(err, CELER_ERR_IO, "cannot resolve the proxy: %s", detail);
        return ATTEMPT_FAIL;
    case CURLE_COULDNT_CONNECT:
        celer_fail(err, CELER_ERR_IO,
                   "cannot connect to %s: connection refused or no route (offline?) (%s)", host,
                   detail);
        return ATTEMPT_FAIL;
    case CURLE_OPERATION_TIMEDOUT:
        celer_fail(err, CELER_ERR_IO, "timed out talking to %s after %lld of %s bytes (%s)", host,
                   (long long)x->have, size_str(x->total, a, sizeof a), detail);
        return x->body_started ? ATTEMPT_RETRY : ATTEMPT_FAIL;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        celer_fail(err, CELER_ERR_IO, "transfer interrupted after %s of %s bytes (%s)",
                   size_str(x->have, b, sizeof b), size_str(x->total, a, sizeof a), detail);
        return ATTEMPT_RETRY;
    case CURLE_TOO_MANY_REDIRECTS:
        celer_fail(err, CELER_ERR_IO, "too many redirects fetching %s", x->url);
        return ATTEMPT_FAIL;
    case CURLE_UNSUPPORTED_PROTOCOL:
        celer_fail(err, CELER_ERR_INVALID_ARG, "unsupported protocol in %s (%s)",
                   eff ? eff : x->url, detail);
        return ATTEMPT_FAIL;
    default:
        celer_fail(err, CELER_ERR_IO, "downloading from %s failed: %s", host, detail);
        return ATTEMPT_FAIL;
    }
}

/* One HTTP request for bytes have.. of the file. */
static attempt_result attempt(xfer *x, celer_error *err) {
    char range[48], curl_msg[CURL_ERROR_SIZE];
    curl_msg[0] = 0;
    x->start = x->have;
    x->n_responses = 0;
    x->status = 0;
    x->content_length = x->range_first = x->range_total = -1;
    x->body_started = x->discard = x->bad_range = x->restarted = false;
    x->write_errno = 0;
    if (lseek(x->fd, x->have, SEEK_SET) < 0) {
        celer_fail(err, CELER_ERR_IO, "cannot seek in %s: %s", x->part, strerror(errno));
        return ATTEMPT_FAIL;
    }
    snprintf(range, sizeof range, "%lld-", (long long)x->have);
    curl_easy_setopt(x->curl, CURLOPT_RANGE, x->have > 0 ? range : NULL);
    curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, curl_msg);
    CURLcode rc = curl_easy_perform(x->curl);
    curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, NULL);
    if (rc == CURLE_OK && !x->body_started && (x->status == 200 || x->status == 206) &&
        !begin_body(x))
        rc = CURLE_WRITE_ERROR; /* an empty body still decides what the part file holds */
    attempt_result r = rc == CURLE_OK ? classify_http(x, err) : classify_curl(x, rc, curl_msg, err);
    report(x, false);
    return r;
}

/* Feeds the first n bytes of fd (the part file from an earlier run) into the hash. */
static celer_status hash_existing(xfer *x, int64_t n, celer_error *err) {
    unsigned char *buf = malloc(1 << 20);
    if (!buf) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    int64_t off = 0;
    while (off < n) {
        size_t want = (size_t)(n - off < (1 << 20) ? n - off : (1 << 20));
        ssize_t got = pread(x->fd, buf, want, off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            free(buf);
            return celer_fail(err, CELER_ERR_IO, "reading %s: %s", x->part,
                              got < 0 ? strerror(errno) : "unexpected end of file");
        }
        EVP_DigestUpdate(x->sha, buf, (size_t)got);
        off += got;
    }
    free(buf);
    return CELER_OK;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static CURL *make_handle(xfer *x, const celer_pull_params *p, struct curl_slist **headers) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "celer/0.1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(p->connect_timeout_s > 0 ? p->connect_timeout_s : 15));
    /* No overall timeout (models are big); give up only when the transfer stalls. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(p->stall_timeout_s > 0 ? p->stall_timeout_s : 60));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (p->token && *p->token) {
        /* curl drops this header when a redirect leaves the host, so the CDN never sees it. */
        size_t n = strlen(p->token) + 32;
        char *h = malloc(n);
        if (!h) {
            curl_easy_cleanup(c);
            return NULL;
        }
        snprintf(h, n, "Authorization: Bearer %s", p->token);
        *headers = curl_slist_append(NULL, h);
        free(h);
        if (!*headers) {
            curl_easy_cleanup(c);
            return NULL;
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    }
    return c;
}

/* ---------------------------------------------------------------- celer_pull */

static bool is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}


static celer_status copy_out(const char *path, char *out, size_t cap, celer_error *err) {
    size_t n = strlen(path);
    if (!out || n >= cap)
        return celer_fail(err, CELER_ERR_BUFFER_TOO_SMALL, "path %s needs %zu bytes", path, n + 1);
    memcpy(out, path, n + 1);
    return CELER_OK;
}

/* Downloads t->url into t->path; the lock, the part file and the hash are set up here. */
static celer_status download(const dl_target *t, const celer_pull_params *p,
                             const char *want_sha, celer_error *err) {
    char part[sizeof t->path + 8];
    snprintf(part, sizeof part, "%s.part", t->path);
    char dir[sizeof t->path];
    snprintf(dir, sizeof dir, "%s", t->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        celer_status st = dl_mkdir_p(dir, err);
        if (st) return st;
    }

    xfer x;
    memset(&x, 0, sizeof x);
    x.url = t->url;
    x.part = part;
    x.total = x.linked_size = -1;
    x.progress = p->progress;
    x.progress_user = p->progress_user;
    x.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x.fd < 0) return celer_fail(err, CELER_ERR_IO, "cannot create %s: %s", part, strerror(errno));
    if (flock(x.fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(x.fd);
        if (e == EWOULDBLOCK)
            return celer_fail(err, CELER_ERR_IO,
                              "another process is downloading %s (it holds the lock on %s)",
                              t->path, part);
        return celer_fail(err, CELER_ERR_IO, "cannot lock %s: %s", part, strerror(e));
    }

    celer_status st = CELER_OK;
    struct curl_slist *headers = NULL;
    bool delete_part = false;
    struct stat sb;
    if (fstat(x.fd, &sb) != 0) {
        st = celer_fail(err, CELER_ERR_IO, "cannot stat %s: %s", part, strerror(errno));
        goto done;
    }
    if (!p->force && !want_sha && is_regular_file(t->path)) {
        /* Another process finished this file just before we opened the part: use it. */
        if (sb.st_size == 0) unlink(part);
        goto done;
    }
    x.have = S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : 0;
    x.sha = EVP_MD_CTX_new();
    if (!x.sha || !EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL)) {
        st = celer_fail(err, CELER_ERR_NOMEM, "cannot start SHA-256");
        goto done;
    }
    if (p->force && x.have > 0 && ftruncate(x.fd, 0) == 0) x.have = 0;
    if (x.have > 0 && (st = hash_existing(&x, x.have, err)) != CELER_OK) goto done;
    bool resumed = x.have > 0; /* a stale part of another version fails the digest check */

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        st = celer_fail(err, CELER_ERR_INTERNAL, "libcurl initialisation failed: %s",
                        curl_easy_strerror(curl_init_rc));
        goto done;
    }
    x.curl = make_handle(&x, p, &headers);
    if (!x.curl) {
        st = celer_fail(err, CELER_ERR_NOMEM, "cannot create a libcurl handle");
        goto done;
    }

    int32_t retries = p->max_retries > 0 ? p->max_retries : 0;
    for (int32_t i = 0;; i++) {
        int64_t before = x.have;
        attempt_result r = attempt(&x, err);
        if (r == ATTEMPT_DONE) break;
        if (r == ATTEMPT_FAIL_DELETE) delete_part = true;
        bool progressed = x.have > before || x.restarted;
        if (r != ATTEMPT_RETRY || i >= retries || !progressed) {
            st = celer_fail_prefix(err, "downloading %s", t->url);
            if (r == ATTEMPT_RETRY && x.have > 0) {
                /* Say what survives, so the user knows a rerun is cheap. */
                size_t used = strlen(err->message);
                snprintf(err->message + used, sizeof err->message - used,
                         "; the %lld bytes so far are kept in %s: run again to resume",
                         (long long)x.have, part);
            }
            goto done;
        }
    }
    report(&x, true);

    /* Every byte is on disk: check the digest, then make the file visible atomically. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdn = 0;
    char got[DL_SHA256_HEX] = "";
    if (EVP_DigestFinal_ex(x.sha, md, &mdn) && mdn == 32) {
        static const char hex[] = "0123456789abcdef";
        for (unsigned i = 0; i < 32; i++) {
            got[2 * i] = hex[md[i] >> 4];
            got[2 * i + 1] = hex[md[i] & 15];
        }
        got[64] = 0;
    }
    const char *expect = want_sha ? want_sha
                         : x.linked_sha[0] ? x.linked_sha
                         : (t->is_repo_file && x.etag_sha[0]) ? x.etag_sha
                                                              : NULL;
    if (expect && strcmp(expect, got) != 0) {
        delete_part = true;
        st = celer_fail(err, CELER_ERR_FORMAT,
                        "SHA-256 mismatch for %s: expected %s%s, got %s; the download was "
                        "deleted%s",
                        t->url, expect, want_sha ? "" : " (from the server)", got,
                        resumed ? " (it had resumed an older partial file: run again to fetch "
                                  "it afresh)"
                                : "");
        goto done;
    }
    if (fsync(x.fd) != 0) {
        st = celer_fail(err, CELER_ERR_IO, "cannot write %s: %s", part, strerror(errno));
        goto done;
    }
    if (rename(part, t->path) != 0) {
        st = celer_fail(err, CELER_ERR_IO, "cannot rename %s to %s: %s", part, t->path,
                        strerror(errno));
        goto done;
    }

done:
    /* An empty part file is of no use to a later resume; a bad one must not be resumed. */
    if (st != CELER_OK && (delete_part || x.have == 0)) unlink(part);
    if (x.curl) curl_easy_cleanup(x.curl);
    curl_slist_free_all(headers);
    EVP_MD_CTX_free(x.sha);
    close(x.fd);
    return st;
}

celer_status celer_pull(const char *spec, const char *file, const celer_pull_params *params,
                        char *out_path, size_t cap, celer_error *err) {
    celer_error local;
    if (!err) err = &local; /* celer_fail_prefix needs a message to prefix */
    celer_pull_params p = params ? *params : celer_pull_default_params();
    char want_sha[DL_SHA256_HEX];
    if (p.sha256 && !dl_parse_sha256(p.sha256, strlen(p.sha256), want_sha))
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "expected SHA-256 '%s' is not 64 hexadecimal digits", p.sha256);
    dl_target *t = malloc(sizeof *t);
    if (!t) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    celer_status st = dl_resolve(spec, file, p.endpoint, p.cache_dir, t, err);
    if (st) goto done;
    if (!out_path || strlen(t->path) >= cap) {
        st = celer_fail(err, CELER_ERR_BUFFER_TOO_SMALL, "path %s needs %zu bytes", t->path,
                        strlen(t->path) + 1);
        goto done;
    }

    bool cached = !p.force && is_regular_file(t->path);
    if (cached && p.sha256) {
        /* Asked for a digest: a cached file that does not match it is fetched again. */
        char got[DL_SHA256_HEX];
        st = dl_sha256_file(t->path, got, err);
        if (st) goto done;
        cached = strcmp(got, want_sha) == 0;
    }
    if (!cached) {
        st = download(t, &p, p.sha256 ? want_sha : NULL, err);
        if (st) goto done;
    }
    st = copy_out(t->path, out_path, cap, err);
done:
    free(t);
    return st;
}

celer_status celer_model_resolve(const char *arg, const celer_pull_params *params,
                                 char *out_path, size_t cap, celer_error *err) {
    if (!arg || !*arg) return celer_fail(err, CELER_ERR_INVALID_ARG, "no model given");
    struct stat st;
    if (stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "%s is a directory, not a model file",
                              arg);
        return copy_out(arg, out_path, cap, err);
    }
    if (!dl_looks_like_spec(arg))
        return celer_fail(err, CELER_ERR_NOT_FOUND,
                          "no such model file: %s (to download one, give an http(s) URL or a "
                          "Hugging Face 'owner/repo path/to/file.gguf')",
                          arg);
    if (!params || !params->cache_dir)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "%s is not a local file, and no download cache was given to pull it",
                          arg);
    return celer_pull(arg, NULL, params, out_path, cap, err);
}
