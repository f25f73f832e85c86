/* error.c - formatting of chatd_error messages (see include/chatd/error.h). */
#include "chatd/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int chatd_errorf(chatd_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int chatd_error_prefix(chatd_error *err, const char *fmt, ...) {
    if (err) {
        char prefix[CHATD_ERR_MAX];
        char old[CHATD_ERR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        /* prefix, then as much of the old message as fits */
        size_t n = strlen(prefix);
        memcpy(err->msg, prefix, n + 1);
        if (n + 2 < sizeof err->msg) {
            memcpy(err->msg + n, ": ", 3);
            n += 2;
            size_t rest = strlen(old);
            if (rest > sizeof err->msg - 1 - n) rest = sizeof err->msg - 1 - n;
            memcpy(err->msg + n, old, rest);
            err->msg[n + rest] = 0;
        }
    }
    return -1;
}
