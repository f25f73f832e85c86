/* http.c - the HTTP server: libmicrohttpd with one thread per connection, routing, auth,
 * CORS, request logging, and the OpenAI routes (chat completions, completions, models,
 * health, tokenize, detokenize, apply-template).
 *
 * A connection thread parses and validates a request, renders and tokenizes its prompt,
 * and submits it to the scheduler; then it waits on the request's event queue (never on
 * model code) and writes the answer: one JSON body, or an SSE stream. While it waits it
 * watches its socket, so a client that goes away cancels its request at once. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "chatparse.h"
#include "guide.h"
#include "server.h"

#define HTTP_KEEPALIVE_S 2.0 /* SSE comment interval while nothing else is sent */

static double http_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void srv_log(const server *srv, log_level lvl, const char *fmt, ...) {
    if (lvl > srv->level) return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[2048];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s ", names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

/* ---- per-request state ---- */

typedef struct http_req {
    server *srv;
    long long num;
    char *body;
    size_t len, cap;
    bool too_large;
    double t_start;
    const char *route;
    int status;
    int64_t prompt_tokens, completion_tokens;
    double ttft;
    struct MHD_Connection *conn;
} http_req;

/* True when the peer has closed its end (no data is consumed). */
static bool http_peer_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void http_cors(const server *srv, struct MHD_Connection *c, struct MHD_Response *r) {
    const char *origins = srv->cfg->cors_origins;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origins || !*origins || !origin) return;
    bool ok = false;
    const char *p = origins;
    while (*p && !ok) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && t[-1] == ' ') t--;
        size_t n = (size_t)(t - p);
        ok = (n == 1 && *p == '*') || (n == strlen(origin) && !strncmp(p, origin, n));
        p = e;
    }
    if (!ok) return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r, "Vary", "Origin");
}

