/* config.c - settings of `chatd serve` (see config.h): one table describes every setting;
 * the loaders for defaults, file, environment and flags all walk it. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum cfg_type { CFG_STR, CFG_INT, CFG_I64, CFG_SIZE, CFG_DOUBLE, CFG_BOOL } cfg_type;

typedef struct cfg_setting {
    const char *key; /* file key; flag --key-with-dashes; variable CHATD_KEY */
    cfg_type type;
    size_t offset;
    const char *def;    /* default as text, NULL = unset */
    long long min, max; /* numeric range */
    const char *help;
} cfg_setting;

#define F(field) offsetof(config, field)
static const cfg_setting cfg_settings[] = {
    {"host", CFG_STR, F(host), "127.0.0.1", 0, 0, "address to listen on"},
    {"port", CFG_INT, F(port), "8080", 1, 65535, "TCP port"},
    {"model", CFG_STR, F(model), NULL, 0, 0, "the GGUF model file (required)"},
    {"threads", CFG_INT, F(threads), "0", 0, 1024, "compute threads (0 = one per core)"},
    {"ctx_size", CFG_I64, F(ctx_size), "0", 0, 1 << 24,
     "positions per sequence (0 = the model's, capped by KV memory)"},
    {"parallel", CFG_INT, F(parallel), "8", 1, 1024, "sequences in the running batch"},
    {"kv_memory", CFG_SIZE, F(kv_memory), "0", 0, (long long)1 << 50,
     "KV cache pool, e.g. 2GiB (0 = auto: parallel full contexts, at most 4 GiB)"},
    {"queue_size", CFG_INT, F(queue_size), "64", 1, 1 << 20,
     "requests that may wait for a slot; more get 503"},
    {"model_alias", CFG_STR, F(model_alias), NULL, 0, 0,
     "the model id clients use (default: general.name, else the file stem)"},
    {"api_key", CFG_STR, F(api_key), NULL, 0, 0, "require Authorization: Bearer KEY"},
    {"api_key_file", CFG_STR, F(api_key_file), NULL, 0, 0, "read the API key from a file"},
    {"cors_origins", CFG_STR, F(cors_origins), NULL, 0, 0,
     "comma-separated allowed CORS origins (* for any; default none)"},
    {"log_level", CFG_STR, F(log_level), "info", 0, 0, "error, warn, info or debug"},
    {"log_prompts", CFG_BOOL, F(log_prompts), "false", 0, 0, "log prompt text (debug level)"},
    {"body_limit", CFG_SIZE, F(body_limit), "8MiB", 1024, (long long)1 << 32,
     "largest request body"},
    {"batch", CFG_I64, F(batch), "512", 1, 65536, "tokens per forward pass"},
    {"chunk", CFG_I64, F(chunk), "256", 1, 65536,
     "prompt tokens one sequence feeds per step (long prompts interleave with decoding)"},
    {"deadline", CFG_DOUBLE, F(deadline), "600", 0, 1000000,
     "seconds a request may take (0 = none)"},
    {"shutdown_grace", CFG_DOUBLE, F(shutdown_grace), "10", 0, 3600,
     "seconds running requests get to finish at SIGTERM"},
    {"chat_template_file", CFG_STR, F(chat_template_file), NULL, 0, 0,
     "Jinja chat template replacing the model's"},
    {"kernels", CFG_STR, F(kernels), NULL, 0, 0, "scalar, avx2 or avx512 (default: best)"},
    {"kv_type", CFG_STR, F(kv_type), "f16", 0, 0, "KV cache element type: f16 or f32"},
    {"reasoning_format", CFG_STR, F(reasoning_format), "deepseek", 0, 0,
     "deepseek: thinking text in reasoning_content; none: left inline in content"},
};
#undef F
#define CFG_N (sizeof cfg_settings / sizeof cfg_settings[0])

/* Parses "8MiB", "2GiB", "512k", "1000000" into bytes. */
static int cfg_parse_size(const char *s, long long *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    while (*end == ' ') end++;
    double mul = 1;
    if (*end) {
        char u = (char)tolower((unsigned char)*end);
        mul = u == 'k'   ? 1024.0
              : u == 'm' ? 1048576.0
              : u == 'g' ? 1073741824.0
              : u == 't' ? 1099511627776.0
              : u == 'b' ? 1
                         : 0;
        if (mul == 0) return -1;
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'b' || *end == 'B') end++;
        if (*end) return -1;
    }
    *out = (long long)(v * mul);
    return 0;
}

/* Sets one setting from text; src names where the value came from. */
static int cfg_set(config *c, const cfg_setting *s, const char *v, const char *src, char *err,
                   size_t errlen) {
    char *base = (char *)c + s->offset;
    long long n = 0;
    double d = 0;
    char *end = NULL;
    switch (s->type) {
    case CFG_STR: {
        char **p = (char **)base;
        char *copy = strdup(v);
        if (!copy) return snprintf(err, errlen, "out of memory"), -1;
        free(*p);
        *p = copy;
        return 0;
    }
    case CFG_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
            *(bool *)base = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
            *(bool *)base = false;
        else
            break;
        return 0;
    case CFG_DOUBLE:
        errno = 0;
        d = strtod(v, &end);
        if (end == v || *end || errno || d < (double)s->min || d > (double)s->max) break;
        memcpy(base, &d, sizeof d);
        return 0;
    case CFG_SIZE:
        if (!strcmp(v, "auto") && s->min == 0) {
            *(int64_t *)base = 0;
            return 0;
        }
        if (cfg_parse_size(v, &n) != 0 || n < s->min || n > s->max) break;
        memcpy(base, &(int64_t){n}, sizeof(int64_t));
        return 0;
    case CFG_INT:
    case CFG_I64:
        errno = 0;
        n = strtoll(v, &end, 10);
        if (end == v || *end || errno || n < s->min || n > s->max) break;
        if (s->type == CFG_INT)
            *(int *)base = (int)n;
        else
            *(int64_t *)base = n;
        return 0;
    }
    if (s->type == CFG_BOOL || s->type == CFG_STR)
        snprintf(err, errlen, "%s: invalid value '%s' for %s (true or false)", src, v, s->key);
    else
        snprintf(err, errlen, "%s: invalid value '%s' for %s (%lld to %lld%s)", src, v, s->key,
                 s->min, s->max, s->type == CFG_SIZE ? " bytes; units k, M, G allowed" : "");
    return -1;
}

