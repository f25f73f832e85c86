/* guide.c - builds the grammar of what a chat request lets the model write (see guide.h).
 *
 * Tool calls are spelled exactly as the model's template shows them in its history, so
 * that the constrained output is what the model would write anyway and chatparse.c reads
 * it back:
 *   hermes   <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>  (one per line)
 *   llama3   {"name": "f", "parameters": {...}}                            (one call)
 *   r1       <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n
 *            {...}\n```<｜tool▁call▁end｜> ... <｜tool▁calls▁end｜>
 *   generic  {"name": "f", "arguments": {...}}                             (one per line) */
#include "guide.h"

#include <stdio.h>
#include <string.h>

#include "schema.h"

static int guide_oom(api_error *err) {
    return api_fail(err, 500, "server_error", NULL, NULL, "out of memory building a grammar");
}

static cons_node guide_text(cons_grammar *g, const char *s) {
    return cons_text(g, s, strlen(s));
}

/* The grammar of one call of tool i: its name spelled out, its arguments by schema. */
static cons_node guide_call(cons_grammar *g, cp_format fmt, const cJSON *tool, int i,
                            api_error *err) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    if (!cJSON_IsString(name))
        return api_fail(err, 400, "invalid_request_error", "missing_required_parameter", "tools",
                        "tools[%d].function.name is missing.", i);
    char param[96];
    snprintf(param, sizeof param, "tools[%d].function.parameters", i);
    cons_node args = params && !cJSON_IsNull(params) ? schema_to_grammar(g, params, param, err)
                                                     : cons_object(g, cons_any(g));
    if (args < 0) return -1;
    char head[256];
    const char *nm = name->valuestring;
    switch (fmt) {
    case CP_FMT_LLAMA3:
        snprintf(head, sizeof head, "{\"name\": \"%s\", \"parameters\": ", nm);
        break;
    case CP_FMT_R1:
        snprintf(head, sizeof head, "%s\n```json\n", nm);
        break;
    default:
        snprintf(head, sizeof head, "{\"name\": \"%s\", \"arguments\": ", nm);
        break;
    }
    const char *tail = fmt == CP_FMT_R1 ? "\n```<｜tool▁call▁end｜>" : "}";
    cons_node seq[] = {guide_text(g, head), args, guide_text(g, tail)};
    return cons_seq(g, seq, 3);
}

/* One or more calls (at most one unless parallel) of the tools the request allows. */
static cons_node guide_tools(cons_grammar *g, const api_request *req, cp_format fmt,
                             api_error *err) {
    cons_node alts[32]; /* cons_any_of's limit */
    size_t n = 0;
    int i = 0;
    const cJSON *tool;
    cJSON_ArrayForEach(tool, req->tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        bool wanted = req->tool_choice != API_TOOL_NAMED ||
                      (cJSON_IsString(name) && !strcmp(name->valuestring, req->tool_choice_name));
        if (wanted) {
            if (n == sizeof alts / sizeof alts[0])
                return api_fail(err, 400, "invalid_request_error", "invalid_value", "tools",
                                "tool_choice \"required\" can be enforced over at most %zu tools.",
                                sizeof alts / sizeof alts[0]);
            if ((alts[n++] = guide_call(g, fmt, tool, i, err)) < 0) return -1;
        }
        i++;
    }
    if (n == 0)
        return api_fail(err, 400, "invalid_request_error", "invalid_value", "tool_choice",
                        "Invalid value for 'tool_choice': no function named '%s' in 'tools'.",
                        req->tool_choice_name ? req->tool_choice_name : "");
    cons_node call = cons_any_of(g, alts, n);
    int64_t max = req->parallel_tool_calls && fmt != CP_FMT_LLAMA3 ? -1 : 1;
    switch (fmt) {
    case CP_FMT_HERMES: {
        cons_node one[] = {guide_text(g, "<tool_call>\n"), call, guide_text(g, "\n</tool_call>")};
        return cons_repeat(g, cons_seq(g, one, 3), guide_text(g, "\n"), 1, max);
    }
    case CP_FMT_R1: {
        cons_node one[] = {guide_text(g, "<｜tool▁call▁begin｜>function<｜tool▁sep｜>"), call};
        cons_node all[] = {guide_text(g, "<｜tool▁calls▁begin｜>"),
                           cons_repeat(g, cons_seq(g, one, 2), guide_text(g, "\n"), 1, max),
                           guide_text(g, "<｜tool▁calls▁end｜>")};
        return cons_seq(g, all, 3);
    }
    default:
        return cons_repeat(g, call, guide_text(g, "\n"), 1, max);
    }
}

int guide_build(const api_request *req, cp_format fmt, guide_think think, const cons_vocab *cv,
                cons_program **out, api_error *err) {
    *out = NULL;
    memset(err, 0, sizeof *err);
    bool tools =
        req->tools && (req->tool_choice == API_TOOL_REQUIRED || req->tool_choice == API_TOOL_NAMED);
    bool json = req->response_format != API_FORMAT_TEXT;
    if (!tools && !json) return 0;
    chatd_error cerr = {{0}};
    cons_grammar *g = cons_grammar_new(&cerr);
    if (!g) return guide_oom(err);
    cons_node body;
    if (tools)
        body = guide_tools(g, req, fmt == CP_FMT_NONE ? CP_FMT_GENERIC : fmt, err);
    else if (req->response_format == API_FORMAT_JSON_SCHEMA && req->json_schema)
        body = schema_to_grammar(g, req->json_schema, "response_format.json_schema.schema", err);
    else if (req->response_format == API_FORMAT_JSON_SCHEMA)
        body = cons_any(g);
    else
        body = cons_object(g, cons_any(g)); /* json_object: one JSON object */
    if (body < 0) {
        if (!err->status) guide_oom(err);
        cons_grammar_free(g);
        return -1;
    }
    cons_node root = body;
    if (think == GUIDE_THINK_OPEN) {
        cons_node seq[] = {cons_until(g, "</think>"), cons_ws(g), body};
        root = cons_seq(g, seq, 3);
    } else if (think == GUIDE_THINK_MODEL) {
        cons_node seq[] = {guide_text(g, "<think>"), cons_until(g, "</think>"), cons_ws(g), body};
        root = cons_seq(g, seq, 4);
    }
    *out = cons_compile(g, root, cv, &cerr);
    cons_grammar_free(g);
    if (!*out)
        return api_fail(err, 400, "invalid_request_error", "invalid_value",
                        tools ? "tools" : "response_format", "The output cannot be constrained: %s",
                        cerr.msg);
    return 0;
}