/* Queues a complete response (takes ownership of body). */
static enum MHD_Result http_send(http_req *h, int status, char *body, const char *ctype) {
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    http_cors(h->srv, h->conn, r);
    if (status == 503) MHD_add_response_header(r, "Retry-After", "1");
    h->status = status;
    enum MHD_Result ok = MHD_queue_response(h->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result http_send_json(http_req *h, int status, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return MHD_NO;
    return http_send(h, status, s, "application/json");
}

static enum MHD_Result http_send_error(http_req *h, const api_error *e) {
    char *s = api_error_body(e);
    if (!s) return MHD_NO;
    return http_send(h, e->status, s, "application/json");
}

static enum MHD_Result http_error(http_req *h, int status, const char *type, const char *code,
                                  const char *param, const char *msg) {
    api_error e;
    api_fail(&e, status, type, code, param, "%s", msg);
    return http_send_error(h, &e);
}

/* Constant-time comparison of the presented key with the configured one. */
static bool http_key_ok(const char *want, const char *got) {
    size_t wl = strlen(want), gl = got ? strlen(got) : 0;
    unsigned char diff = (unsigned char)(wl != gl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
    return diff == 0;
}

/* ---- results of requests ---- */

static const char *http_finish_reason(sched_finish f) {
    switch (f) {
    case SCHED_FINISH_STOP:
        return "stop";
    case SCHED_FINISH_LENGTH:
    case SCHED_FINISH_DEADLINE:
    case SCHED_FINISH_SHUTDOWN:
        return "length";
    default:
        return "stop";
    }
}

/* Fills a logprob entry for token t (texts point into the vocab). */
static void http_logprob(const server *srv, const sampler_result *t, api_token_logprob *lp) {
    memset(lp, 0, sizeof *lp);
    lp->token = tok_piece(srv->e->tok, t->chosen.id, true, &lp->token_len);
    lp->logprob = t->chosen.logprob;
    lp->n_top = t->n_top;
    for (int i = 0; i < t->n_top && i < 20; i++) {
        lp->top_token[i] = tok_piece(srv->e->tok, t->top[i].id, true, &lp->top_len[i]);
        lp->top_logprob[i] = t->top[i].logprob;
    }
}

/* A tool call being collected for a non-streamed answer. */
typedef struct gen_call {
    char id[API_TOOL_ID_SIZE];
    char *name;
    tok_buf args;
} gen_call;

/* What a chat choice's output parser has given so far (non-streamed). */
typedef struct gen_parts {
    tok_buf content, reasoning;
    gen_call *calls;
    size_t n_calls, cap_calls;
} gen_parts;

/* Everything one generation request needs from parse to answer. */
typedef struct gen {
    server *srv;
    http_req *h;
    api_request req;
    api_meta meta;
    int n; /* choices */
    sched_req *r[API_MAX_N];
    bool done[API_MAX_N];
    sched_finish finish[API_MAX_N];
    tok_buf text[API_MAX_N];
    api_token_logprob *lps[API_MAX_N];
    size_t n_lps[API_MAX_N], cap_lps[API_MAX_N];
    int64_t prompt_tokens;
    char error[CHATD_ERR_MAX];
    /* chat output: constraint, and the parsers that split reasoning, content and calls */
    guide_think think;
    cons_program *cons;
    cp_parser *cp[API_MAX_N];
    gen_parts parts[API_MAX_N];
    int64_t reasoning_tokens[API_MAX_N];
    int cur;                          /* the choice whose deltas are being emitted */
    const api_token_logprob *pend_lp; /* logprobs waiting for the next chunk */
    size_t pend_nlp;
    /* streaming */
    int phase; /* 0 role chunks, 1 deltas, 2 usage, 3 [DONE], 4 end */
    int next_choice;
    tok_buf out;
    size_t out_off;
    double last_write;
} gen;

static void gen_free(gen *g) {
    atomic_fetch_sub(&g->srv->active, 1);
    for (int i = 0; i < g->n; i++) {
        if (g->r[i]) {
            if (!g->done[i]) sched_cancel(g->r[i]);
            sched_req_release(g->r[i]);
        }
        tok_buf_free(&g->text[i]);
        free(g->lps[i]);
        cp_free(g->cp[i]);
        gen_parts *pt = &g->parts[i];
        tok_buf_free(&pt->content);
        tok_buf_free(&pt->reasoning);
        for (size_t k = 0; k < pt->n_calls; k++) {
            free(pt->calls[k].name);
            tok_buf_free(&pt->calls[k].args);
        }
        free(pt->calls);
    }
    cons_program_release(g->cons);
    tok_buf_free(&g->out);
    api_request_free(&g->req);
    free(g);
}

static int gen_keep_logprobs(gen *g, int i, const sched_event *ev) {
    if (!g->req.logprobs) return 0;
    for (int k = 0; k < ev->n_tokens; k++) {
        if (g->n_lps[i] == g->cap_lps[i]) {
            size_t cap = g->cap_lps[i] ? g->cap_lps[i] * 2 : 64;
            api_token_logprob *p = realloc(g->lps[i], cap * sizeof *p);
            if (!p) return -1;
            g->lps[i] = p;
            g->cap_lps[i] = cap;
        }
        http_logprob(g->srv, &ev->tokens[k], &g->lps[i][g->n_lps[i]++]);
    }
    return 0;
}

/* Logs a prompt's text (--log-prompts, debug level) on one line, control characters
 * escaped as in JSON. */
static void gen_log_prompt(gen *g, const char *text) {
    if (g->srv->level < LOG_DEBUG) return;
    tok_buf b = {0};
    for (const unsigned char *c = (const unsigned char *)text; *c && b.len < 4096; c++) {
        char esc[8];
        size_t n = 1;
        esc[0] = (char)*c;
        if (*c == '\n')
            n = (size_t)snprintf(esc, sizeof esc, "\\n");
        else if (*c == '\\')
            n = (size_t)snprintf(esc, sizeof esc, "\\\\");
        else if (*c < 0x20)
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *c);
        tok_buf_append(&b, esc, n, NULL);
    }
    srv_log(g->srv, LOG_DEBUG, "req %lld prompt: %s", g->h->num, b.data ? b.data : "");
    tok_buf_free(&b);
}

/* Where a reasoning model's thinking stands at the end of a rendered chat prompt. */
static guide_think gen_think_state(const server *srv, const char *text) {
    if (!text || !prompt_thinks(srv)) return GUIDE_THINK_NONE;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) n--;
    if (n >= 7 && !memcmp(text + n - 7, "<think>", 7)) return GUIDE_THINK_OPEN;
    /* a closed block at the very end: thinking was turned off */
    if (n >= 8 && !memcmp(text + n - 8, "</think>", 8)) return GUIDE_THINK_NONE;
    return GUIDE_THINK_MODEL;
}

/* The token ids of prompt p of a request (chat: the rendered messages). */
static int gen_prompt(gen *g, size_t p, tok_ids *ids, api_error *err) {
    server *srv = g->srv;
    api_request *q = &g->req;
    chatd_error cerr = {{0}};
    if (q->kind == API_CHAT) {
        char *text = NULL;
        if (prompt_chat(srv, q, ids, &text, err) != 0) return -1;
        g->think = gen_think_state(srv, text);
        if (srv->cfg->log_prompts && text) gen_log_prompt(g, text);
        free(text);
        return 0;
    }
    if (q->prompt_ids) {
        for (size_t k = 0; k < q->prompt_ids_len[p]; k++)
            if (q->prompt_ids[p][k] < 0 || q->prompt_ids[p][k] >= tok_n_vocab(srv->e->tok) ||
                tok_ids_push(ids, q->prompt_ids[p][k], &cerr) != 0)
                return api_fail(err, 400, "invalid_request_error", "invalid_value", "prompt",
                                "Invalid token id %d in prompt.", q->prompt_ids[p][k]);
        return 0;
    }
    if (srv->cfg->log_prompts && q->prompts) gen_log_prompt(g, q->prompts[p]);
    /* a completions prompt is raw model input: its special-token text is meant */
    if (tok_encode(srv->e->tok, q->prompts[p], strlen(q->prompts[p]), true, true, ids, &cerr) != 0)
        return api_fail(err, 400, "invalid_request_error", NULL, "prompt", "%s", cerr.msg);
    return 0;
}

/* Checks that a prompt and its completion fit the context. */
static int gen_check_context(gen *g, int64_t n, int64_t want, api_error *err) {
    int64_t ctx = sched_ctx_size(g->srv->s);
    const char *param = g->req.kind == API_CHAT ? "messages" : "prompt";
    if (n == 0)
        return api_fail(err, 400, "invalid_request_error", NULL, param, "The prompt is empty.");
    if (n + (want > 0 ? want : 1) <= ctx) return 0;
    if (want > 0)
        return api_fail(err, 400, "invalid_request_error", "context_length_exceeded", param,
                        "This model's maximum context length is %lld tokens. However, you "
                        "requested %lld tokens (%lld in the messages, %lld in the "
                        "completion). Please reduce the length of the messages or "
                        "completion.",
                        (long long)ctx, (long long)(n + want), (long long)n, (long long)want);
    return api_fail(err, 400, "invalid_request_error", "context_length_exceeded", param,
                    "This model's maximum context length is %lld tokens. However, your "
                    "messages resulted in %lld tokens. Please reduce the length of the "
                    "messages.",
                    (long long)ctx, (long long)n);
}

/* One output parser per chat choice: reasoning, content and tool calls apart. */
static int gen_parsers(gen *g, api_error *err) {
    const api_request *q = &g->req;
    cp_options o = {0};
    o.fmt = (cp_format)prompt_tool_format(g->srv);
    o.parse_tools = q->tools && q->tool_choice != API_TOOL_NONE;
    o.split_reasoning = strcmp(g->srv->cfg->reasoning_format, "none") != 0;
    o.thinking_open = g->think == GUIDE_THINK_OPEN;
    o.live_args = q->stream;
    for (int i = 0; i < g->n; i++) {
        chatd_error cerr = {{0}};
        if (!(g->cp[i] = cp_new(&o, &cerr)))
            return api_fail(err, 500, "server_error", NULL, NULL, "%s", cerr.msg);
    }
    return 0;
}

/* Builds the prompts and submits one scheduler request per choice: choice p * n + i is
 * completion i of prompt p (completions may carry several prompts, as OpenAI's do). */
static int gen_submit(gen *g, api_error *err) {
    server *srv = g->srv;
    api_request *q = &g->req;
    size_t n_prompts = q->kind == API_CHAT ? 1 : q->n_prompts;
    if (n_prompts == 0)
        return api_fail(err, 400, "invalid_request_error", NULL, "prompt", "The prompt is empty.");
    if (n_prompts * (size_t)q->n > API_MAX_N)
        return api_fail(err, 400, "invalid_request_error", "invalid_value", "n",
                        "At most %d completions per request (prompts times n); this asks for %zu.",
                        API_MAX_N, n_prompts * (size_t)q->n);
    g->n = (int)(n_prompts * (size_t)q->n);
    /* OpenAI's completions default to 16 tokens; chat runs to the end of the context */
    int64_t want = q->max_tokens ? q->max_tokens : q->kind == API_COMPLETION ? 16 : 0;
    sched_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = want;
    p.sampling = sampler_defaults();
    p.sampling.temperature = (float)q->temperature;
    p.sampling.top_p = (float)q->top_p;
    p.sampling.top_k = q->top_k;
    p.sampling.min_p = (float)q->min_p;
    p.sampling.presence_penalty = (float)q->presence_penalty;
    p.sampling.frequency_penalty = (float)q->frequency_penalty;
    p.sampling.repetition_penalty = (float)q->repetition_penalty;
    p.sampling.top_logprobs = q->logprobs ? q->top_logprobs : 0;
    sampler_bias bias[512];
    size_t nb = q->n_logit_bias < 512 ? q->n_logit_bias : 512;
    for (size_t k = 0; k < nb; k++) {
        bias[k].id = q->logit_bias[k].id;
        bias[k].bias = q->logit_bias[k].bias;
    }
    p.sampling.bias = bias;
    p.sampling.n_bias = nb;
    for (int k = 0; k < API_MAX_STOP && q->stop[k]; k++) p.stop[k] = q->stop[k];
    uint64_t seed = q->seed;
    if (!q->has_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)g;
    }
    g->prompt_tokens = 0;
    for (size_t pi = 0; pi < n_prompts; pi++) {
        tok_ids ids = {0};
        if (gen_prompt(g, pi, &ids, err) != 0 ||
            gen_check_context(g, (int64_t)ids.n, want, err) != 0) {
            tok_ids_free(&ids);
            return -1; /* gen_free cancels what was submitted */
        }
        g->prompt_tokens += (int64_t)ids.n;
        p.prompt = ids.v;
        p.n_prompt = ids.n;
        if (q->kind == API_CHAT && (guide_build(q, (cp_format)prompt_tool_format(srv), g->think,
                                                srv->cons, &g->cons, err) != 0 ||
                                    gen_parsers(g, err) != 0)) {
            tok_ids_free(&ids);
            return -1;
        }
        p.constraint = g->cons;
        for (int i = 0; i < q->n; i++) {
            int c = (int)pi * q->n + i;
            bool full = false;
            chatd_error cerr = {{0}};
            p.sampling.seed = seed + (uint64_t)c * 0x9e3779b97f4a7c15ull;
            g->r[c] = sched_submit(srv->s, &p, &full, &cerr);
            if (!g->r[c]) {
                tok_ids_free(&ids);
                if (full)
                    return api_fail(err, 503, "server_error", "server_busy", NULL,
                                    "The server is busy: too many requests are waiting. Retry "
                                    "later.");
                return api_fail(err, 400, "invalid_request_error", NULL, NULL, "%s", cerr.msg);
            }
        }
        tok_ids_free(&ids);
    }
    return 0;
}

