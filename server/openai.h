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

#define API_MAX_STOP  4
#define API_MAX_N     16
#define API_MAX_TOOLS 128 /* entries of tools, as OpenAI allows */
#define API_MAX_NAME  64  /* a function or json_schema name: ^[a-zA-Z0-9_-]{1,64}$ */

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

typedef enum api_tool_choice {
    API_TOOL_AUTO = 0, /* the default when tools are given */
    API_TOOL_NONE,     /* the default without tools: no call produced or parsed */
    API_TOOL_REQUIRED, /* at least one call, nothing else */
    API_TOOL_NAMED     /* a call of tool_choice_name */
} api_tool_choice;

typedef enum api_response_format {
    API_FORMAT_TEXT = 0,
    API_FORMAT_JSON_OBJECT,
    API_FORMAT_JSON_SCHEMA
} api_response_format;

typedef enum api_reasoning_effort {
    API_EFFORT_UNSET = 0,
    API_EFFORT_NONE, /* thinking off */
    API_EFFORT_MINIMAL,
    API_EFFORT_LOW,
    API_EFFORT_MEDIUM,
    API_EFFORT_HIGH
} api_reasoning_effort;

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
    /* tools (chat). Each entry of the copy is {"type":"function","function":{"name":string,
     * and optionally "description":string, "parameters":object, "strict":bool}} with null
     * members removed; parameters is a JSON Schema not yet checked for what this server can
     * enforce (server/schema.c decides that). tools is never an empty array. */
    cJSON *tools;                /* validated copy of the tools array, or NULL */
    api_tool_choice tool_choice; /* AUTO when tools are given, else NONE */
    char *tool_choice_name;      /* API_TOOL_NAMED: the function's name */
    bool parallel_tool_calls;    /* default true */
    /* structured output (chat) */
    api_response_format response_format;
    cJSON *json_schema;     /* API_FORMAT_JSON_SCHEMA: copy of json_schema.schema ({} when the
                               request gave none: any JSON value) */
    char *json_schema_name; /* json_schema.name */
    bool json_schema_strict;
    /* reasoning (chat) */
    api_reasoning_effort reasoning_effort;
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
    const char *finish_reason;         /* "stop", "length", "tool_calls", ... */
    const api_token_logprob *logprobs; /* [n_logprobs] or NULL when not requested */
    size_t n_logprobs;
} api_choice;

#define API_TOOL_ID_SIZE 32 /* "call_" + 24 characters + NUL */

/* One function call the model made. Any bytes are written safely (partial UTF-8 shows as
 * U+FFFD), as all text is. */
typedef struct api_tool_call {
    const char *id;        /* "call_..." (api_tool_call_id), the same in chunks and the body */
    const char *name;      /* the function's name */
    const char *arguments; /* the arguments as JSON text, as generated */
    size_t arguments_len;
} api_tool_call;

/* What a chat choice holds besides its content: the thinking text and the tool calls. Kept
 * apart from api_choice so that callers which know nothing of it need not fill it. */
typedef struct api_choice_extra {
    const char *reasoning; /* reasoning_content; NULL or empty: the key is omitted */
    size_t reasoning_len;
    const api_tool_call *tool_calls; /* [n_tool_calls]; none: the key is omitted */
    size_t n_tool_calls;
} api_choice_extra;

typedef struct api_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens; /* thinking tokens included, as OpenAI counts them */
    int64_t cached_tokens;
    int64_t reasoning_tokens; /* completion_tokens_details.reasoning_tokens */
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

/* Writes a fresh tool call id, "call_" and 24 random letters and digits, into out. */
void api_tool_call_id(char out[API_TOOL_ID_SIZE]);

/* The whole response body of a non-streamed request (caller frees). */
char *api_response_body(const api_meta *m, const api_choice *choices, size_t n_choices,
                        const api_usage *usage);

/* The same with each chat choice's extras (extras[n_choices], or NULL for none). A choice
 * with tool calls and no text has "content": null; reasoning text, when there is some, goes
 * in "reasoning_content" (the DeepSeek / vLLM / llama.cpp extension); completions ignore
 * extras. */
char *api_response_body_ex(const api_meta *m, const api_choice *choices,
                           const api_choice_extra *extras, size_t n_choices,
                           const api_usage *usage);

/* One stream chunk as the JSON of an SSE `data:` line (caller frees). role: first chunk
 * of a chat choice ("assistant") or NULL; text may be NULL; finish_reason NULL until
 * the last chunk; logprobs may be NULL. */
char *api_chunk_body(const api_meta *m, int index, const char *role, const char *text,
                     size_t text_len, const char *finish_reason, const api_token_logprob *logprobs,
                     size_t n_logprobs);

/* What one chat delta carries. */
typedef enum api_delta_kind {
    API_DELTA_NONE = 0,   /* nothing ({}; with role: "content": "", OpenAI's first chunk) */
    API_DELTA_CONTENT,    /* "content": text */
    API_DELTA_REASONING,  /* "reasoning_content": text */
    API_DELTA_TOOL_START, /* tool_calls[{index, id, type, function{name, arguments: text}}] */
    API_DELTA_TOOL_ARGS   /* tool_calls[{index, function{arguments: text}}] */
} api_delta_kind;

/* One delta of a chat stream; zero-initialize and set what applies. */
typedef struct api_delta {
    api_delta_kind kind;
    const char *role; /* "assistant" in a choice's first chunk, else NULL; with a kind other
                         than NONE or CONTENT it comes with "content": null */
    const char *text; /* content, reasoning or arguments fragment (may be partial UTF-8) */
    size_t text_len;
    int tool_index;                    /* TOOL_*: the call's position in the choice, from 0 */
    const char *tool_id;               /* TOOL_START: "call_..." */
    const char *tool_name;             /* TOOL_START */
    const char *finish_reason;         /* the last chunk of the choice, else NULL */
    const api_token_logprob *logprobs; /* may be NULL */
    size_t n_logprobs;
} api_delta;

/* One stream chunk of choice index carrying delta d (caller frees). For a completions
 * stream only a CONTENT text (or nothing) is written, as "text". */
char *api_chunk_body_delta(const api_meta *m, int index, const api_delta *d);

/* The final usage chunk of a stream (choices []). */
char *api_usage_chunk_body(const api_meta *m, const api_usage *usage);

#endif
