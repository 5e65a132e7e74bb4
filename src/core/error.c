#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *celer_status_str(celer_status status) {
    switch (status) {
    case CELER_OK: return "ok";
    case CELER_ERR_INVALID_ARG: return "invalid argument";
    case CELER_ERR_IO: return "I/O error";
    case CELER_ERR_FORMAT: return "malformed file";
    case CELER_ERR_UNSUPPORTED: return "unsupported";
    case CELER_ERR_NOMEM: return "out of memory";
    case CELER_ERR_CONTEXT_FULL: return "context full";
    case CELER_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case CELER_ERR_NOT_FOUND: return "not found";
    case CELER_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

celer_status celer_fail(celer_error *err, celer_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

celer_status celer_fail_prefix(celer_error *err, const char *fmt, ...) {
    if (!err) return CELER_ERR_INTERNAL;
    char prefix[256], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation of an over-long message is acceptable; keep the start, which names the file. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t rest = sizeof err->message - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(err->message + n + 2, old, m);
    err->message[n + 2 + m] = 0;
    return err->status;
}