static void gen_sse(gen *g, char *json);

/* Receives a delta of choice g->cur from its parser: a chunk when streaming, else a part
 * of the answer. */
static int gen_on_delta(void *user, const cp_delta *d) {
    gen *g = user;
    int i = g->cur;
    if (g->req.stream) {
        api_delta ad = {0};
        ad.text = d->text;
        ad.text_len = d->len;
        ad.tool_index = d->index;
        ad.tool_id = d->id;
        ad.tool_name = d->name;
        ad.kind = d->kind == CP_CONTENT      ? API_DELTA_CONTENT
                  : d->kind == CP_REASONING  ? API_DELTA_REASONING
                  : d->kind == CP_TOOL_START ? API_DELTA_TOOL_START
                                             : API_DELTA_TOOL_ARGS;
        ad.logprobs = g->pend_lp; /* the first chunk of an event carries its logprobs */
        ad.n_logprobs = g->pend_nlp;
        g->pend_lp = NULL;
        g->pend_nlp = 0;
        char *json = api_chunk_body_delta(&g->meta, i, &ad);
        if (!json) return -1;
        gen_sse(g, json);
        return 0;
    }
    gen_parts *pt = &g->parts[i];
    switch (d->kind) {
    case CP_CONTENT:
        return tok_buf_append(&pt->content, d->text, d->len, NULL);
    case CP_REASONING:
        return tok_buf_append(&pt->reasoning, d->text, d->len, NULL);
    case CP_TOOL_START: {
        if (pt->n_calls == pt->cap_calls) {
            size_t cap = pt->cap_calls ? pt->cap_calls * 2 : 4;
            gen_call *c = realloc(pt->calls, cap * sizeof *c);
            if (!c) return -1;
            pt->calls = c;
            pt->cap_calls = cap;
        }
        gen_call *c = &pt->calls[pt->n_calls];
        memset(c, 0, sizeof *c);
        snprintf(c->id, sizeof c->id, "%s", d->id);
        if (!(c->name = strdup(d->name))) return -1;
        pt->n_calls++;
        return 0;
    }
    case CP_TOOL_ARGS:
        if (d->index < 0 || (size_t)d->index >= pt->n_calls) return -1;
        return tok_buf_append(&pt->calls[d->index].args, d->text, d->len, NULL);
    }
    return 0;
}

