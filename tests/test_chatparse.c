/* test_chatparse.c - the parser of generated chat text (server/chatparse.c): a table of
 * hand-written model outputs for every tool-call format and the reasoning split, each
 * fed whole, byte by byte, cut in two at every position and in random pieces, with and
 * without live arguments, and compared with the expected deltas; malformed calls must
 * come back as the text the model wrote. Then the format detection on excerpts of the
 * real templates, the tools prompt (whose call syntax must parse), what is emitted
 * before the output ends, ids, errors, and random soups of markup fragments. */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatparse.h"

#define R1_CB "<｜tool▁calls▁begin｜>"
#define R1_CE "<｜tool▁calls▁end｜>"
#define R1_B  "<｜tool▁call▁begin｜>"
#define R1_E  "<｜tool▁call▁end｜>"
#define R1_S  "<｜tool▁sep｜>"

#define F_TOOLS  1u /* parse_tools */
#define F_REASON 2u /* split_reasoning */
#define F_OPEN   4u /* thinking_open */

/* Expected output: text deltas merged per kind, "[[C]]" content, "[[R]]" reasoning,
 * "[[S<i> <name>]]" a call's start, "[[A<i>]]" its arguments. */
typedef struct fixture {
    const char *name;
    cp_format fmt;
    unsigned flags;
    const char *in;
    const char *want;      /* without live_args */
    const char *want_live; /* with live_args; NULL = the same as want */
} fixture;

#define WEATHER      "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"
#define WEATHER_ARGS "{\"city\": \"Paris\"}"
#define TIME         "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\", \"n\": [1, -2.5e3]}}"
#define TIME_ARGS    "{\"tz\": \"CET\", \"n\": [1, -2.5e3]}"

