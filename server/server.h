/* server.h - the running server: what the HTTP routes share (settings, the engine, the
 * scheduler, the chat template) and the functions that start and stop it. */
#ifndef CHATD_SERVER_H
#define CHATD_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "chatd/constrain.h"
#include "chatd/engine.h"
#include "chatd/sched.h"
#include "chatd/tokenizer.h"
#include "config.h"
#include "openai.h"

typedef enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;

typedef struct server {
    config *cfg;
    engine *e;                 /* NULL until loaded */
    sched *s;                  /* NULL until loaded */
    struct tpl_template *tpl;  /* the chat template */
    struct prompt_ctx *prompt; /* what prompt.c keeps */
    cons_vocab *cons;          /* the vocabulary as constrained decoding needs it */
    char *model_id;            /* the id clients use */
    long long created;         /* the model's "created" time */
    atomic_bool ready;         /* the model is loaded */
    atomic_bool stopping;      /* SIGTERM received */
    log_level level;
    char *api_key; /* NULL: no authentication */
    struct MHD_Daemon *daemon;
    atomic_llong next_id; /* request numbers for the log */
    atomic_int active;    /* generation requests still being answered */
} server;

/* Writes one log line at the given level (to stderr). */
void srv_log(const server *srv, log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts listening (before the model is loaded: /health answers 503 until ready);
 * 0, or -1 with a message. */
int http_start(server *srv, char *err, size_t errlen);

/* Stops accepting new connections. */
void http_quiesce(server *srv);

/* Waits for the open connections to end and stops the daemon. */
void http_stop(server *srv);

/* Renders a chat request through the chat template and tokenizes it (request text never
 * becomes control tokens); text_out (optional) receives the rendered prompt. */
int prompt_chat(server *srv, const api_request *req, tok_ids *ids, char **text_out, api_error *err);

/* Prepares the chat template (the file's, --chat-template-file, or ChatML). */
int prompt_init(server *srv, char *err, size_t errlen);

/* Frees what prompt_init prepared. */
void prompt_free(server *srv);
/* The tool-call syntax of the chat template (a cp_format of chatparse.h). */
int prompt_tool_format(const server *srv);
/* True when the chat template is a reasoning model's (it knows <think> blocks). */
bool prompt_thinks(const server *srv);

#endif