static const cfg_setting *cfg_find(const char *key, size_t len) {
    for (size_t i = 0; i < CFG_N; i++)
        if (strlen(cfg_settings[i].key) == len && !strncmp(cfg_settings[i].key, key, len))
            return &cfg_settings[i];
    return NULL;
}

static char *cfg_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static int cfg_load_file(config *c, const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno)), -1;
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, fp)) {
        lineno++;
        char *t = cfg_trim(line);
        if (!*t || *t == '#') continue;
        char *eq = strchr(t, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = cfg_trim(t), *val = cfg_trim(eq + 1);
        const cfg_setting *s = cfg_find(key, strlen(key));
        char src[512];
        snprintf(src, sizeof src, "%s:%d", path, lineno);
        if (!s) {
            snprintf(err, errlen, "%s: unknown setting '%s'", src, key);
            rc = -1;
        } else {
            rc = cfg_set(c, s, val, src, err, errlen);
        }
    }
    fclose(fp);
    return rc;
}

void config_usage(FILE *out) {
    fprintf(out, "usage: chatd serve --model FILE [options]\n\n"
                 "Serves the OpenAI API (chat completions, completions, models) over HTTP.\n"
                 "Each setting is a flag, a CHATD_* environment variable, or a line of the\n"
                 "--config FILE (key = value); flags win over the environment, which wins over\n"
                 "the file. See config/chatd.conf.example.\n\n");
    fprintf(out, "  %-24s %s\n", "--config FILE", "read settings from FILE (also CHATD_CONFIG)");
    for (size_t i = 0; i < CFG_N; i++) {
        const cfg_setting *s = &cfg_settings[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", s->key, s->type == CFG_BOOL ? "" : " V");
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        fprintf(out, "  %-24s %s", flag, s->help);
        if (s->def && strcmp(s->def, "0") && s->type != CFG_BOOL) fprintf(out, " [%s]", s->def);
        fprintf(out, "\n");
    }
}

int config_load(config *c, int argc, char **argv, bool *help, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    *help = false;
    for (size_t i = 0; i < CFG_N; i++)
        if (cfg_settings[i].def &&
            cfg_set(c, &cfg_settings[i], cfg_settings[i].def, "default", err, errlen) != 0)
            return -1;
    /* the file: --config on the command line, else CHATD_CONFIG */
    const char *file = getenv("CHATD_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) *help = true;
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) return snprintf(err, errlen, "--config needs a file"), -1;
            file = argv[i + 1];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            file = argv[i] + 9;
        }
    }
    if (*help) return 0;
    if (file && *file && cfg_load_file(c, file, err, errlen) != 0) return -1;
    for (size_t i = 0; i < CFG_N; i++) {
        char var[64];
        snprintf(var, sizeof var, "CHATD_%s", cfg_settings[i].key);
        for (char *p = var; *p; p++) *p = (char)toupper((unsigned char)*p);
        const char *v = getenv(var);
        if (v && *v && cfg_set(c, &cfg_settings[i], v, var, err, errlen) != 0) return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (!strcmp(a, "-m")) a = "--model"; /* the short form every other command takes */
        if (strncmp(a, "--", 2) != 0)
            return snprintf(err, errlen, "unexpected argument '%s'", argv[i]), -1;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        char key[64];
        if (len >= sizeof key) return snprintf(err, errlen, "unknown option %s", a), -1;
        memcpy(key, name, len);
        key[len] = 0;
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        const cfg_setting *s = cfg_find(key, len);
        if (!s) return snprintf(err, errlen, "unknown option %s (see chatd serve --help)", a), -1;
        const char *v;
        if (eq)
            v = eq + 1;
        else if (s->type == CFG_BOOL)
            v = "true";
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return snprintf(err, errlen, "%s needs a value", a), -1;
        if (cfg_set(c, s, v, a, err, errlen) != 0) return -1;
    }
    if (!c->model || !*c->model)
        return snprintf(err, errlen, "no model: give --model FILE (or CHATD_MODEL)"), -1;
    if (strcmp(c->log_level, "error") && strcmp(c->log_level, "warn") &&
        strcmp(c->log_level, "info") && strcmp(c->log_level, "debug"))
        return snprintf(err, errlen, "log_level must be error, warn, info or debug"), -1;
    if (strcmp(c->kv_type, "f16") && strcmp(c->kv_type, "f32"))
        return snprintf(err, errlen, "kv_type must be f16 or f32"), -1;
    if (strcmp(c->reasoning_format, "deepseek") && strcmp(c->reasoning_format, "none"))
        return snprintf(err, errlen, "reasoning_format must be deepseek or none"), -1;
    if (c->chunk > c->batch) c->chunk = c->batch;
    return 0;
}

void config_free(config *c) {
    for (size_t i = 0; i < CFG_N; i++)
        if (cfg_settings[i].type == CFG_STR) {
            char **p = (char **)((char *)c + cfg_settings[i].offset);
            free(*p);
            *p = NULL;
        }
}