static const fixture k_fixtures[] = {
    /* ---- reasoning ---- */
    {"reason/only", CP_FMT_NONE, F_REASON, "<think>\nI should greet.\n</think>",
     "[[R]]I should greet.", NULL},
    {"reason/and-content", CP_FMT_NONE, F_REASON,
     "<think>\nHmm.\n\nOk then.  \n</think>\n\nHello there.",
     "[[R]]Hmm.\n\nOk then.[[C]]Hello there.", NULL},
    {"reason/leading-space", CP_FMT_NONE, F_REASON, " \n<think>x</think>y", "[[R]]x[[C]]y", NULL},
    {"reason/content-only", CP_FMT_NONE, F_REASON, "Hello <b>world</b> </think>\n",
     "[[C]]Hello <b>world</b> </think>\n", NULL},
    {"reason/open", CP_FMT_NONE, F_REASON | F_OPEN, "\nI think.\n</think>\n\nAnswer",
     "[[R]]I think.[[C]]Answer", NULL},
    {"reason/cut-in-tag", CP_FMT_NONE, F_REASON, "<think>\nPartial thought </thi",
     "[[R]]Partial thought </thi", NULL},
    {"reason/cut-in-space", CP_FMT_NONE, F_REASON, "<think>\nPartial \n", "[[R]]Partial", NULL},
    {"reason/not-think", CP_FMT_NONE, F_REASON, "<thinking>abc", "[[C]]<thinking>abc", NULL},
    {"reason/short", CP_FMT_NONE, F_REASON, " <thi", "[[C]] <thi", NULL},
    {"reason/empty", CP_FMT_NONE, F_REASON, "<think>\n\n</think>\n\nHi", "[[C]]Hi", NULL},
    {"reason/near-tags", CP_FMT_NONE, F_REASON, "<think>a </ b <</think></think>c",
     "[[R]]a </ b <[[C]]</think>c", NULL},
    {"reason/not-at-start", CP_FMT_NONE, F_REASON, "Hi <think>x</think>",
     "[[C]]Hi <think>x</think>", NULL},
    {"reason/off", CP_FMT_HERMES, F_TOOLS, "<think>a</think>b", "[[C]]<think>a</think>b", NULL},
    {"reason/empty-output", CP_FMT_NONE, F_REASON, "", "", NULL},
    {"reason/multibyte", CP_FMT_NONE, F_REASON, "<think>Überlegung… 思考</think>答え",
     "[[R]]Überlegung… 思考[[C]]答え", NULL},

    /* ---- HERMES (Qwen2.5, Qwen3) ---- */
    {"hermes/content", CP_FMT_HERMES, F_TOOLS, "The weather is <b>nice</b>.\n\n",
     "[[C]]The weather is <b>nice</b>.\n\n", NULL},
    {"hermes/one", CP_FMT_HERMES, F_TOOLS, "<tool_call>\n" WEATHER "\n</tool_call>",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"hermes/two", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>\n" WEATHER "\n</tool_call>\n<tool_call>\n" TIME "\n</tool_call>\n",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[S1 get_time]][[A1]]" TIME_ARGS, NULL},
    {"hermes/content-then-call", CP_FMT_HERMES, F_TOOLS,
     "Let me check.\n<tool_call>\n" WEATHER "\n</tool_call>",
     "[[C]]Let me check.[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"hermes/call-then-content", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>" WEATHER "</tool_call>\nDone.",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[C]]\nDone.", NULL},
    {"hermes/reasoning-then-call", CP_FMT_HERMES, F_TOOLS | F_REASON,
     "<think>\nThe user wants weather.\n</think>\n\n<tool_call>\n" WEATHER "\n</tool_call>",
     "[[R]]The user wants weather.[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"hermes/open-reasoning-then-call", CP_FMT_HERMES, F_TOOLS | F_REASON | F_OPEN,
     "Weather.\n</think>\n\n<tool_call>\n" WEATHER "\n</tool_call>",
     "[[R]]Weather.[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"hermes/compact", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>", "[[S0 f]][[A0]]{}", NULL},
    {"hermes/args-before-name", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"arguments\": {\"a\": [1, 2.5e3, null, true, false, {}]}, \"id\": 7, "
     "\"name\": \"f\"}</tool_call>",
     "[[S0 f]][[A0]]{\"a\": [1, 2.5e3, null, true, false, {}]}", NULL},
    {"hermes/string-args", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1, \\\"b\\\": \\\"x\\\"}\"}"
     "</tool_call>",
     "[[S0 f]][[A0]]{\"a\": 1, \"b\": \"x\"}", NULL},
    {"hermes/tricky-strings", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"echo\", \"arguments\": {\"t\": \"a } </tool_call> \\\"q\\\" "
     "\\u00e9\\\\\"}}</tool_call>",
     "[[S0 echo]][[A0]]{\"t\": \"a } </tool_call> \\\"q\\\" \\u00e9\\\\\"}", NULL},
    {"hermes/parameters-key", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"parameters\": {\"x\": 1}}</tool_call>",
     "[[S0 f]][[A0]]{\"x\": 1}", NULL},
    {"hermes/close-cut-off", CP_FMT_HERMES, F_TOOLS, "<tool_call>\n" WEATHER "\n</tool_",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"hermes/tools-off", CP_FMT_HERMES, 0, "<tool_call>" WEATHER "</tool_call>",
     "[[C]]<tool_call>" WEATHER "</tool_call>", NULL},
    {"hermes/marker-in-text", CP_FMT_HERMES, F_TOOLS, "Use <tool_call> tags.",
     "[[C]]Use <tool_call> tags.", NULL},
    {"hermes/partial-marker-at-end", CP_FMT_HERMES, F_TOOLS, "a <tool_ca", "[[C]]a <tool_ca", NULL},
    {"hermes/bad-json", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1,}}\n</tool_call>",
     "[[C]]<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1,}}\n</tool_call>",
     "[[S0 f]][[A0]]{\"a\": 1,[[C]]}}\n</tool_call>"},
    {"hermes/missing-name", CP_FMT_HERMES, F_TOOLS,
     "Hi\n<tool_call>{\"arguments\": {\"a\": 1}}</tool_call>",
     "[[C]]Hi\n<tool_call>{\"arguments\": {\"a\": 1}}</tool_call>", NULL},
    {"hermes/unterminated", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": ",
     "[[C]]<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": ", "[[S0 f]][[A0]]{\"a\": "},
    {"hermes/garbage-after", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"arguments\": {}} oops</tool_call>",
     "[[C]]<tool_call>{\"name\": \"f\", \"arguments\": {}} oops</tool_call>",
     "[[S0 f]][[A0]]{}[[C]] oops</tool_call>"},
    {"hermes/garbage-before", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>call {\"name\": \"f\", \"arguments\": {}}</tool_call>",
     "[[C]]<tool_call>call {\"name\": \"f\", \"arguments\": {}}</tool_call>", NULL},
    {"hermes/name-not-string", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>",
     "[[C]]<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>", NULL},
    {"hermes/args-not-object", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",
     "[[C]]<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>", NULL},
    {"hermes/string-args-not-json", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"arguments\": \"hello\"}</tool_call>",
     "[[C]]<tool_call>{\"name\": \"f\", \"arguments\": \"hello\"}</tool_call>", NULL},
    {"hermes/bad-then-good", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{bad}</tool_call>\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
     "[[C]]<tool_call>{bad}</tool_call>[[S0 f]][[A0]]{}", NULL},
    {"hermes/content-between", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\nAnd also:\n"
     "<tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>\n\n",
     "[[S0 f]][[A0]]{}[[C]]\nAnd also:[[S1 g]][[A1]]{}", NULL},
    {"hermes/duplicate-name", CP_FMT_HERMES, F_TOOLS,
     "<tool_call>{\"name\": \"f\", \"name\": \"g\", \"arguments\": {}}</tool_call>",
     "[[C]]<tool_call>{\"name\": \"f\", \"name\": \"g\", \"arguments\": {}}</tool_call>", NULL},

    /* ---- LLAMA3 (Llama 3.1 / 3.2) ---- */
    {"llama3/one", CP_FMT_LLAMA3, F_TOOLS,
     "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"llama3/python-tag", CP_FMT_LLAMA3, F_TOOLS, "<|python_tag|>" WEATHER,
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"llama3/two", CP_FMT_LLAMA3, F_TOOLS, "\n" WEATHER "; " TIME "\n",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[S1 get_time]][[A1]]" TIME_ARGS, NULL},
    {"llama3/content", CP_FMT_LLAMA3, F_TOOLS, "The weather in Paris is {sunny}.",
     "[[C]]The weather in Paris is {sunny}.", NULL},
    {"llama3/json-not-a-call", CP_FMT_LLAMA3, F_TOOLS, "{\"answer\": 42}", "[[C]]{\"answer\": 42}",
     NULL},
    {"llama3/not-python-tag", CP_FMT_LLAMA3, F_TOOLS, "<|python|>x", "[[C]]<|python|>x", NULL},
    {"llama3/bad-json", CP_FMT_LLAMA3, F_TOOLS, "{\"name\": \"f\", \"parameters\": {\"a\" 1}}",
     "[[C]]{\"name\": \"f\", \"parameters\": {\"a\" 1}}", "[[S0 f]][[A0]]{\"a\" [[C]]1}}"},
    {"llama3/missing-name", CP_FMT_LLAMA3, F_TOOLS, "{\"parameters\": {}}",
     "[[C]]{\"parameters\": {}}", NULL},
    {"llama3/unterminated", CP_FMT_LLAMA3, F_TOOLS, "{\"name\": \"f\", \"parameters\": {\"a\": 1",
     "[[C]]{\"name\": \"f\", \"parameters\": {\"a\": 1", "[[S0 f]][[A0]]{\"a\": 1"},
    {"llama3/garbage-after", CP_FMT_LLAMA3, F_TOOLS,
     "{\"name\": \"f\", \"parameters\": {}} and more",
     "[[C]]{\"name\": \"f\", \"parameters\": {}} and more", "[[S0 f]][[A0]]{}[[C]] and more"},
    {"llama3/second-call-bad", CP_FMT_LLAMA3, F_TOOLS, WEATHER "; {\"name\": \"g\"}",
     "[[C]]" WEATHER "; {\"name\": \"g\"}",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[C]]; {\"name\": \"g\"}"},

    {"llama3/args-before-name", CP_FMT_LLAMA3, F_TOOLS,
     "<|python_tag|> {\"parameters\": {\"q\": \"x\"}, \"name\": \"search\"}",
     "[[S0 search]][[A0]]{\"q\": \"x\"}", NULL},
    {"llama3/reasoning-then-call", CP_FMT_LLAMA3, F_TOOLS | F_REASON,
     "<think>\nhm\n</think>\n\n" WEATHER, "[[R]]hm[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},

    /* ---- R1 (DeepSeek R1) ---- */
    {"r1/one", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "get_weather\n```json\n" WEATHER_ARGS "\n```" R1_E R1_CE,
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"r1/reasoning-content-call", CP_FMT_R1, F_TOOLS | F_REASON,
     "<think>\nLook it up.\n</think>\n\nLet me look." R1_CB R1_B "function" R1_S
     "get_weather\n```json\n" WEATHER_ARGS "\n```" R1_E R1_CE,
     "[[R]]Look it up.[[C]]Let me look.[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"r1/two", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "get_weather\n```json\n" WEATHER_ARGS "\n```" R1_E "\n" R1_B
                "function" R1_S "get_time\n```json\n" TIME_ARGS "\n```" R1_E R1_CE,
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[S1 get_time]][[A1]]" TIME_ARGS, NULL},
    {"r1/content-after", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "f\n```json\n{}\n```" R1_E R1_CE "Done.",
     "[[S0 f]][[A0]]{}[[C]]Done.", NULL},
    {"r1/no-block-opener", CP_FMT_R1, F_TOOLS, R1_B "function" R1_S "f\n```json\n{}\n```" R1_E,
     "[[S0 f]][[A0]]{}", NULL},
    {"r1/lenient", CP_FMT_R1, F_TOOLS,
     R1_CB "\n" R1_B "function" R1_S " f \n{\"a\":1}\n" R1_E "\n" R1_CE, "[[S0 f]][[A0]]{\"a\":1}",
     NULL},
    {"r1/block-end-cut-off", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "f\n```json\n{}\n```" R1_E "\n<｜tool▁ca", "[[S0 f]][[A0]]{}",
     NULL},
    {"r1/content", CP_FMT_R1, F_TOOLS, "Just text, <｜no｜> call.",
     "[[C]]Just text, <｜no｜> call.", NULL},
    {"r1/bad-json", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "f\n```json\n{\"a\": }\n```" R1_E R1_CE,
     "[[C]]" R1_CB R1_B "function" R1_S "f\n```json\n{\"a\": }\n```" R1_E R1_CE,
     "[[S0 f]][[A0]]{\"a\": [[C]]}\n```" R1_E R1_CE},
    {"r1/missing-name", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "\n```json\n{}\n```" R1_E R1_CE,
     "[[C]]" R1_CB R1_B "function" R1_S "\n```json\n{}\n```" R1_E R1_CE, NULL},
    {"r1/unterminated", CP_FMT_R1, F_TOOLS,
     "Hi " R1_CB R1_B "function" R1_S "f\n```json\n{\"a\": [1",
     "[[C]]Hi " R1_CB R1_B "function" R1_S "f\n```json\n{\"a\": [1",
     "[[C]]Hi[[S0 f]][[A0]]{\"a\": [1"},
    {"r1/garbage-after", CP_FMT_R1, F_TOOLS,
     R1_CB R1_B "function" R1_S "f\n```json\n{}\n```oops" R1_E R1_CE,
     "[[C]]" R1_CB R1_B "function" R1_S "f\n```json\n{}\n```oops" R1_E R1_CE,
     "[[S0 f]][[A0]]{}[[C]]\n```oops" R1_E R1_CE},
    {"r1/empty-block", CP_FMT_R1, F_TOOLS, R1_CB R1_CE, "[[C]]" R1_CB R1_CE, NULL},

    /* ---- GENERIC ---- */
    {"generic/one", CP_FMT_GENERIC, F_TOOLS, WEATHER, "[[S0 get_weather]][[A0]]" WEATHER_ARGS,
     NULL},
    {"generic/two-lines", CP_FMT_GENERIC, F_TOOLS, WEATHER "\n" TIME "\n",
     "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[S1 get_time]][[A1]]" TIME_ARGS, NULL},
    {"generic/reasoning-then-call", CP_FMT_GENERIC, F_TOOLS | F_REASON,
     "<think>ok</think>\n" WEATHER, "[[R]]ok[[S0 get_weather]][[A0]]" WEATHER_ARGS, NULL},
    {"generic/content", CP_FMT_GENERIC, F_TOOLS, "Sure! Here it is.", "[[C]]Sure! Here it is.",
     NULL},
    {"generic/python-tag-is-content", CP_FMT_GENERIC, F_TOOLS, "<|python_tag|>" WEATHER,
     "[[C]]<|python_tag|>" WEATHER, NULL},
    {"generic/bad-json", CP_FMT_GENERIC, F_TOOLS, "{\"name\": \"f\", \"arguments\": {'a': 1}}",
     "[[C]]{\"name\": \"f\", \"arguments\": {'a': 1}}", "[[S0 f]][[A0]]{[[C]]'a': 1}}"},
    {"generic/missing-name", CP_FMT_GENERIC, F_TOOLS, "{\"arguments\": {}, \"nam\": \"f\"}",
     "[[C]]{\"arguments\": {}, \"nam\": \"f\"}", NULL},
    {"generic/unterminated", CP_FMT_GENERIC, F_TOOLS, "{\"name\": \"f\", \"argu",
     "[[C]]{\"name\": \"f\", \"argu", NULL},
    {"generic/garbage-after", CP_FMT_GENERIC, F_TOOLS, WEATHER " That's it.",
     "[[C]]" WEATHER " That's it.", "[[S0 get_weather]][[A0]]" WEATHER_ARGS "[[C]] That's it."},
};

/* Argument values and whether they are valid JSON (RFC 8259), for the strict recognizer:
 * a GENERIC call with {"v": VALUE} as arguments must be a call exactly when valid. */
static const struct {
    const char *value;
    bool valid;
} k_json[] = {
    {"0", true},
    {"-0.5E-3", true},
    {"1e+9", true},
    {"12.50", true},
    {"\"\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\\"", true},
    {"[]", true},
    {"[1, [2, {}], \"x\"]", true},
    {"{\"a\": {\"b\": null}}", true},
    {"true", true},
    {"false", true},
    {"null", true},
    {"\"\"", true},
    {"01", false},
    {"1.", false},
    {"-", false},
    {".5", false},
    {"+1", false},
    {"1e+", false},
    {"0x1F", false},
    {"tru", false},
    {"nul", false},
    {"True", false},
    {"\"\\u12G4\"", false},
    {"\"\\x41\"", false},
    {"\"a\tb\"", false},
    {"[1,]", false},
    {"[1 2]", false},
    {"{\"a\" 1}", false},
    {"{\"a\": 1,}", false},
    {"{a: 1}", false},
    {"'x'", false},
    {"[", false},
    {"NaN", false},
    {"1 2", false},
};

/* ---- collecting deltas ---- */

typedef struct rec {
    char *s;
    size_t n, cap;
    int last_kind, last_index;
    char ids[64][40];
    int n_ids;
    bool bad;     /* a malformed delta (bad id, empty text, wrong index) */
    int abort_at; /* return non-zero at this delta (1-based); 0 = never */
    int n_deltas;
} rec;

static void rec_put(rec *r, const char *s, size_t n) {
    if (r->n + n + 1 > r->cap) {
        r->cap = (r->n + n + 1) * 2;
        char *t = realloc(r->s, r->cap);
        if (!t) abort();
        r->s = t;
    }
    memcpy(r->s + r->n, s, n);
    r->n += n;
    r->s[r->n] = 0;
}

static int rec_emit(void *user, const cp_delta *d) {
    rec *r = user;
    r->n_deltas++;
    char tag[300];
    if (d->kind == CP_TOOL_START) {
        bool ok = d->id && strlen(d->id) == 29 && !strncmp(d->id, "call_", 5) && d->name &&
                  d->index == r->n_ids && r->n_ids < 64;
        for (int i = 5; ok && i < 29; i++) {
            char c = d->id[i];
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        }
        for (int i = 0; ok && i < r->n_ids; i++) ok = strcmp(r->ids[i], d->id) != 0;
        if (!ok) {
            r->bad = true;
        } else {
            snprintf(r->ids[r->n_ids++], sizeof r->ids[0], "%s", d->id);
        }
        snprintf(tag, sizeof tag, "[[S%d %s]]", d->index, d->name ? d->name : "(null)");
        rec_put(r, tag, strlen(tag));
        r->last_kind = -1;
    } else {
        if (!d->text || d->len == 0) r->bad = true;
        if (d->kind == CP_TOOL_ARGS && d->index != r->n_ids - 1) r->bad = true;
        if ((int)d->kind != r->last_kind || d->index != r->last_index) {
            if (d->kind == CP_CONTENT)
                snprintf(tag, sizeof tag, "[[C]]");
            else if (d->kind == CP_REASONING)
                snprintf(tag, sizeof tag, "[[R]]");
            else
                snprintf(tag, sizeof tag, "[[A%d]]", d->index);
            rec_put(r, tag, strlen(tag));
        }
        if (d->text) rec_put(r, d->text, d->len);
        r->last_kind = (int)d->kind;
        r->last_index = d->index;
    }
    return r->abort_at && r->n_deltas == r->abort_at;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static cp_options make_opts(cp_format fmt, unsigned flags, bool live) {
    cp_options o = {.fmt = fmt,
                    .parse_tools = (flags & F_TOOLS) != 0,
                    .split_reasoning = (flags & F_REASON) != 0,
                    .thinking_open = (flags & F_OPEN) != 0,
                    .live_args = live,
                    .seed = 42};
    return o;
}

enum { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_AT, SPLIT_RANDOM };

/* Parses in, cut as asked; returns the merged output (caller frees) and fills *r. */
static char *parse(const cp_options *o, const char *in, size_t len, int how, uint64_t arg, rec *r) {
    memset(r, 0, sizeof *r);
    r->last_kind = -1;
    rec_put(r, "", 0);
    chatd_error err = {{0}};
    cp_parser *p = cp_new(o, &err);
    if (!p) {
        tu_fail(__FILE__, __LINE__, "cp_new: %s", err.msg);
        return r->s;
    }
    size_t i = 0;
    uint64_t s = arg | 1;
    while (i < len) {
        size_t n = len - i;
        if (how == SPLIT_BYTES)
            n = 1;
        else if (how == SPLIT_AT)
            n = i < arg ? arg - i : len - i;
        else if (how == SPLIT_RANDOM)
            n = 1 + rng_next(&s) % 7;
        if (n > len - i) n = len - i;
        if (cp_feed(p, in + i, n, rec_emit, r, &err) != 0)
            tu_fail(__FILE__, __LINE__, "cp_feed: %s", err.msg);
        i += n;
    }
    if (cp_finish(p, rec_emit, r, &err) != 0) tu_fail(__FILE__, __LINE__, "cp_finish: %s", err.msg);
    cp_free(p);
    return r->s;
}

/* Writes s with control characters escaped, for messages (a few rotating buffers). */
static const char *show(const char *s) {
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ & 3];
    size_t n = 0;
    for (; s && *s && n < sizeof bufs[0] - 8; s++) {
        if (*s == '\n')
            b[n++] = '\\', b[n++] = 'n';
        else
            b[n++] = *s;
    }
    b[n] = 0;
    return b;
}

/* Checks that every way of cutting in gives want; returns false at the first mismatch. */
static bool check_splits(const char *what, const cp_options *o, const char *in, const char *want) {
    size_t len = strlen(in);
    rec r;
    char *got = parse(o, in, len, SPLIT_WHOLE, 0, &r);
    bool ok = !strcmp(got, want) && !r.bad;
    TU_CHECK(ok, "%s whole: got '%s' want '%s'%s", what, show(got), show(want),
             r.bad ? " (bad delta)" : "");
    free(got);
    if (!ok) return false;
    for (int how = SPLIT_BYTES; how <= SPLIT_RANDOM; how++) {
        size_t runs = how == SPLIT_BYTES ? 1 : how == SPLIT_AT ? len + 1 : 20;
        for (size_t k = 0; k < runs; k++) {
            got = parse(o, in, len, how, how == SPLIT_AT ? k : k * 7919 + 1, &r);
            ok = !strcmp(got, want) && !r.bad;
            TU_CHECK(ok, "%s split %d/%zu: got '%s' want '%s'", what, how, k, show(got),
                     show(want));
            free(got);
            if (!ok) return false;
        }
    }
    return true;
}

/* ---- emitted before the end ---- */

typedef struct step {
    const char *feed;
    const char *want; /* all output so far */
} step;

static void check_steps(const char *what, cp_format fmt, unsigned flags, bool live,
                        const step *steps, int n, const char *final, bool in_reasoning_at_1) {
    tu_case("early/%s/%s", what, live ? "live" : "collect");
    cp_options o = make_opts(fmt, flags, live);
    chatd_error err = {{0}};
    cp_parser *p = cp_new(&o, &err);
    rec r;
    memset(&r, 0, sizeof r);
    r.last_kind = -1;
    rec_put(&r, "", 0);
    for (int i = 0; i < n; i++) {
        TU_CHECK(cp_feed(p, steps[i].feed, strlen(steps[i].feed), rec_emit, &r, &err) == 0, "%s",
                 err.msg);
        TU_CHECK(!strcmp(r.s, steps[i].want), "after step %d: got '%s' want '%s'", i, show(r.s),
                 show(steps[i].want));
        if (i == 0)
            TU_CHECK(cp_in_reasoning(p) == in_reasoning_at_1, "cp_in_reasoning after step 0: %d",
                     cp_in_reasoning(p));
    }
    TU_CHECK(cp_finish(p, rec_emit, &r, &err) == 0, "%s", err.msg);
    TU_CHECK(!strcmp(r.s, final), "final: got '%s' want '%s'", show(r.s), show(final));
    TU_CHECK(!cp_in_reasoning(p), "still in reasoning at the end");
    cp_free(p);
    free(r.s);
}

/* ---- the real templates (excerpts of the models' tokenizer.chat_template) ---- */

static const struct {
    const char *name;
    const char *src;
    cp_format fmt;
    bool renders;
} k_templates[] = {
    {"qwen2",
     "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- for tool in tools %}\n        "
     "{{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- "
     "\"\\n</tools>\\n\\nFor "
     "each function call, return a json object with function name and arguments within "
     "<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, "
     "\\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- endif %}",
     CP_FMT_HERMES, true},
    {"qwen3",
     "{%- if message.tool_calls %}\n            {%- for tool_call in message.tool_calls %}\n"
     "                {{- '<tool_call>\\n{\"name\": \"' }}\n                {{- tool_call.name }}"
     "\n                {{- '\", \"arguments\": ' }}\n{%- endfor %}{%- endif %}\n{%- if tools %}"
     "{{- \"# Tools\" }}{%- endif %}{%- if enable_thinking is defined and enable_thinking is false "
     "%}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}",
     CP_FMT_HERMES, true},
    {"llama3",
     "{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n{%- endif %}\n"
     "{%- if tools is not none %}\n    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n"
     "        {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n        {{- '\"parameters\": ' }}"
     "\n        {{- tool_call.arguments | tojson }}\n",
     CP_FMT_LLAMA3, true},
    {"r1",
     "{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = "
     "false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜>"
     "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + "
     "tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' "
     "+ '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- endif %}{%- endfor %}"
     "{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- endif %}",
     CP_FMT_R1, false},
    {"llama2-spm",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% endif %}"
     "{% for message in loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' "
     "+ content.strip() + ' [/INST]' }}{% endif %}{% endfor %}",
     CP_FMT_GENERIC, false},
    {"tools-only-in-text",
     "The tools {# tools #} are {{ 'tools' }} {{ message.tools }} {{ x_tools }}", CP_FMT_GENERIC,
     false},
    {"tools-in-expression", "{{ x }}{% for t in tools|default([]) %}{{ t }}{% endfor %}",
     CP_FMT_GENERIC, true},
};

/* ---- random soups of markup fragments ---- */

static const char *const k_soup[] = {
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "{",
    "}",
    "\"name\"",
    ":",
    "\"f\"",
    ",",
    "\"arguments\"",
    "\"parameters\"",
    " ",
    "\n",
    "x",
    "<",
    "</",
    "<|python_tag|>",
    R1_CB,
    R1_CE,
    R1_B,
    R1_E,
    R1_S,
    "function",
    "```json",
    "```",
    "[",
    "]",
    "1",
    "\"",
    "\\",
    "\"{}\"",
    ";",
    "<tool",
    "<｜tool▁",
    "é",
    "{}",
    "\"a\"",
};

static int run_soup(void) {
    uint64_t s = 12345;
    char in[512];
    for (int t = 0; t < 3000; t++) {
        size_t n = 0, parts = 1 + rng_next(&s) % 24;
        in[0] = 0;
        for (size_t i = 0; i < parts; i++) {
            const char *f = k_soup[rng_next(&s) % (sizeof k_soup / sizeof k_soup[0])];
            if (n + strlen(f) + 1 >= sizeof in) break;
            memcpy(in + n, f, strlen(f) + 1);
            n += strlen(f);
        }
        /* sometimes a well-formed call somewhere in it */
        if (t % 3 == 0 && n + 80 < sizeof in) {
            static const char *const calls[] = {"<tool_call>" WEATHER "</tool_call>", WEATHER,
                                                R1_B "function" R1_S "f\n{}" R1_E};
            const char *c = calls[rng_next(&s) % 3];
            memcpy(in + n, c, strlen(c) + 1);
            n += strlen(c);
        }
        cp_format fmt = (cp_format)(rng_next(&s) % 5);
        unsigned flags = (unsigned)(rng_next(&s) % 8);
        bool live = rng_next(&s) % 2;
        cp_options o = make_opts(fmt, flags, live);
        tu_case("soup/%d", t);
        rec r;
        char *whole = parse(&o, in, n, SPLIT_WHOLE, 0, &r);
        int calls = r.n_ids;
        TU_CHECK(!r.bad, "bad delta for '%s'", show(in));
        char *bytes = parse(&o, in, n, SPLIT_BYTES, 0, &r);
        TU_CHECK(!strcmp(whole, bytes), "fmt %d flags %u live %d '%s': whole '%s' bytes '%s'",
                 (int)fmt, flags, live, show(in), show(whole), show(bytes));
        free(bytes);
        char *rnd = parse(&o, in, n, SPLIT_RANDOM, (uint64_t)t, &r);
        TU_CHECK(!strcmp(whole, rnd), "fmt %d flags %u live %d '%s': whole '%s' random '%s'",
                 (int)fmt, flags, live, show(in), show(whole), show(rnd));
        free(rnd);
        /* no call and no reasoning split: the content is the text exactly */
        if (calls == 0 && !(flags & F_REASON)) {
            char want[600];
            snprintf(want, sizeof want, "%s%s", n ? "[[C]]" : "", in);
            TU_CHECK(!strcmp(whole, want), "fmt %d flags %u live %d: no call, yet '%s' became '%s'",
                     (int)fmt, flags, live, show(in), show(whole));
        }
        free(whole);
    }
    return 0;
}

/* ---- the tools prompt ---- */

static const char k_tools_json[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
    "\"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
    "{\"type\": \"string\"}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": "
    "{\"name\": \"get_time\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}]";

/* Replaces every from in s by to (caller frees). */
static char *replace(const char *s, const char *from, const char *to) {
    size_t n = 0, lf = strlen(from), lt = strlen(to);
    for (const char *q = s; (q = strstr(q, from)); q += lf) n++;
    char *out = malloc(strlen(s) + n * lt + 1), *w = out;
    if (!out) abort();
    for (const char *q; (q = strstr(s, from)); s = q + lf) {
        memcpy(w, s, (size_t)(q - s));
        w += q - s;
        memcpy(w, to, lt);
        w += lt;
    }
    strcpy(w, s);
    return out;
}

static void check_tools_prompt(void) {
    cJSON *tools = cJSON_Parse(k_tools_json);
    chatd_error err = {{0}};
    static const struct {
        cp_format fmt;
        const char *start, *end; /* the call example in the prompt */
    } k[] = {
        {CP_FMT_GENERIC, "{\"name\": \"FUNCTION_NAME\"", "}}\n"},
        {CP_FMT_R1, R1_CB R1_B, R1_CE},
        {CP_FMT_HERMES, "<tool_call>\n{", "</tool_call>\n"},
        {CP_FMT_LLAMA3, "{\"name\": \"FUNCTION_NAME\"", "}}"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        tu_case("tools-prompt/%s", cp_format_name(k[i].fmt));
        char *s = cp_tools_prompt(k[i].fmt, tools, &err);
        TU_CHECK(s != NULL, "%s", err.msg);
        if (!s) continue;
        TU_CHECK(strstr(s, "{\"name\":\"get_weather\",\"description\":\"Current weather\","
                           "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                           "\"string\"}},\"required\":[\"city\"]}}\n") != NULL,
                 "get_weather is not listed: %s", s);
        TU_CHECK(strstr(s, "{\"name\":\"get_time\",\"parameters\":") != NULL,
                 "get_time is not listed: %s", s);
        /* the example of the call syntax, filled in, must parse as a call */
        const char *a = strstr(s, k[i].start);
        const char *b = a ? strstr(a, k[i].end) : NULL;
        TU_CHECK(a && b, "no call example in: %s", s);
        if (a && b) {
            char *ex = strndup(a, (size_t)(b - a) + strlen(k[i].end));
            char *e1 = replace(ex, "FUNCTION_NAME", "get_time");
            char *e2 = replace(e1, "\"ARGUMENT\": VALUE", "\"tz\": \"CET\"");
            cp_options o = make_opts(k[i].fmt, F_TOOLS, false);
            rec r;
            char *got = parse(&o, e2, strlen(e2), SPLIT_WHOLE, 0, &r);
            TU_CHECK(!strcmp(got, "[[S0 get_time]][[A0]]{\"tz\": \"CET\"}"),
                     "the example '%s' parses as '%s'", show(e2), show(got));
            free(got);
            free(ex);
            free(e1);
            free(e2);
        }
        free(s);
    }
    tu_case("tools-prompt/errors");
    TU_CHECK(cp_tools_prompt(CP_FMT_NONE, tools, &err) == NULL && err.msg[0], "NONE accepted");
    err.msg[0] = 0;
    cJSON *obj = cJSON_Parse("{\"a\": 1}");
    TU_CHECK(cp_tools_prompt(CP_FMT_GENERIC, obj, &err) == NULL && err.msg[0], "object accepted");
    cJSON *bad = cJSON_Parse("[{\"type\": \"function\", \"function\": {\"description\": \"x\"}}]");
    err.msg[0] = 0;
    TU_CHECK(cp_tools_prompt(CP_FMT_R1, bad, &err) == NULL && strstr(err.msg, "tools[0]"),
             "a tool without a name accepted: %s", err.msg);
    cJSON *bare = cJSON_Parse("[{\"name\": \"f\"}]");
    char *s = cp_tools_prompt(CP_FMT_GENERIC, bare, &err);
    TU_CHECK(s && strstr(s, "{\"name\":\"f\"}\n"), "a bare function object: %s", s ? s : err.msg);
    free(s);
    cJSON_Delete(bare);
    cJSON_Delete(bad);
    cJSON_Delete(obj);
    cJSON_Delete(tools);
}

static int abort_emit(void *user, const cp_delta *d) {
    (void)d;
    return ++*(int *)user >= 2;
}

int main(void) {
    /* the table: every cut, both modes */
    for (size_t i = 0; i < sizeof k_fixtures / sizeof k_fixtures[0]; i++) {
        const fixture *f = &k_fixtures[i];
        for (int live = 0; live < 2; live++) {
            tu_case("%s/%s", f->name, live ? "live" : "collect");
            cp_options o = make_opts(f->fmt, f->flags, live);
            const char *want = live && f->want_live ? f->want_live : f->want;
            check_splits(f->name, &o, f->in, want);
        }
    }

    for (size_t i = 0; i < sizeof k_json / sizeof k_json[0]; i++) {
        tu_case("json/%zu", i);
        char in[256], args[200], want[512];
        snprintf(args, sizeof args, "{\"v\": %s}", k_json[i].value);
        snprintf(in, sizeof in, "{\"name\": \"f\", \"arguments\": %s}", args);
        if (k_json[i].valid)
            snprintf(want, sizeof want, "[[S0 f]][[A0]]%s", args);
        else
            snprintf(want, sizeof want, "[[C]]%s", in);
        cp_options o = make_opts(CP_FMT_GENERIC, F_TOOLS, false);
        check_splits(k_json[i].value, &o, in, want);
    }

    /* nesting: 62 levels inside the arguments are fine, past the recognizer's 64 is not */
    for (int depth = 62; depth <= 70; depth += 8) {
        tu_case("json/depth-%d", depth);
        char args[200], in[300], want[400];
        int n = snprintf(args, sizeof args, "{\"a\": ");
        for (int i = 0; i < depth; i++) args[n++] = '[';
        for (int i = 0; i < depth; i++) args[n++] = ']';
        snprintf(args + n, sizeof args - (size_t)n, "}");
        snprintf(in, sizeof in, "<tool_call>{\"name\": \"f\", \"arguments\": %s}</tool_call>",
                 args);
        if (depth < 64)
            snprintf(want, sizeof want, "[[S0 f]][[A0]]%s", args);
        else
            snprintf(want, sizeof want, "[[C]]%s", in);
        cp_options o = make_opts(CP_FMT_HERMES, F_TOOLS, false);
        check_splits("depth", &o, in, want);
    }

    tu_case("detect");
    for (size_t i = 0; i < sizeof k_templates / sizeof k_templates[0]; i++) {
        cp_format fmt = cp_detect_format(k_templates[i].src);
        TU_CHECK(fmt == k_templates[i].fmt, "%s: detected %s", k_templates[i].name,
                 cp_format_name(fmt));
        TU_CHECK(cp_template_renders_tools(k_templates[i].src) == k_templates[i].renders,
                 "%s: renders tools %d", k_templates[i].name, !k_templates[i].renders);
    }
    TU_CHECK(cp_detect_format(NULL) == CP_FMT_GENERIC && !cp_template_renders_tools(NULL),
             "NULL template");
    TU_CHECK(cp_detect_format("{{ '<|python_tag|>' }}") == CP_FMT_LLAMA3, "python_tag");

    check_tools_prompt();

    /* what goes out before the end of the output */
    {
        const step s[] = {
            {"<think>\nPlan", "[[R]]Plan"},
            {" more </thi", "[[R]]Plan more"},
            {"nk>\n\nHi ", "[[R]]Plan more[[C]]Hi"},
            {"there <tool_ca", "[[R]]Plan more[[C]]Hi there"},
            {"ll>{\"name\": \"f\", \"arguments\": {\"a\": ", "[[R]]Plan more[[C]]Hi there"},
        };
        check_steps("hermes", CP_FMT_HERMES, F_TOOLS | F_REASON, false, s, 5,
                    "[[R]]Plan more[[C]]Hi there <tool_call>{\"name\": \"f\", \"arguments\": "
                    "{\"a\": ",
                    true);
    }
    {
        const step s[] = {
            {"<think>\nPlan", "[[R]]Plan"},
            {" more </thi", "[[R]]Plan more"},
            {"nk>\n\nHi ", "[[R]]Plan more[[C]]Hi"},
            {"there <tool_ca", "[[R]]Plan more[[C]]Hi there"},
            {"ll>{\"name\": \"f\", \"arguments\": {\"a\": ",
             "[[R]]Plan more[[C]]Hi there[[S0 f]][[A0]]{\"a\": "},
            {"1}}\n</tool_call>", "[[R]]Plan more[[C]]Hi there[[S0 f]][[A0]]{\"a\": 1}"},
        };
        check_steps("hermes", CP_FMT_HERMES, F_TOOLS | F_REASON, true, s, 6,
                    "[[R]]Plan more[[C]]Hi there[[S0 f]][[A0]]{\"a\": 1}", true);
    }
    {
        const step s[] = {
            {"{\"name\": \"f\", \"parameters\": {\"a\"", "[[S0 f]][[A0]]{\"a\""},
            {": \"x\"}}", "[[S0 f]][[A0]]{\"a\": \"x\"}"},
        };
        check_steps("llama3", CP_FMT_LLAMA3, F_TOOLS, true, s, 2, "[[S0 f]][[A0]]{\"a\": \"x\"}",
                    false);
        const step c[] = {
            {"{\"name\": \"f\", \"parameters\": {\"a\"", ""},
            {": \"x\"}}", ""},
        };
        check_steps("llama3", CP_FMT_LLAMA3, F_TOOLS, false, c, 2, "[[S0 f]][[A0]]{\"a\": \"x\"}",
                    false);
    }
    {
        const step s[] = {
            {"Checking." R1_CB R1_B "function" R1_S "get_weather\n```json\n{\"city\":",
             "[[C]]Checking.[[S0 get_weather]][[A0]]{\"city\":"},
        };
        check_steps("r1", CP_FMT_R1, F_TOOLS, true, s, 1,
                    "[[C]]Checking.[[S0 get_weather]][[A0]]{\"city\":", false);
        const step o[] = {{"Thinking", "[[R]]Thinking"}};
        check_steps("open", CP_FMT_R1, F_TOOLS | F_REASON | F_OPEN, true, o, 1, "[[R]]Thinking",
                    true);
    }

    tu_case("ids");
    {
        const char *in = "<tool_call>" WEATHER "</tool_call><tool_call>" TIME "</tool_call>";
        cp_options o = make_opts(CP_FMT_HERMES, F_TOOLS, false);
        rec a, b, c;
        free(parse(&o, in, strlen(in), SPLIT_WHOLE, 0, &a));
        free(parse(&o, in, strlen(in), SPLIT_BYTES, 0, &b));
        o.seed = 43;
        free(parse(&o, in, strlen(in), SPLIT_WHOLE, 0, &c));
        TU_CHECK(a.n_ids == 2 && !a.bad && strcmp(a.ids[0], a.ids[1]), "ids %s %s", a.ids[0],
                 a.ids[1]);
        TU_CHECK(!strcmp(a.ids[0], b.ids[0]) && !strcmp(a.ids[1], b.ids[1]),
                 "same seed, other ids");
        TU_CHECK(strcmp(a.ids[0], c.ids[0]), "other seed, same id %s", a.ids[0]);
        o.seed = 0;
        rec d, e;
        free(parse(&o, in, strlen(in), SPLIT_WHOLE, 0, &d));
        free(parse(&o, in, strlen(in), SPLIT_WHOLE, 0, &e));
        TU_CHECK(d.n_ids == 2 && e.n_ids == 2 && strcmp(d.ids[0], e.ids[0]),
                 "unseeded parsers repeat ids: %s", d.ids[0]);
    }

    tu_case("counts-and-errors");
    {
        chatd_error err = {{0}};
        TU_CHECK(cp_new(NULL, &err) == NULL && err.msg[0], "no options accepted");
        cp_options bad = make_opts((cp_format)99, F_TOOLS, false);
        TU_CHECK(cp_new(&bad, &err) == NULL, "unknown format accepted");
        cp_options o = make_opts(CP_FMT_HERMES, F_TOOLS, true);
        cp_parser *p = cp_new(&o, &err);
        const char *in = "a <tool_call>" WEATHER "</tool_call>";
        TU_CHECK(cp_feed(p, in, strlen(in), NULL, NULL, &err) == 0, "no callback: %s", err.msg);
        TU_CHECK(cp_n_tool_calls(p) == 1, "%d calls", cp_n_tool_calls(p));
        TU_CHECK(cp_finish(p, NULL, NULL, &err) == 0, "%s", err.msg);
        TU_CHECK(cp_feed(p, "x", 1, NULL, NULL, &err) == -1 && err.msg[0], "fed after the end");
        TU_CHECK(cp_finish(p, NULL, NULL, &err) == -1, "finished twice");
        cp_free(p);
        p = cp_new(&o, &err);
        int count = 0;
        TU_CHECK(cp_feed(p, in, strlen(in), abort_emit, &count, &err) == -1 && err.msg[0],
                 "the callback's abort was ignored");
        TU_CHECK(count == 2, "deltas after the abort: %d", count);
        TU_CHECK(cp_feed(p, "x", 1, abort_emit, &count, &err) == -1, "fed after an abort");
        TU_CHECK(cp_feed(NULL, "x", 1, NULL, NULL, &err) == -1, "NULL parser");
        cp_free(p);
        cp_free(NULL);
        TU_CHECK(cp_n_tool_calls(NULL) == 0 && !cp_in_reasoning(NULL), "NULL queries");
    }

    run_soup();
    return tu_finish();
}
