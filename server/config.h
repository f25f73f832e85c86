/* config.h - the settings of `chatd serve`, from four sources in order of precedence:
 * command-line flags (--ctx-size 8192), CHATD_* environment variables (CHATD_CTX_SIZE),
 * a configuration file (ctx_size = 8192, given with --config FILE) and built-in
 * defaults. Every setting has one key; its flag and variable derive from it. Invalid
 * values are refused at start with a message naming the setting and its source. */
#ifndef CHATD_CONFIG_H
#define CHATD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config {
    char *host;
    int port;
    char *model;
    int threads;       /* 0 = one per core */
    int64_t ctx_size;  /* 0 = the model's */
    int parallel;      /* sequences in the running batch */
    int64_t kv_memory; /* bytes; 0 = auto */
    int queue_size;
    char *model_alias; /* NULL = general.name or file stem */
    char *api_key;     /* NULL = no authentication */
    char *api_key_file;
    char *cors_origins; /* comma-separated; NULL = none */
    char *log_level;    /* error, warn, info, debug */
    bool log_prompts;
    int64_t body_limit;    /* bytes */
    int64_t batch;         /* tokens per step */
    int64_t chunk;         /* prompt tokens per sequence per step */
    double deadline;       /* seconds per request; 0 = none */
    double shutdown_grace; /* seconds running requests get at SIGTERM */
    char *chat_template_file;
    char *kernels;
    char *kv_type;          /* f16 or f32 */
    char *reasoning_format; /* deepseek (split out) or none (inline) */
} config;

/* Fills c from defaults, the file named by --config / CHATD_CONFIG, the environment
 * and argv (argv[0] is the subcommand); 0, or -1 with a message in err. Sets *help when
 * --help was given. */
int config_load(config *c, int argc, char **argv, bool *help, char *err, size_t errlen);

/* Frees the strings of c. */
void config_free(config *c);

/* Prints every setting with its flag, variable and default. */
void config_usage(FILE *out);

#endif
