/* Spec parsing (URL or Hugging Face repository file -> URL + cache path), SHA-256 helpers
 * and mkdir -p for the downloader. Nothing here touches the network. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/error.h"
#include "download/download.h"

#define DL_MAX_NAME 96     /* Hugging Face limits owner and repository names to 96 chars */
#define DL_MAX_REL 1024    /* longest path inside a repository we accept */

static bool has_prefix_ci(const char *s, const char *prefix) {
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_url(const char *s) {
    return has_prefix_ci(s, "http://") || has_prefix_ci(s, "https://");
}

/* An owner or repository name: letters, digits, '.', '_', '-'; never "." or "..". */
static bool valid_name(const char *s, size_t n) {
    if (n == 0 || n > DL_MAX_NAME) return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') return false;
    }
    return true;
}

/* A path inside a repository: components separated by '/', none empty, "." or "..", no
 * control characters or backslashes (so the cache path stays inside the cache). */
static bool valid_rel_path(const char *s, const char **why) {
    size_t n = strlen(s);
    if (n == 0) {
        *why = "it is empty";
        return false;
    }
    if (n > DL_MAX_REL) {
        *why = "it is too long";
        return false;
    }
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            *why = "it has an empty, '.' or '..' component";
            return false;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x20 || c == 0x7f || c == '\\') {
                *why = "it has a control character or a backslash";
                return false;
            }
        }
        if (!e) break;
        p = e + 1;
        if (!*p) {
            *why = "it ends with '/'";
            return false;
        }
    }
    return true;
}

/* Appends s to buf at *pos, percent-encoding everything but unreserved characters and '/'.
 * False if it does not fit. */
static bool append_encoded(char *buf, size_t cap, size_t *pos, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        size_t need = plain ? 1 : 3;
        if (*pos + need >= cap) return false;
        if (plain) {
            buf[(*pos)++] = (char)c;
        } else {
            buf[(*pos)++] = '%';
            buf[(*pos)++] = hex[c >> 4];
            buf[(*pos)++] = hex[c & 15];
        }
    }
    buf[*pos] = 0;
    return true;
}

static celer_status resolve_url(const char *url, const char *cache_dir, dl_target *out,
                                celer_error *err) {
    const char *host = strstr(url, "://") + 3;
    if (!*host || *host == '/' || *host == ':' || *host == '?')
        return celer_fail(err, CELER_ERR_INVALID_ARG, "URL '%s' has no host name", url);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "URL '%s' contains a space or control character (percent-encode it)",
                              url);
    if (strlen(url) >= sizeof out->url)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "URL is too long (%zu bytes)", strlen(url));
    strcpy(out->url, url);

    /* Base name: the last path segment, without query or fragment, made file-name safe. */
    const char *path = strchr(host, '/');
    char base[129] = "";
    if (path) {
        size_t end = strcspn(path, "?#");
        const char *seg = path;
        for (size_t i = 0; i < end; i++)
            if (path[i] == '/') seg = path + i + 1;
        size_t len = (size_t)(path + end - seg), n = 0;
        for (size_t i = 0; i < len && n < sizeof base - 1; i++) {
            unsigned char c = (unsigned char)seg[i];
            base[n++] = (isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+') ? (char)c : '_';
        }
        base[n] = 0;
    }
    if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) strcpy(base, "download");

    char digest[DL_SHA256_HEX];
    dl_sha256_hex(url, strlen(url), digest);
    int n = snprintf(out->path, sizeof out->path, "%s/url/%.16s/%s", cache_dir, digest, base);
    if (n < 0 || (size_t)n >= sizeof out->path)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "cache directory path is too long");
    out->is_repo_file = false;
    return CELER_OK;
}

