/* openai.h - the OpenAI API's request and response formats: parsing and validating
 * request bodies (chat completions and completions) into plain structs, and writing
 * responses, stream chunks and error envelopes, exactly as OpenAI's API does. Nothing
 * here knows about HTTP connections or the engine's internals. */
#ifndef CHATD_OPENAI_H
#define CHATD_OPENAI_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_MAX_STOP 4
#define API_MAX_N    16

/* An error as OpenAI reports it: {"error":{"message","type","param","code"}}. */
typedef struct api_error {
    int status;       /* HTTP status: 400, 401, 404, 405, 413, 415, 429, 500, 503 */
    const char *type; /* "invalid_request_error", "authentication_error", "server_error", ... */
    const char *code; /* "model_not_found", "context_length_exceeded", ... or NULL (JSON null) */
    char param[128];  /* the offending parameter ("messages[1].content") or "" (JSON null) */
    char message[1024];
} api_error;

/* Fills err and returns -1 (so parsers can `return api_fail(...)`). */
int api_fail(api_error *err, int status, const char *type, const char *code, const char *param,
             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The error envelope as a JSON string (caller frees). */
char *api_error_body(const api_error *err);

typedef struct api_logit_bias {
    int32_t id;
    float bias;
} api_logit_bias;

/* One chat message after validation. Text parts of an array content are joined. */
typedef struct api_message {
    char *role;         /* system, developer, user, assistant, tool */
    char *content;      /* NULL when the message had null/absent content */
    char *name;         /* optional */
    char *tool_call_id; /* role tool */
    cJSON *tool_calls;  /* assistant: a copy of the tool_calls array, or NULL */
} api_message;

typedef enum api_kind { API_CHAT, API_COMPLETION } api_kind;

/* A validated request. Strings are owned; free with api_request_free. */
typedef struct api_request {
    api_kind kind;
    char *model;
    /* chat */
    api_message *messages;
    size_t n_messages;
    cJSON *chat_template_kwargs; /* object or NULL */
    bool add_generation_prompt;  /* set by the caller (true for completions requests) */
    /* completions: prompts as text, or as token ids */
    char **prompts;
    size_t n_prompts;
    int32_t **prompt_ids; /* [n_prompts] when given as ids (else NULL) */
    size_t *prompt_ids_len;
    /* common */
    bool stream;
    bool include_usage; /* stream_options.include_usage */
    int64_t max_tokens; /* 0 = not given */
    double temperature; /* default 1 */
    double top_p;       /* default 1 */
    int32_t top_k;      /* 0 = off (extension) */
    double min_p;       /* 0 = off (extension) */
    double presence_penalty, frequency_penalty;
    double repetition_penalty; /* 1 = off (extension) */
    bool has_seed;
    uint64_t seed;
    char *stop[API_MAX_STOP + 1]; /* NULL-terminated */
    int n;
    api_logit_bias *logit_bias;
    size_t n_logit_bias;
    bool logprobs;    /* chat: logprobs true; completions: logprobs >= 0 given */
    int top_logprobs; /* 0..20 (completions: the logprobs integer 0..5) */
    char *user;
} api_request;

/* Parses and validates a body of the given kind; 0, or -1 with err filled. vocab_size
 * bounds logit_bias ids. Every field OpenAI defines is honoured or refused by name; an
 * unknown field is refused too (400, param = its name). */
int api_parse_request(api_kind kind, const char *body, size_t len, int64_t vocab_size,
                      api_request *req, api_error *err);

/* Frees what a request owns and zeroes it. */
void api_request_free(api_request *req);

/* ---- responses ---- */

typedef struct api_token_logprob {
    const char *token; /* the token's text (UTF-8 bytes, may be partial UTF-8) */
    size_t token_len;
    float logprob;
    int n_top;
    const char *top_token[20];
    size_t top_len[20];
    float top_logprob[20];
} api_token_logprob;

/* One choice of a finished (non-streamed) response. */
typedef struct api_choice {
    const char *text; /* content */
    size_t text_len;
    const char *finish_reason;         /* "stop", "length", ... */
    const api_token_logprob *logprobs; /* [n_logprobs] or NULL when not requested */
    size_t n_logprobs;
} api_choice;

typedef struct api_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;
} api_usage;

/* Identity shared by a response and all chunks of a stream. */
typedef struct api_meta {
    api_kind kind;
    char id[64]; /* "chatcmpl-..." or "cmpl-..." */
    int64_t created;
    const char *model;
    const char *system_fingerprint;
} api_meta;

/* Fills meta with a fresh random id and the current time. */
void api_meta_init(api_meta *m, api_kind kind, const char *model);

/* The whole response body of a non-streamed request (caller frees). */
char *api_response_body(const api_meta *m, const api_choice *choices, size_t n_choices,
                        const api_usage *usage);

/* One stream chunk as the JSON of an SSE `data:` line (caller frees). role: first chunk
 * of a chat choice ("assistant") or NULL; text may be NULL; finish_reason NULL until
 * the last chunk; logprobs may be NULL. */
char *api_chunk_body(const api_meta *m, int index, const char *role, const char *text,
                     size_t text_len, const char *finish_reason, const api_token_logprob *logprobs,
                     size_t n_logprobs);

/* The final usage chunk of a stream (choices []). */
char *api_usage_chunk_body(const api_meta *m, const api_usage *usage);

#endif
