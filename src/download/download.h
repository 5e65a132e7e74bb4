/*
 * Model downloads (`celer pull`): internal pieces shared by download.c, spec.c and the tests.
 *
 * A spec names a file to fetch:
 *   - an http:// or https:// URL;
 *   - a Hugging Face repository and a path in it, as two strings ("owner/repo",
 *     "dir/model.gguf"), as one string with a space ("owner/repo dir/model.gguf") or as one
 *     path ("owner/repo/dir/model.gguf": the first two components name the repository).
 * A repository file is fetched from ENDPOINT/owner/repo/resolve/main/PATH and cached at
 * CACHE/hf/owner/repo/PATH; a URL is cached at CACHE/url/<16 hex of its SHA-256>/<base name>,
 * so two URLs never share a file and no part of a URL can climb out of the cache.
 */
#ifndef CELER_DOWNLOAD_H
#define CELER_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "celer.h"

#define DL_DEFAULT_ENDPOINT "https://huggingface.co"
#define DL_SHA256_HEX 65 /* 64 digits + NUL */

typedef struct dl_target {
    char url[4096];
    char path[4096];     /* final location in the cache */
    bool is_repo_file;   /* a Hugging Face repository file (its ETag may be a SHA-256) */
} dl_target;

/* Maps spec (+ optional file) to a URL and a cache path. No I/O. */
celer_status dl_resolve(const char *spec, const char *file, const char *endpoint,
                        const char *cache_dir, dl_target *out, celer_error *err);

/* True if s looks like something dl_resolve accepts (a URL or owner/repo[/ ]path), judged
 * by shape alone; used to tell a missing local file from a spec. */
bool dl_looks_like_spec(const char *s);

/* SHA-256 of a buffer / a whole file as 64 lowercase hex digits. */
void dl_sha256_hex(const void *data, size_t len, char out[DL_SHA256_HEX]);
celer_status dl_sha256_file(const char *path, char out[DL_SHA256_HEX], celer_error *err);

/* Copies a 64-hex-digit digest (optionally in quotes, optionally prefixed W/) into out in
 * lowercase; false if s is not exactly that. */
bool dl_parse_sha256(const char *s, size_t len, char out[DL_SHA256_HEX]);

/* Creates a directory and its parents (like mkdir -p). */
celer_status dl_mkdir_p(const char *dir, celer_error *err);

#endif
