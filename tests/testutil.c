/* testutil.c - the test harness (see testutil.h). */
#include "testutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

tu_state tu;

static void tu_end_case(void) {
    if (!tu.current) return;
    if (tu.case_failed)
        tu.failed++;
    else
        tu.passed++;
    tu.current = NULL;
}

void tu_case(const char *fmt, ...) {
    static char name[512];
    tu_end_case();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    tu.current = name;
    tu.case_failed = false;
}

void tu_fail(const char *file, int line, const char *fmt, ...) {
    if (!tu.current) tu_case("(unnamed)");
    fprintf(stderr, "FAIL [%s] %s:%d: ", tu.current, file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    tu.case_failed = true;
}

int tu_finish(void) {
    tu_end_case();
    printf("%d passed, %d failed\n", tu.passed, tu.failed);
    return tu.failed ? 1 : 0;
}

void tu_skip_or_fail(const char *why, ...) {
    va_list ap;
    va_start(ap, why);
    const char *req = getenv("CHATD_REQUIRE_SHARED");
    bool required = req && *req && strcmp(req, "0") != 0;
    printf(required ? "FAIL (CHATD_REQUIRE_SHARED is set): " : "SKIP: ");
    vprintf(why, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(required ? 1 : TU_SKIP_CODE);
}

static bool tu_is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tu_shared_dir(void) {
    const char *d = getenv("CHATD_SHARED");
    if (!d || !*d) d = CHATD_SHARED_DEFAULT;
    if (!tu_is_dir(d))
        tu_skip_or_fail("shared test material not found at %s (set CHATD_SHARED)", d);
    return d;
}

const char *tu_models_dir(void) {
    tu_shared_dir();
    const char *d = getenv("CHATD_MODELS_DIR");
    if (!d || !*d || !tu_is_dir(d))
        tu_skip_or_fail("generated test models not found at %s (run the models.regen test)",
                        d ? d : "(CHATD_MODELS_DIR unset)");
    return d;
}

const char *tu_model_path(const char *file) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tu_models_dir(), file);
    struct stat st;
    if (stat(path, &st) != 0) tu_skip_or_fail("test model %s missing: %s", path, strerror(errno));
    return path;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        return NULL;
    }
    long n = ftell(fp);
    if (n < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(fp);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    if (got != (size_t)n) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

cJSON *tu_load_json(const char *path) {
    char *text = tu_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        fprintf(stderr, "cannot parse JSON in %s\n", path);
        exit(1);
    }
    return j;
}
