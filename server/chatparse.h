/* chatparse.h - splits the text a chat model generates into OpenAI's pieces: reasoning
 * (thinking) text, answer content and tool calls. The parser is streaming: text arrives
 * in fragments cut at any byte, and the result does not depend on where the cuts fall.
 * A streamed response feeds each piece of generated text as it comes; a non-streamed
 * one feeds everything, finishes and collects the same deltas.
 *
 * Layers, in order:
 *   1. reasoning (split_reasoning): `<think>…</think>` at the start of the output (or the
 *      whole output up to `</think>` when the prompt already opened the block) becomes
 *      CP_REASONING, without its leading and trailing whitespace; the rest is content,
 *      without its leading whitespace. Output that ends inside the block is reasoning.
 *   2. tool calls (parse_tools), on the content, in the format of the model's template:
 *      CP_FMT_HERMES   `<tool_call>{"name": "f", "arguments": {...}}</tool_call>`, any
 *                      number, anywhere in the content.
 *      CP_FMT_LLAMA3   the whole reply is `{"name": "f", "parameters": {...}}` (or
 *                      "arguments"), optionally after `<|python_tag|>`; several calls
 *                      may follow, separated by `;` and/or whitespace.
 *      CP_FMT_R1       `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n`
 *                      "```json\n{...}\n```<｜tool▁call▁end｜>" ... `<｜tool▁calls▁end｜>`,
 *                      anywhere in the content.
 *      CP_FMT_GENERIC  the whole reply is one or more JSON objects
 *                      `{"name": "f", "arguments": {...}}`, separated by whitespace (one
 *                      per line) or `;` - the form cp_tools_prompt asks for.
 *      Every format accepts "arguments" or "parameters", other keys in the call object
 *      and any key order. Arguments written as a JSON string holding a JSON object are
 *      decoded and passed on as that string. For HERMES and R1, whitespace right before a
 *      call and whitespace ending the output after a call are dropped (so whitespace-only
 *      content between calls disappears); other content is kept exactly. A reply without
 *      calls is content byte for byte (after the reasoning split, if any).
 *
 * Each call comes out as CP_TOOL_START (index 0, 1, ...; id "call_" + 24 alphanumerics;
 * the name) followed by CP_TOOL_ARGS fragments whose concatenation is the raw text of
 * the arguments object as the model wrote it.
 *
 * Without live_args (non-streaming) a call is emitted only once it is complete and its
 * arguments are a JSON object; a malformed or unfinished call (bad JSON, no name,
 * unterminated, unexpected text inside the call's markup) comes back as CP_CONTENT,
 * byte for byte as written. For LLAMA3 and GENERIC the whole reply must be calls,
 * otherwise all of it is content. A call whose JSON object is complete but whose closing
 * markup (`</tool_call>`, the closing fence, `<｜tool▁call▁end｜>`) was cut off by the
 * end of the output is accepted.
 *
 * With live_args (streaming) a call is announced as soon as its name is known and its
 * arguments object has begun, and the arguments go out as they arrive (arguments given
 * as a JSON string, or before the name, are held until complete). Once announced a call
 * cannot be taken back: when the rest of it turns out malformed, the text from the
 * offending byte on is content, and a call cut off by the end of the output keeps the
 * arguments seen so far. For well-formed output both modes give the same deltas (up to
 * how the text is cut into fragments).
 *
 * Text that might still become a tag or a call marker (and whitespace that might precede
 * one) is held back until it is known not to be; cp_finish releases it. Deltas are only
 * cut where the input was cut or before '<' or whitespace, so feeding whole UTF-8
 * characters gives whole characters in every delta. */
#ifndef CHATD_CHATPARSE_H
#define CHATD_CHATPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "chatd/error.h"

typedef enum cp_format {
    CP_FMT_NONE = 0, /* no tool calls are parsed (same as parse_tools false) */
    CP_FMT_HERMES,   /* Qwen2.5, Qwen3: <tool_call>{json}</tool_call> */
    CP_FMT_LLAMA3,   /* Llama 3.1/3.2: {"name": ..., "parameters": ...} */
    CP_FMT_R1,       /* DeepSeek R1: <｜tool▁calls▁begin｜>... */
    CP_FMT_GENERIC   /* any other template: {"name": ..., "arguments": ...} */
} cp_format;

/* Detects the tool-call format from a chat template's source (NULL: CP_FMT_GENERIC). */
cp_format cp_detect_format(const char *template_src);

/* True when the template's code uses the `tools` variable, i.e. renders the tools
 * itself; otherwise the server must describe them in the system prompt. */
bool cp_template_renders_tools(const char *template_src);

/* A system-prompt section describing tools (a JSON array in OpenAI's "tools" shape:
 * [{"type":"function","function":{"name","description","parameters"}}]) and the exact
 * call syntax of fmt, for templates that do not render tools. Caller frees; NULL with a
 * message in err on a bad tools array, CP_FMT_NONE or no memory. */
char *cp_tools_prompt(cp_format fmt, const cJSON *tools, chatd_error *err);

/* The name of a format ("hermes", "llama3", "r1", "generic", "none"). */
const char *cp_format_name(cp_format fmt);

typedef struct cp_options {
    cp_format fmt;
    bool parse_tools;     /* false for tool_choice "none" or no tools */
    bool split_reasoning; /* separate <think> blocks (--reasoning-format deepseek) */
    bool thinking_open;   /* the prompt already ended inside <think> */
    bool live_args;       /* streaming: announce calls and stream arguments as they arrive */
    uint64_t seed;        /* for the call ids; 0 = from the clock and the parser's address */
} cp_options;

typedef enum cp_kind {
    CP_CONTENT,    /* text: answer content */
    CP_REASONING,  /* text: reasoning content */
    CP_TOOL_START, /* index, id, name of a new call */
    CP_TOOL_ARGS   /* index, text: next fragment of that call's arguments JSON */
} cp_kind;

/* One piece of output; pointers are valid only during the emit callback. */
typedef struct cp_delta {
    cp_kind kind;
    int index;        /* CP_TOOL_*: the call's index (0, 1, ...); else 0 */
    const char *id;   /* CP_TOOL_START: "call_..." (NUL-terminated); else NULL */
    const char *name; /* CP_TOOL_START: the function name (NUL-terminated); else NULL */
    const char *text; /* CP_CONTENT, CP_REASONING, CP_TOOL_ARGS: len bytes; else NULL */
    size_t len;
} cp_delta;

/* Receives each delta in order; a non-zero return aborts the feed / finish. */
typedef int (*cp_emit)(void *user, const cp_delta *d);

typedef struct cp_parser cp_parser;

/* A new parser for one choice of one response; NULL with a message in err. */
cp_parser *cp_new(const cp_options *o, chatd_error *err);

/* Parses the next len bytes of output, emitting every delta that is now certain. 0, or
 * -1 with a message (no memory, the callback aborted, the parser already failed or was
 * finished). */
int cp_feed(cp_parser *p, const char *text, size_t len, cp_emit emit, void *user, chatd_error *err);

/* Ends the output: resolves and emits everything held back. 0 or -1 as cp_feed. */
int cp_finish(cp_parser *p, cp_emit emit, void *user, chatd_error *err);

/* True while the output fed so far is inside a reasoning block (for counting reasoning
 * tokens: ask after feeding each token's text). */
bool cp_in_reasoning(const cp_parser *p);

/* Number of tool calls emitted (CP_TOOL_START) so far. */
int cp_n_tool_calls(const cp_parser *p);

/* Frees the parser (NULL is fine). */
void cp_free(cp_parser *p);

#endif