celer_status dl_resolve(const char *spec, const char *file, const char *endpoint,
                        const char *cache_dir, dl_target *out, celer_error *err) {
    if (!out) return celer_fail(err, CELER_ERR_INVALID_ARG, "dl_resolve: out is NULL");
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return celer_fail(err, CELER_ERR_INVALID_ARG, "empty model spec");
    if (!cache_dir || !*cache_dir)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "no cache directory given for downloads");
    if (file && !*file) file = NULL;

    if (is_url(spec)) {
        if (file)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "a URL takes no separate file name (got '%s' after '%s')", file,
                              spec);
        return resolve_url(spec, cache_dir, out, err);
    }

    /* Split into "owner/repo" and the path inside the repository. */
    char repo[2 * DL_MAX_NAME + 2];
    const char *rel;
    size_t repo_len;
    const char *space = strchr(spec, ' ');
    if (file) {
        repo_len = strlen(spec);
        rel = file;
    } else if (space) {
        repo_len = (size_t)(space - spec);
        rel = space;
        while (*rel == ' ') rel++;
    } else {
        const char *slash1 = strchr(spec, '/');
        const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
        repo_len = slash2 ? (size_t)(slash2 - spec) : strlen(spec);
        rel = slash2 ? slash2 + 1 : "";
    }
    while (*rel == '/') rel++;
    const char *slash = memchr(spec, '/', repo_len);
    if (repo_len >= sizeof repo || !slash || !valid_name(spec, (size_t)(slash - spec)) ||
        !valid_name(slash + 1, repo_len - (size_t)(slash - spec) - 1))
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "'%s' is neither a file, an http(s) URL nor a Hugging Face "
                          "'owner/repo path/to/file.gguf'",
                          spec);
    memcpy(repo, spec, repo_len);
    repo[repo_len] = 0;
    if (!*rel)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "'%s' names a repository but no file in it: add the file's path, e.g. "
                          "'%s model.gguf'",
                          repo, repo);
    const char *why = "";
    if (!valid_rel_path(rel, &why))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "bad file path '%s' in repository %s: %s",
                          rel, repo, why);

    if (!endpoint || !*endpoint) endpoint = DL_DEFAULT_ENDPOINT;
    if (!is_url(endpoint))
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "endpoint '%s' is not an http:// or https:// URL", endpoint);
    size_t ep_len = strlen(endpoint);
    while (ep_len > 0 && endpoint[ep_len - 1] == '/') ep_len--;

    int n = snprintf(out->url, sizeof out->url, "%.*s/%s/resolve/main/", (int)ep_len, endpoint,
                     repo);
    size_t pos = (size_t)n;
    if (n < 0 || pos >= sizeof out->url || !append_encoded(out->url, sizeof out->url, &pos, rel))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "URL for %s %s is too long", repo, rel);
    n = snprintf(out->path, sizeof out->path, "%s/hf/%s/%s", cache_dir, repo, rel);
    if (n < 0 || (size_t)n >= sizeof out->path)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "cache path for %s %s is too long", repo,
                          rel);
    out->is_repo_file = true;
    return CELER_OK;
}

bool dl_looks_like_spec(const char *s) {
    if (!s || !*s) return false;
    if (is_url(s)) return true;
    if (s[0] == '/' || s[0] == '.' || s[0] == '~') return false;
    const char *slash1 = strchr(s, '/');
    if (!slash1 || !valid_name(s, (size_t)(slash1 - s))) return false;
    const char *space = strchr(s, ' ');
    const char *end = strchr(slash1 + 1, '/');
    if (space && (!end || space < end)) end = space;
    if (!end || !valid_name(slash1 + 1, (size_t)(end - slash1 - 1))) return false;
    while (*end == ' ' || *end == '/') end++;
    return *end != 0;
}

/* ---------------------------------------------------------------- SHA-256 */

static void to_hex(const unsigned char *md, unsigned n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = 0;
}

void dl_sha256_hex(const void *data, size_t len, char out[DL_SHA256_HEX]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32) {
        out[0] = 0;
        return;
    }
    to_hex(md, n, out);
}

celer_status dl_sha256_file(const char *path, char out[DL_SHA256_HEX], celer_error *err) {
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return celer_fail(err, CELER_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    celer_status st = CELER_OK;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        st = celer_fail(err, CELER_ERR_NOMEM, "cannot start SHA-256 of %s", path);
        goto done;
    }
    for (;;) {
        ssize_t got = read(fd, buf, cap);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            st = celer_fail(err, CELER_ERR_IO, "reading %s: %s", path, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        EVP_DigestUpdate(ctx, buf, (size_t)got);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_DigestFinal_ex(ctx, md, &n) || n != 32) {
        st = celer_fail(err, CELER_ERR_INTERNAL, "SHA-256 of %s failed", path);
        goto done;
    }
    to_hex(md, n, out);
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return st;
}

bool dl_parse_sha256(const char *s, size_t len, char out[DL_SHA256_HEX]) {
    if (!s) return false;
    while (len > 0 && isspace((unsigned char)s[len - 1])) len--;
    while (len > 0 && isspace((unsigned char)*s)) s++, len--;
    if (len >= 2 && (s[0] == 'W' || s[0] == 'w') && s[1] == '/') s += 2, len -= 2;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') s++, len -= 2;
    if (len != 64) return false;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i])) return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = 0;
    return true;
}

/* ---------------------------------------------------------------- directories */

celer_status dl_mkdir_p(const char *dir, celer_error *err) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "bad directory name '%s'", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return celer_fail(err, CELER_ERR_IO, "cannot create directory %s: %s", buf,
                              strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return celer_fail(err, CELER_ERR_IO, "cannot create directory %s: %s", dir,
                          stat(dir, &st) != 0 ? strerror(errno) : "a file is in the way");
    return CELER_OK;
}
