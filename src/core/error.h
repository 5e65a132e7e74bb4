/* Error reporting helpers shared by every layer: fill a caller's celer_error (which may be
 * NULL) with a status and a printf-style message, and return the status. */
#ifndef CELER_CORE_ERROR_H
#define CELER_CORE_ERROR_H

#include "celer.h"

#if defined(__GNUC__)
#define CELER_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CELER_PRINTF(a, b)
#endif

/* Sets err (if non-NULL) and returns status, so callers can `return celer_fail(...)`. */
celer_status celer_fail(celer_error *err, celer_status status, const char *fmt, ...)
    CELER_PRINTF(3, 4);

/* Prefixes an existing message in err with more context ("loading X: <old message>"). */
celer_status celer_fail_prefix(celer_error *err, const char *fmt, ...) CELER_PRINTF(2, 3);

#endif
