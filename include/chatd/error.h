/* error.h - how every chatd function reports failure.
 *
 * Functions that can fail return 0 on success and a negative value on failure, and
 * write a human-readable message into a caller-supplied chatd_error (which may be
 * NULL when the caller does not care). Nothing in chatd aborts on bad input. */
#ifndef CHATD_ERROR_H
#define CHATD_ERROR_H

#include <stddef.h>

#define CHATD_ERR_MAX 512

typedef struct chatd_error {
    char msg[CHATD_ERR_MAX]; /* NUL-terminated message, empty when no error */
} chatd_error;

/* Formats a message into err (if non-NULL) and returns -1, so callers can `return
 * chatd_errorf(...)`. */
int chatd_errorf(chatd_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prepends "prefix: " to an existing message in err (if non-NULL); returns -1. */
int chatd_error_prefix(chatd_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