/* The finish reason of choice i: "tool_calls" when it ended with calls. */
static const char *gen_finish_reason(const gen *g, int i) {
    if (g->cp[i] && cp_n_tool_calls(g->cp[i]) > 0 &&
        (g->finish[i] == SCHED_FINISH_STOP || g->finish[i] == SCHED_FINISH_NONE))
        return "tool_calls";
    return http_finish_reason(g->finish[i]);
}

/* Takes one event of choice i into g; returns 1 if the choice ended, 0 if not, -1 on
 * an engine error (message in g->error). */
static int gen_take(gen *g, int i, sched_event *ev) {
    int rc = 0;
    if (ev->text_len) tok_buf_append(&g->text[i], ev->text, ev->text_len, NULL);
    size_t lp_before = g->n_lps[i];
    if (gen_keep_logprobs(g, i, ev) != 0) rc = -1;
    if (g->cp[i]) {
        /* the parser's deltas become chunks (streaming) or the answer's parts */
        chatd_error cerr = {{0}};
        g->cur = i;
        g->pend_lp = g->req.logprobs && g->lps[i] ? g->lps[i] + lp_before : NULL;
        g->pend_nlp = g->req.logprobs ? g->n_lps[i] - lp_before : 0;
        bool was = cp_in_reasoning(g->cp[i]);
        if (cp_feed(g->cp[i], ev->text ? ev->text : "", ev->text_len, gen_on_delta, g, &cerr) !=
                0 ||
            (ev->finish != SCHED_FINISH_NONE && cp_finish(g->cp[i], gen_on_delta, g, &cerr) != 0)) {
            snprintf(g->error, sizeof g->error, "%s", cerr.msg);
            rc = -1;
        }
        if (was || cp_in_reasoning(g->cp[i])) g->reasoning_tokens[i] += ev->n_tokens;
        if (g->req.stream && g->pend_nlp) { /* logprobs of tokens still held back */
            api_delta d = {0};
            d.logprobs = g->pend_lp;
            d.n_logprobs = g->pend_nlp;
            gen_sse(g, api_chunk_body_delta(&g->meta, i, &d));
        }
        g->pend_lp = NULL;
        g->pend_nlp = 0;
    }
    if (ev->finish != SCHED_FINISH_NONE) {
        g->done[i] = true;
        g->finish[i] = ev->finish;
        if (ev->finish == SCHED_FINISH_ERROR) {
            snprintf(g->error, sizeof g->error, "%s", ev->error[0] ? ev->error : "engine error");
            rc = -1;
        } else if (rc == 0) {
            rc = 1;
        }
    }
    return rc;
}

static void gen_usage(gen *g, api_usage *u) {
    memset(u, 0, sizeof *u);
    u->prompt_tokens = g->prompt_tokens;
    for (int i = 0; i < g->n; i++) {
        if (g->r[i]) u->completion_tokens += sched_req_usage(g->r[i]).completion_tokens;
        u->reasoning_tokens += g->reasoning_tokens[i];
    }
    g->h->prompt_tokens = u->prompt_tokens;
    g->h->completion_tokens = u->completion_tokens;
    if (g->r[0]) g->h->ttft = sched_req_usage(g->r[0]).ttft_s;
}

