/* testutil.h - the small test harness every chatd test program uses.
 *
 * A test program runs named cases; TU_CHECK records a failure with file, line and the
 * case name and carries on, so one run reports every broken case. tu_finish() prints
 * "N passed, N failed" and returns the exit status. Tests that need ../shared call
 * tu_shared_dir() / tu_model_path(), which skip the program (exit 77, one line saying
 * why) when the material is absent, or fail it when CHATD_REQUIRE_SHARED=1. */
#ifndef CHATD_TESTUTIL_H
#define CHATD_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define TU_SKIP_CODE 77

typedef struct tu_state {
    int passed;
    int failed;
    const char *current; /* name of the running case */
    bool case_failed;
} tu_state;

extern tu_state tu;

/* Starts a named case; ends the previous one. */
void tu_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records a failure of the current case with a message. */
void tu_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the last case, prints the summary line and returns the process exit status. */
int tu_finish(void);

#define TU_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) tu_fail(__FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)

/* Directory of the shared test material; skips (or fails) the program when missing. */
const char *tu_shared_dir(void);
/* Directory of the generated test models ($CHATD_MODELS_DIR); skips/fails when missing. */
const char *tu_models_dir(void);
/* Full path of a model in tu_models_dir(), written into a static buffer. */
const char *tu_model_path(const char *file);
/* Skips the whole program with a one-line reason (or fails it under CHATD_REQUIRE_SHARED). */
void tu_skip_or_fail(const char *why, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Reads a whole file; NULL on error. Caller frees. */
char *tu_read_file(const char *path, size_t *len);
/* Parses a JSON file; fails the program when it cannot be read. */
cJSON *tu_load_json(const char *path);

#endif
