/* fuzz_template.c - libFuzzer harness for the chat-template parser and evaluator: any
 * byte string is parsed as a template and, when it parses, rendered over a small chat
 * context (system, user, assistant tool call with content None, tool result, tools,
 * BOS/EOS), with tight limits. Every failure must carry a message, every success must
 * give fragments that tile the output; no input may crash, leak or run unbounded. Built as
 * a fuzzer with -DCHATD_FUZZ=ON, and always as a replay program over the seed corpus
 * (tests/fuzz/corpus/fuzz_template: the public chat templates and feature mixes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tpl_value *str(const char *s) {
    return tpl_value_string(s, strlen(s), TPL_ORIGIN_REQUEST);
}

static tpl_value *message(const char *role, const char *content) {
    tpl_value *m = tpl_value_dict();
    tpl_dict_set(m, "role", str(role));
    tpl_dict_set(m, "content", content ? str(content) : tpl_value_null());
    return m;
}

/* The context a chat request gives a template; construction failures only make it
 * smaller, which is fine for fuzzing. */
static tpl_value *make_context(void) {
    tpl_value *ctx = tpl_value_dict(), *msgs = tpl_value_list();
    tpl_list_append(msgs, message("system", "You are <|im_start|>helpful."));
    tpl_list_append(msgs, message("user", "What's the weather in Paris? <think>x</think>"));
    tpl_value *call = tpl_value_dict(), *fn = tpl_value_dict(), *args = tpl_value_dict();
    tpl_dict_set(args, "city", str("Paris"));
    tpl_dict_set(args, "days", tpl_value_int(3));
    tpl_dict_set(args, "ratio", tpl_value_float(0.5));
    tpl_dict_set(fn, "name", str("get_weather"));
    tpl_dict_set(fn, "arguments", args);
    tpl_dict_set(call, "type", str("function"));
    tpl_dict_set(call, "function", fn);
    tpl_value *calls = tpl_value_list();
    tpl_list_append(calls, call);
    tpl_value *asst = message("assistant", NULL);
    tpl_dict_set(asst, "tool_calls", calls);
    tpl_list_append(msgs, asst);
    tpl_list_append(msgs, message("tool", "{\"temperature\": 18}"));
    tpl_list_append(msgs, message("assistant", "<think>\nhmm\n</think>\n\nIt is 18."));
    tpl_dict_set(ctx, "messages", msgs);
    tpl_value *tools = tpl_value_list(), *tool = tpl_value_dict(), *tfn = tpl_value_dict();
    tpl_dict_set(tfn, "name", str("get_weather"));
    tpl_dict_set(tfn, "parameters", tpl_value_dict());
    tpl_dict_set(tool, "type", str("function"));
    tpl_dict_set(tool, "function", tfn);
    tpl_list_append(tools, tool);
    tpl_dict_set(ctx, "tools", tools);
    tpl_dict_set(ctx, "documents", tpl_value_null());
    tpl_dict_set(ctx, "add_generation_prompt", tpl_value_bool(true));
    tpl_dict_set(ctx, "bos_token", tpl_value_string("<s>", 3, TPL_ORIGIN_TEMPLATE));
    tpl_dict_set(ctx, "eos_token", tpl_value_string("</s>", 4, TPL_ORIGIN_TEMPLATE));
    tpl_dict_set(ctx, "enable_thinking", tpl_value_bool(false));
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    chatd_error err = {{0}};
    tpl_template *t = tpl_parse((const char *)data, size, &err);
    if (!t) {
        if (!err.msg[0]) abort(); /* every refusal must say why */
        return 0;
    }
    tpl_value *ctx = make_context();
    /* tight limits keep every input fast; the limits themselves are under test too */
    tpl_options opts = {.max_steps = 200000, .max_output = 1 << 20, .now = 1721952000};
    tpl_output out = {0};
    if (tpl_render_chat(t, ctx, &opts, &out, &err) != 0) {
        if (!err.msg[0]) abort();
    } else {
        size_t at = 0;
        for (size_t i = 0; i < out.n; i++) {
            if (out.frags[i].text != out.buf + at || out.frags[i].len == 0) abort();
            if (i && out.frags[i].origin == out.frags[i - 1].origin) abort();
            at += out.frags[i].len;
        }
        if (at != out.len || out.buf[out.len] != 0) abort();
    }
    tpl_output_free(&out);
    tpl_value_free(ctx);
    tpl_free(t);
    return 0;
}