/* Non-streamed: waits for every choice, watching the socket, then answers at once. */
static enum MHD_Result gen_wait_and_answer(gen *g) {
    http_req *h = g->h;
    int remaining = g->n;
    double last_check = http_now();
    while (remaining > 0) {
        bool progress = false;
        for (int i = 0; i < g->n; i++) {
            if (g->done[i]) continue;
            sched_event ev;
            int rc = sched_next(g->r[i], &ev, remaining == 1 ? 0.25 : 0.02);
            if (rc == 1) {
                int t = gen_take(g, i, &ev);
                sched_event_free(&ev);
                progress = true;
                if (t != 0) remaining--;
                if (t < 0) {
                    api_error e;
                    api_fail(&e, 500, "server_error", NULL, NULL, "%s", g->error);
                    return http_send_error(h, &e);
                }
            } else if (rc < 0) {
                g->done[i] = true;
                remaining--;
            }
        }
        /* look at the socket every 100 ms, busy or not */
        double now = http_now();
        if ((!progress || now - last_check > 0.1) && (last_check = now, http_peer_gone(h->conn))) {
            srv_log(g->srv, LOG_INFO, "req %lld: client went away, cancelled", h->num);
            h->status = 499;
            return MHD_NO; /* gen_free cancels the requests */
        }
    }
    api_choice ch[API_MAX_N];
    api_choice_extra ex[API_MAX_N];
    api_tool_call *calls[API_MAX_N] = {0};
    bool oom = false;
    for (int i = 0; i < g->n; i++) {
        const tok_buf *text = g->cp[i] ? &g->parts[i].content : &g->text[i];
        ch[i].text = text->data ? text->data : "";
        ch[i].text_len = text->len;
        ch[i].finish_reason = gen_finish_reason(g, i);
        ch[i].logprobs = g->req.logprobs ? g->lps[i] : NULL;
        ch[i].n_logprobs = g->req.logprobs ? g->n_lps[i] : 0;
        memset(&ex[i], 0, sizeof ex[i]);
        const gen_parts *pt = &g->parts[i];
        ex[i].reasoning = pt->reasoning.data;
        ex[i].reasoning_len = pt->reasoning.len;
        if (pt->n_calls) {
            calls[i] = calloc(pt->n_calls, sizeof *calls[i]);
            oom |= !calls[i];
            for (size_t k = 0; calls[i] && k < pt->n_calls; k++) {
                calls[i][k].id = pt->calls[k].id;
                calls[i][k].name = pt->calls[k].name;
                calls[i][k].arguments = pt->calls[k].args.data ? pt->calls[k].args.data : "";
                calls[i][k].arguments_len = pt->calls[k].args.len;
            }
            ex[i].tool_calls = calls[i];
            ex[i].n_tool_calls = calls[i] ? pt->n_calls : 0;
        }
    }
    api_usage u;
    gen_usage(g, &u);
    char *body = oom ? NULL : api_response_body_ex(&g->meta, ch, ex, (size_t)g->n, &u);
    for (int i = 0; i < g->n; i++) free(calls[i]);
    if (!body) return http_error(h, 500, "server_error", NULL, NULL, "out of memory");
    return http_send(h, 200, body, "application/json");
}

/* Appends an SSE data line (takes ownership of json). */
static void gen_sse(gen *g, char *json) {
    if (!json) return;
    tok_buf_append(&g->out, "data: ", 6, NULL);
    tok_buf_append(&g->out, json, strlen(json), NULL);
    tok_buf_append(&g->out, "\n\n", 2, NULL);
    free(json);
}

/* Produces the next bytes of the stream into g->out; false when the stream is over. */
static bool gen_stream_more(gen *g) {
    const char *role = g->req.kind == API_CHAT ? "assistant" : NULL;
    if (g->phase == 0) {
        /* the first delta of each chat choice carries the role */
        if (role)
            for (int i = 0; i < g->n; i++)
                gen_sse(g, api_chunk_body(&g->meta, i, role, "", 0, NULL, NULL, 0));
        g->phase = 1;
        return true;
    }
    if (g->phase == 1) {
        bool all_done = true;
        for (int i = 0; i < g->n; i++) all_done = all_done && g->done[i];
        if (all_done) {
            g->phase = g->req.include_usage ? 2 : 3;
            return true;
        }
        /* wait for the next event of any choice, round robin */
        double t0 = http_now();
        while (http_now() - t0 < HTTP_KEEPALIVE_S) {
            for (int k = 0; k < g->n; k++) {
                int i = (g->next_choice + k) % g->n;
                if (g->done[i]) continue;
                sched_event ev;
                int rc = sched_next(g->r[i], &ev, g->n == 1 ? 0.5 : 0.02);
                if (rc == 0) continue;
                g->next_choice = (i + 1) % g->n;
                if (rc < 0) {
                    g->done[i] = true;
                    return true;
                }
                size_t before = g->text[i].len;
                size_t lp_before = g->n_lps[i];
                int t = gen_take(g, i, &ev);
                sched_event_free(&ev);
                if (t < 0) {
                    api_error e;
                    api_fail(&e, 500, "server_error", NULL, NULL, "%s", g->error);
                    gen_sse(g, api_error_body(&e));
                    for (int c = 0; c < g->n; c++) g->done[c] = true;
                    g->phase = 3;
                    return true;
                }
                size_t added = g->text[i].len - before;
                const api_token_logprob *lp = g->req.logprobs ? g->lps[i] + lp_before : NULL;
                size_t nlp = g->req.logprobs ? g->n_lps[i] - lp_before : 0;
                if (!g->cp[i] && (added || nlp)) /* chat text went out through the parser */
                    gen_sse(g, api_chunk_body(&g->meta, i, NULL, g->text[i].data + before, added,
                                              NULL, lp, nlp));
                if (t == 1)
                    gen_sse(g, api_chunk_body(&g->meta, i, NULL, NULL, 0, gen_finish_reason(g, i),
                                              NULL, 0));
                return true;
            }
            if (http_peer_gone(g->h->conn)) return false;
        }
        /* nothing for a while (a long prompt, a full queue): keep the connection alive */
        tok_buf_append(&g->out, ": keep-alive\n\n", 14, NULL);
        return true;
    }
    if (g->phase == 2) {
        api_usage u;
        gen_usage(g, &u);
        gen_sse(g, api_usage_chunk_body(&g->meta, &u));
        g->phase = 3;
        return true;
    }
    if (g->phase == 3) {
        if (!g->h->prompt_tokens) {
            api_usage u;
            gen_usage(g, &u);
        }
        tok_buf_append(&g->out, "data: [DONE]\n\n", 14, NULL);
        g->phase = 4;
        return true;
    }
    return false;
}

static ssize_t gen_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    gen *g = cls;
    (void)pos;
    while (g->out_off >= g->out.len) {
        g->out.len = 0;
        g->out_off = 0;
        if (!gen_stream_more(g))
            return g->phase == 4 ? MHD_CONTENT_READER_END_OF_STREAM
                                 : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = g->out.len - g->out_off;
    if (n > max) n = max;
    memcpy(buf, g->out.data + g->out_off, n);
    g->out_off += n;
    return (ssize_t)n;
}

static void gen_reader_free(void *cls) {
    gen_free(cls);
}

static enum MHD_Result route_generate(http_req *h, api_kind kind) {
    server *srv = h->srv;
    gen *g = calloc(1, sizeof *g);
    if (!g) return http_error(h, 500, "server_error", NULL, NULL, "out of memory");
    g->srv = srv;
    g->h = h;
    atomic_fetch_add(&srv->active, 1);
    api_error err;
    if (api_parse_request(kind, h->body ? h->body : "", h->len, srv->e->m->hp.n_vocab, &g->req,
                          &err) != 0) {
        gen_free(g);
        return http_send_error(h, &err);
    }
    if (strcmp(g->req.model, srv->model_id) != 0) {
        api_fail(&err, 404, "invalid_request_error", "model_not_found", "model",
                 "The model `%s` does not exist or you do not have access to it.", g->req.model);
        gen_free(g);
        return http_send_error(h, &err);
    }
    g->req.add_generation_prompt = true;
    api_meta_init(&g->meta, kind, srv->model_id);
    if (gen_submit(g, &err) != 0) {
        gen_free(g);
        return http_send_error(h, &err);
    }
    if (!g->req.stream) {
        enum MHD_Result rc = gen_wait_and_answer(g);
        gen_free(g);
        return rc;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, gen_reader, g, gen_reader_free);
    if (!r) {
        gen_free(g);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    http_cors(srv, h->conn, r);
    h->status = 200;
    enum MHD_Result ok = MHD_queue_response(h->conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- other routes ---- */

static cJSON *route_model_object(const server *srv) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", srv->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)srv->created);
    cJSON_AddStringToObject(m, "owned_by", "chatd");
    return m;
}

static enum MHD_Result route_models(http_req *h, const char *id) {
    server *srv = h->srv;
    if (id) {
        if (strcmp(id, srv->model_id) != 0) {
            api_error e;
            api_fail(&e, 404, "invalid_request_error", "model_not_found", "model",
                     "The model `%s` does not exist or you do not have access to it.", id);
            return http_send_error(h, &e);
        }
        return http_send_json(h, 200, route_model_object(srv));
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON_AddItemToArray(data, route_model_object(srv));
    return http_send_json(h, 200, o);
}

static enum MHD_Result route_health(http_req *h) {
    server *srv = h->srv;
    if (!atomic_load(&srv->ready))
        return http_error(h, 503, "unavailable_error", "model_loading", NULL,
                          "The model is loading; try again shortly.");
    sched_stats st = sched_get_stats(srv->s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", atomic_load(&srv->stopping) ? "stopping" : "ok");
    cJSON_AddStringToObject(o, "model", srv->model_id);
    cJSON_AddNumberToObject(o, "requests_queued", (double)st.queued);
    cJSON_AddNumberToObject(o, "requests_running", (double)st.running);
    cJSON_AddNumberToObject(o, "requests_completed", (double)st.completed);
    cJSON_AddNumberToObject(o, "requests_cancelled", (double)st.cancelled);
    cJSON_AddNumberToObject(o, "kv_blocks_used", (double)st.kv_blocks_used);
    cJSON_AddNumberToObject(o, "kv_blocks_total", (double)st.kv_blocks_total);
    return http_send_json(h, 200, o);
}

/* Parses the body as a JSON object or answers 400. */
static cJSON *route_body_object(http_req *h, enum MHD_Result *ret) {
    cJSON *j = h->body ? cJSON_ParseWithLength(h->body, h->len) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *ret = http_error(h, 400, "invalid_request_error", NULL, NULL,
                          "We could not parse the JSON body of your request.");
        return NULL;
    }
    return j;
}

/* A piece as llama.cpp's /tokenize gives it: a string, or its bytes when not UTF-8. */
static cJSON *route_piece(const char *p, size_t n) {
    size_t i = 0;
    bool valid = true;
    while (i < n && valid) {
        unsigned char c = (unsigned char)p[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) valid = false;
        for (size_t j = 1; valid && j < k; j++)
            if (((unsigned char)p[i + j] >> 6) != 2) valid = false;
        i += k ? k : 1;
    }
    if (valid) {
        char *s = malloc(n + 1);
        if (!s) return cJSON_CreateNull();
        memcpy(s, p, n);
        s[n] = 0;
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t k = 0; k < n; k++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((unsigned char)p[k]));
    return arr;
}

/* A chat body of /tokenize or /apply-template (model optional, add_generation_prompt
 * default true) as a validated request; j is consumed. */
static int route_chat_body(http_req *h, cJSON *j, api_request *req, api_error *err) {
    server *srv = h->srv;
    const cJSON *agp = cJSON_GetObjectItem(j, "add_generation_prompt");
    bool add_gen = !agp || cJSON_IsTrue(agp);
    cJSON_DeleteItemFromObject(j, "add_generation_prompt");
    cJSON_DeleteItemFromObject(j, "with_pieces");
    if (!cJSON_GetObjectItem(j, "model")) cJSON_AddStringToObject(j, "model", srv->model_id);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return api_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    int rc = api_parse_request(API_CHAT, s, strlen(s), srv->e->m->hp.n_vocab, req, err);
    free(s);
    if (rc == 0) req->add_generation_prompt = add_gen;
    return rc;
}

static enum MHD_Result route_tokenize(http_req *h) {
    server *srv = h->srv;
    enum MHD_Result ret = MHD_NO;
    cJSON *j = route_body_object(h, &ret);
    if (!j) return ret;
    tok_ids ids = {0};
    chatd_error cerr = {{0}};
    api_error err;
    int rc = 0;
    bool with_pieces = cJSON_IsTrue(cJSON_GetObjectItem(j, "with_pieces"));
    const cJSON *content = cJSON_GetObjectItem(j, "content");
    if (cJSON_GetObjectItem(j, "messages")) {
        /* a chat body: the exact prompt ids the model will be fed */
        api_request req;
        rc = route_chat_body(h, j, &req, &err);
        j = NULL;
        if (rc == 0) {
            rc = prompt_chat(srv, &req, &ids, NULL, &err);
            api_request_free(&req);
        }
        if (rc != 0) {
            cJSON_Delete(j);
            tok_ids_free(&ids);
            return http_send_error(h, &err);
        }
    } else if (cJSON_IsString(content)) {
        const cJSON *as = cJSON_GetObjectItem(j, "add_special");
        const cJSON *ps = cJSON_GetObjectItem(j, "parse_special");
        bool add = cJSON_IsTrue(as), parse = ps ? cJSON_IsTrue(ps) : true;
        rc = tok_encode(srv->e->tok, content->valuestring, strlen(content->valuestring), add, parse,
                        &ids, &cerr);
    } else {
        cJSON_Delete(j);
        return http_error(h, 400, "invalid_request_error", "missing_required_parameter", "content",
                          "'content' (a string) or 'messages' is required.");
    }
    cJSON_Delete(j);
    if (rc != 0) {
        tok_ids_free(&ids);
        return http_error(h, 400, "invalid_request_error", NULL, "content", cerr.msg);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < ids.n; i++) {
        if (!with_pieces) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids.v[i]));
            continue;
        }
        size_t n = 0;
        const char *p = tok_piece(srv->e->tok, ids.v[i], true, &n);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", ids.v[i]);
        cJSON_AddItemToObject(e, "piece", route_piece(p ? p : "", p ? n : 0));
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddNumberToObject(o, "count", (double)ids.n);
    tok_ids_free(&ids);
    return http_send_json(h, 200, o);
}

static enum MHD_Result route_detokenize(http_req *h) {
    server *srv = h->srv;
    enum MHD_Result ret = MHD_NO;
    cJSON *j = route_body_object(h, &ret);
    if (!j) return ret;
    const cJSON *toks = cJSON_GetObjectItem(j, "tokens");
    if (!cJSON_IsArray(toks)) {
        cJSON_Delete(j);
        return http_error(h, 400, "invalid_request_error", "missing_required_parameter", "tokens",
                          "'tokens' (an array of token ids) is required.");
    }
    tok_ids ids = {0};
    const cJSON *t;
    cJSON_ArrayForEach(t, toks) {
        if (!cJSON_IsNumber(t) || t->valuedouble < 0 ||
            t->valuedouble >= tok_n_vocab(srv->e->tok) || t->valuedouble != floor(t->valuedouble)) {
            cJSON_Delete(j);
            tok_ids_free(&ids);
            return http_error(h, 400, "invalid_request_error", "invalid_value", "tokens",
                              "Every token must be an id of this model's vocabulary.");
        }
        tok_ids_push(&ids, (int32_t)t->valuedouble, NULL);
    }
    cJSON_Delete(j);
    tok_buf out = {0};
    chatd_error cerr = {{0}};
    int rc = tok_decode(srv->e->tok, ids.v, ids.n, TOK_DECODE_LLAMA, &out, &cerr);
    tok_ids_free(&ids);
    if (rc != 0) {
        tok_buf_free(&out);
        return http_error(h, 400, "invalid_request_error", NULL, "tokens", cerr.msg);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "content", route_piece(out.data ? out.data : "", out.len));
    tok_buf_free(&out);
    return http_send_json(h, 200, o);
}

static enum MHD_Result route_apply_template(http_req *h) {
    server *srv = h->srv;
    enum MHD_Result ret = MHD_NO;
    cJSON *j = route_body_object(h, &ret);
    if (!j) return ret;
    api_request req;
    api_error err;
    if (route_chat_body(h, j, &req, &err) != 0) return http_send_error(h, &err);
    char *text = NULL;
    tok_ids ids = {0};
    int rc = prompt_chat(srv, &req, &ids, &text, &err);
    api_request_free(&req);
    tok_ids_free(&ids);
    if (rc != 0) return http_send_error(h, &err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", text ? text : "");
    free(text);
    return http_send_json(h, 200, o);
}

/* ---- dispatch ---- */

typedef enum route_id {
    R_NONE,
    R_CHAT,
    R_COMPLETIONS,
    R_MODELS,
    R_MODEL,
    R_HEALTH,
    R_TOKENIZE,
    R_DETOKENIZE,
    R_APPLY_TEMPLATE
} route_id;

/* Maps a path to a route and its method; every path also answers without /v1. */
static route_id http_route(const char *url, const char **method, const char **arg) {
    *arg = NULL;
    if (!strncmp(url, "/v1/", 4)) url += 3;
    if (!strcmp(url, "/chat/completions")) return *method = "POST", R_CHAT;
    if (!strcmp(url, "/completions")) return *method = "POST", R_COMPLETIONS;
    if (!strcmp(url, "/models")) return *method = "GET", R_MODELS;
    if (!strncmp(url, "/models/", 8) && url[8]) {
        *arg = url + 8;
        return *method = "GET", R_MODEL;
    }
    if (!strcmp(url, "/health")) return *method = "GET", R_HEALTH;
    if (!strcmp(url, "/tokenize")) return *method = "POST", R_TOKENIZE;
    if (!strcmp(url, "/detokenize")) return *method = "POST", R_DETOKENIZE;
    if (!strcmp(url, "/apply-template")) return *method = "POST", R_APPLY_TEMPLATE;
    return R_NONE;
}

static enum MHD_Result http_dispatch(http_req *h, const char *url, const char *method) {
    server *srv = h->srv;
    const char *want = NULL, *arg = NULL;
    route_id r = http_route(url, &want, &arg);
    h->route = url;
    if (!strcmp(method, "OPTIONS")) {
        /* CORS preflight */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        http_cors(srv, h->conn, resp);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        h->status = 204;
        enum MHD_Result ok = MHD_queue_response(h->conn, 204, resp);
        MHD_destroy_response(resp);
        return ok;
    }
    if (r == R_NONE) {
        char msg[512];
        snprintf(msg, sizeof msg, "Invalid URL (%s %s)", method, url);
        return http_error(h, 404, "invalid_request_error", "unknown_url", NULL, msg);
    }
    if (strcmp(method, want) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "Method %s is not allowed for %s; use %s.", method, url, want);
        return http_error(h, 405, "invalid_request_error", "method_not_allowed", NULL, msg);
    }
    if (r != R_HEALTH && srv->api_key) {
        const char *auth = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Authorization");
        const char *key = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : NULL;
        if (!http_key_ok(srv->api_key, key))
            return http_error(h, 401, "invalid_request_error", "invalid_api_key", NULL,
                              key ? "Incorrect API key provided."
                                  : "You didn't provide an API key. You need to provide your API "
                                    "key in an Authorization header using Bearer auth (i.e. "
                                    "Authorization: Bearer YOUR_KEY).");
    }
    if (r == R_HEALTH) return route_health(h);
    if (!atomic_load(&srv->ready))
        return http_error(h, 503, "unavailable_error", "model_loading", NULL,
                          "The model is loading; try again shortly.");
    if (atomic_load(&srv->stopping))
        return http_error(h, 503, "unavailable_error", "server_shutting_down", NULL,
                          "The server is shutting down.");
    if (!strcmp(want, "POST")) {
        const char *ct = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Content-Type");
        if (!ct || strncasecmp(ct, "application/json", 16) != 0)
            return http_error(h, 400, "invalid_request_error", "invalid_content_type", NULL,
                              "Invalid Content-Type header: expected application/json.");
    }
    switch (r) {
    case R_CHAT:
        return route_generate(h, API_CHAT);
    case R_COMPLETIONS:
        return route_generate(h, API_COMPLETION);
    case R_MODELS:
        return route_models(h, NULL);
    case R_MODEL:
        return route_models(h, arg);
    case R_TOKENIZE:
        return route_tokenize(h);
    case R_DETOKENIZE:
        return route_detokenize(h);
    case R_APPLY_TEMPLATE:
        return route_apply_template(h);
    default:
        return MHD_NO;
    }
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls) {
    server *srv = cls;
    http_req *h = *con_cls;
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h) return MHD_NO;
        h->srv = srv;
        h->conn = c;
        h->t_start = http_now();
        h->num = atomic_fetch_add(&srv->next_id, 1) + 1;
        h->route = url;
        *con_cls = h;
        /* refuse an announced oversized body before reading it */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > srv->cfg->body_limit) {
            h->too_large = true;
            return http_error(h, 413, "invalid_request_error", "request_too_large", NULL,
                              "The request body is too large.");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!h->too_large) {
            if (h->len + *upload_size > (size_t)srv->cfg->body_limit) {
                h->too_large = true;
            } else {
                if (h->len + *upload_size + 1 > h->cap) {
                    size_t cap = h->cap ? h->cap : 4096;
                    while (cap < h->len + *upload_size + 1) cap *= 2;
                    char *b = realloc(h->body, cap);
                    if (!b) return MHD_NO;
                    h->body = b;
                    h->cap = cap;
                }
                memcpy(h->body + h->len, upload, *upload_size);
                h->len += *upload_size;
                h->body[h->len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (h->status) return MHD_YES; /* already answered (413 before the upload) */
    if (h->too_large)
        return http_error(h, 413, "invalid_request_error", "request_too_large", NULL,
                          "The request body is too large.");
    return http_dispatch(h, url, method);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
    server *srv = cls;
    http_req *h = *con_cls;
    if (!h) return;
    double dur = http_now() - h->t_start;
    /* readiness probes while the model loads are expected, not worth a warning */
    bool loading = h->status == 503 && !atomic_load(&srv->ready);
    srv_log(srv, h->status >= 500 && !loading ? LOG_WARN : LOG_INFO,
            "req %lld %s status=%d prompt_tokens=%lld completion_tokens=%lld ttft=%.3fs "
            "duration=%.3fs%s",
            h->num, h->route ? h->route : "-", h->status ? h->status : 499,
            (long long)h->prompt_tokens, (long long)h->completion_tokens, h->ttft, dur,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    free(h->body);
    free(h);
    *con_cls = NULL;
}

int http_start(server *srv, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, srv->cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)srv->cfg->port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, srv->cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)srv->cfg->port);
        flags |= MHD_USE_IPv6;
        sl = sizeof *a6;
    } else {
        snprintf(err, errlen, "host '%s' is not an IPv4 or IPv6 address", srv->cfg->host);
        return -1;
    }
    (void)sl;
    srv->daemon =
        MHD_start_daemon(flags, (uint16_t)srv->cfg->port, NULL, NULL, http_access, srv,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
                         http_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not allowed)", srv->cfg->host,
                 srv->cfg->port);
        return -1;
    }
    return 0;
}

void http_quiesce(server *srv) {
    if (!srv->daemon) return;
    /* the listening socket is handed back to us to close */
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void http_stop(server *srv) {
    /* let answers in flight (final chunks after a shutdown) reach their clients first */
    for (int i = 0; i < 500 && atomic_load(&srv->active) > 0; i++) usleep(10000);
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
