/* test_openai.c - the OpenAI request parser and response writers (server/openai.c): every
 * validation rule with its status, type, code and param; what valid requests parse to;
 * that responses, chunks and errors are valid UTF-8 JSON whatever bytes tokens hold; that
 * they validate against ../shared/spec/openai-schemas.json (with the small validator in
 * schema_check.c, which is tested here too); and that random bodies never crash the parser.
 * Request bodies are written with ' for " to keep them readable. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openai.h"
#include "schema_check.h"
#include "testutil.h"

#define VOCAB 1000

/* ------------------------------------------------------------- helpers */

/* The body with every ' turned into ", in a static buffer. */
static const char *q(const char *s) {
    static char buf[8192];
    size_t n = strlen(s);
    if (n >= sizeof buf) n = sizeof buf - 1;
    for (size_t i = 0; i < n; i++) buf[i] = s[i] == '\'' ? '"' : s[i];
    buf[n] = 0;
    return buf;
}

/* Strict UTF-8 check of a whole output text (RFC 3629). */
static bool valid_utf8(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned c = *u;
        size_t n = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
        if (!n) return false;
        for (size_t i = 1; i < n; i++)
            if ((u[i] & 0xC0) != 0x80) return false;
        if ((c == 0xE0 && u[1] < 0xA0) || (c == 0xED && u[1] > 0x9F) ||
            (c == 0xF0 && u[1] < 0x90) || (c == 0xF4 && u[1] > 0x8F))
            return false;
        u += n;
    }
    return true;
}

/* Parses JSON text the server wrote; NULL (and a failure) when it is not valid UTF-8 JSON. */
static cJSON *parse_out(const char *what, const char *text) {
    TU_CHECK(text != NULL, "%s: no output", what);
    if (!text) return NULL;
    TU_CHECK(valid_utf8(text), "%s: output is not valid UTF-8: %s", what, text);
    cJSON *j = cJSON_Parse(text);
    TU_CHECK(j != NULL, "%s: output is not JSON: %s", what, text);
    return j;
}

static const char *jstr(const cJSON *o, const char *path) {
    const cJSON *v = o;
    char key[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        if (key[0] >= '0' && key[0] <= '9')
            v = cJSON_GetArrayItem(v, atoi(key));
        else
            v = cJSON_GetObjectItemCaseSensitive(v, key);
        path += n + (path[n] == '.');
    }
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jget(const cJSON *o, const char *path) {
    const cJSON *v = o;
    char key[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        if (key[0] >= '0' && key[0] <= '9')
            v = cJSON_GetArrayItem(v, atoi(key));
        else
            v = cJSON_GetObjectItemCaseSensitive(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

/* Every error body produced, kept for the schema pass. */
static char *error_bodies[512];
static size_t n_error_bodies;

static void keep_error_body(char *body) {
    if (body && n_error_bodies < sizeof error_bodies / sizeof error_bodies[0])
        error_bodies[n_error_bodies++] = body;
    else
        free(body);
}

/* Parses body and expects the given refusal. code/param NULL mean JSON null. */
static void expect_err(const char *name, api_kind kind, const char *body, int status,
                       const char *code, const char *param, const char *msg_part) {
    tu_case("reject/%s/%s", kind == API_CHAT ? "chat" : "completion", name);
    api_request req;
    api_error err;
    memset(&err, 0, sizeof err);
    const char *b = q(body);
    int rc = api_parse_request(kind, b, strlen(b), VOCAB, &req, &err);
    TU_CHECK(rc == -1, "accepted: %s", b);
    if (rc != -1) {
        api_request_free(&req);
        return;
    }
    TU_CHECK(err.status == status, "status %d, want %d (%s)", err.status, status, err.message);
    TU_CHECK(err.type && strcmp(err.type, "invalid_request_error") == 0, "type %s",
             err.type ? err.type : "(null)");
    if (code)
        TU_CHECK(err.code && strcmp(err.code, code) == 0, "code %s, want %s (%s)",
                 err.code ? err.code : "null", code, err.message);
    else
        TU_CHECK(err.code == NULL, "code %s, want null (%s)", err.code, err.message);
    TU_CHECK(strcmp(err.param, param ? param : "") == 0, "param '%s', want '%s' (%s)", err.param,
             param ? param : "", err.message);
    if (msg_part)
        TU_CHECK(strstr(err.message, msg_part) != NULL, "message '%s' lacks '%s'", err.message,
                 msg_part);
    TU_CHECK(req.model == NULL && req.messages == NULL && req.prompts == NULL,
             "request not emptied after a refusal");

    /* the envelope: param and code as strings or JSON null, never numbers */
    char *out = api_error_body(&err);
    cJSON *j = parse_out("error body", out);
    if (j) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *jc = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *jp = cJSON_GetObjectItemCaseSensitive(e, "param");
        TU_CHECK(code ? cJSON_IsString(jc) && strcmp(jc->valuestring, code) == 0 : cJSON_IsNull(jc),
                 "envelope code wrong: %s", out);
        TU_CHECK(param ? cJSON_IsString(jp) && strcmp(jp->valuestring, param) == 0
                       : cJSON_IsNull(jp),
                 "envelope param wrong: %s", out);
        TU_CHECK(jstr(e, "message") && strcmp(jstr(e, "message"), err.message) == 0,
                 "envelope message differs");
        TU_CHECK(jstr(e, "type") && strcmp(jstr(e, "type"), "invalid_request_error") == 0,
                 "envelope type wrong");
        cJSON_Delete(j);
    }
    keep_error_body(out);
}

#define CHAT_MSGS "'messages':[{'role':'user','content':'hi'}]"
#define C(name, body, code, param, msg)                                                            \
    expect_err(name, API_CHAT, "{'model':'m'," CHAT_MSGS "," body "}", 400, code, param, msg)
#define P(name, body, code, param, msg)                                                            \
    expect_err(name, API_COMPLETION, "{'model':'m','prompt':'hi'," body "}", 400, code, param, msg)

/* A request that must parse; the caller checks fields and frees. */
static bool parse_ok(const char *name, api_kind kind, const char *body, api_request *req) {
    tu_case("accept/%s/%s", kind == API_CHAT ? "chat" : "completion", name);
    api_error err;
    memset(&err, 0, sizeof err);
    const char *b = q(body);
    int rc = api_parse_request(kind, b, strlen(b), VOCAB, req, &err);
    TU_CHECK(rc == 0, "refused (%d %s param=%s): %s", err.status, err.message, err.param, b);
    return rc == 0;
}

/* ------------------------------------------------------ request: refusals */

static void test_reject_json(void) {
    const char *parse_msg = "We could not parse the JSON body of your request.";
    expect_err("malformed", API_CHAT, "{'model':", 400, NULL, NULL, parse_msg);
    expect_err("empty-body", API_CHAT, "", 400, NULL, NULL, parse_msg);
    expect_err("trailing-garbage", API_CHAT, "{'model':'m'," CHAT_MSGS "} x", 400, NULL, NULL,
               parse_msg);
    expect_err("two-values", API_COMPLETION, "{'model':'m','prompt':'a'}{}", 400, NULL, NULL,
               parse_msg);
    expect_err("top-level-array", API_CHAT, "[1]", 400, "invalid_type", NULL,
               "expected an object, but got an array instead");
    expect_err("top-level-string", API_COMPLETION, "'x'", 400, "invalid_type", NULL,
               "got a string");

    tu_case("reject/chat/body-not-nul-terminated");
    /* the HTTP layer hands over a buffer and a length: nothing after len may be read */
    char buf[64];
    memcpy(buf, q("{'model':'m'," CHAT_MSGS "}"), 50);
    api_request req;
    api_error err;
    int rc = api_parse_request(API_CHAT, buf, 10, VOCAB, &req, &err);
    TU_CHECK(rc == -1 && err.status == 400, "a truncated body parsed");

    tu_case("accept/chat/body-exact-length-heap");
    /* a heap copy without a terminator, so ASan sees any read past len */
    const char *full = q("{'model':'m'," CHAT_MSGS ",'stop':['a'],'temperature':1}");
    size_t flen = strlen(full);
    char *heap = malloc(flen);
    TU_CHECK(heap != NULL, "malloc");
    if (heap) {
        memcpy(heap, full, flen);
        rc = api_parse_request(API_CHAT, heap, flen, VOCAB, &req, &err);
        TU_CHECK(rc == 0, "refused: %s", err.message);
        if (rc == 0) api_request_free(&req);
        for (size_t cut = 0; cut < flen; cut++) {
            rc = api_parse_request(API_CHAT, heap + flen - cut, cut, VOCAB, &req, &err);
            TU_CHECK(rc == -1, "a tail of %zu bytes parsed", cut);
        }
        free(heap);
    }
}

static void test_reject_model_and_messages(void) {
    expect_err("missing-model", API_CHAT, "{" CHAT_MSGS "}", 400, "missing_required_parameter",
               "model", "you must provide a model parameter");
    expect_err("empty-model", API_CHAT, "{'model':''," CHAT_MSGS "}", 400,
               "missing_required_parameter", "model", NULL);
    expect_err("null-model", API_COMPLETION, "{'model':null,'prompt':'x'}", 400,
               "missing_required_parameter", "model", NULL);
    expect_err("model-type", API_CHAT, "{'model':5," CHAT_MSGS "}", 400, "invalid_type", "model",
               "Invalid type for 'model': expected a string, but got an integer instead.");
    expect_err("missing-messages", API_CHAT, "{'model':'m'}", 400, "missing_required_parameter",
               "messages", "Missing required parameter: 'messages'.");
    expect_err("messages-type", API_CHAT, "{'model':'m','messages':'hi'}", 400, "invalid_type",
               "messages", "expected an array, but got a string instead");
    expect_err("messages-empty", API_CHAT, "{'model':'m','messages':[]}", 400, "empty_array",
               "messages",
               "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
               "an empty array instead.");
    expect_err("message-not-object", API_CHAT, "{'model':'m','messages':[1]}", 400, "invalid_type",
               "messages[0]", "expected an object, but got an integer instead");
    expect_err("role-missing", API_CHAT, "{'model':'m','messages':[{'content':'x'}]}", 400,
               "missing_required_parameter", "messages[0].role",
               "Missing required parameter: 'messages[0].role'.");
    expect_err("role-invalid", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':'a'},{'role':'bot','content':'x'}"
               "]}",
               400, "invalid_value", "messages[1].role", "Invalid value: 'bot'.");
    expect_err("role-function", API_CHAT,
               "{'model':'m','messages':[{'role':'function','name':'f','content':'x'}]}", 400,
               "unsupported_value", "messages[0].role", NULL);
    expect_err("role-type", API_CHAT, "{'model':'m','messages':[{'role':1,'content':'x'}]}", 400,
               "invalid_type", "messages[0].role", NULL);
    expect_err("role-case", API_CHAT, "{'model':'m','messages':[{'role':'User','content':'x'}]}",
               400, "invalid_value", "messages[0].role", NULL);
    expect_err("content-missing", API_CHAT, "{'model':'m','messages':[{'role':'user'}]}", 400,
               "missing_required_parameter", "messages[0].content", NULL);
    expect_err("content-null", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':null}]}", 400, "invalid_type",
               "messages[0].content", "got null instead");
    expect_err("content-number", API_CHAT,
               "{'model':'m','messages':[{'role':'system','content':5}]}", 400, "invalid_type",
               "messages[0].content",
               "Invalid type for 'messages[0].content': expected one of a string or array of "
               "objects, but got an integer instead.");
    expect_err("content-object", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':{'type':'text'}}]}", 400,
               "invalid_type", "messages[0].content", "but got an object instead");
    expect_err("assistant-null-content-no-tools", API_CHAT,
               "{'model':'m','messages':[{'role':'assistant','content':null}]}", 400,
               "invalid_type", "messages[0].content", NULL);
    expect_err("part-not-object", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':['x']}]}", 400, "invalid_type",
               "messages[0].content[0]", NULL);
    expect_err("part-image", API_CHAT,
               "{'model':'m','messages':[{'role':'system','content':'s'},{'role':'user','content':"
               "[{'type':'image_url','image_url':{'url':'http://x/y.png'}}]}]}",
               400, "unsupported_value", "messages[1].content[0].type", "image_url");
    expect_err("part-audio", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'a'},"
               "{'type':'input_audio','input_audio':{}}]}]}",
               400, "unsupported_value", "messages[0].content[1].type", NULL);
    expect_err("part-unknown-type", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'a'},"
               "{'type':'video'}]}]}",
               400, "invalid_value", "messages[0].content[1].type", "Invalid value: 'video'.");
    expect_err("part-type-missing", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':[{'text':'a'}]}]}", 400,
               "missing_required_parameter", "messages[0].content[0].type", NULL);
    expect_err("part-text-missing", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':[{'type':'text'}]}]}", 400,
               "missing_required_parameter", "messages[0].content[0].text", NULL);
    expect_err("part-text-type", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':1}]}]}",
               400, "invalid_type", "messages[0].content[0].text", NULL);
    expect_err("name-type", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':'x','name':3}]}", 400,
               "invalid_type", "messages[0].name", NULL);
    expect_err("tool-call-id-missing", API_CHAT,
               "{'model':'m','messages':[{'role':'user','content':'x'},{'role':'tool','content':"
               "'42'}]}",
               400, "missing_required_parameter", "messages[1].tool_call_id", NULL);
    expect_err("tool-call-id-type", API_CHAT,
               "{'model':'m','messages':[{'role':'tool','content':'42','tool_call_id':7}]}", 400,
               "invalid_type", "messages[0].tool_call_id", NULL);
    expect_err("tool-calls-type", API_CHAT,
               "{'model':'m','messages':[{'role':'assistant','content':null,'tool_calls':{}}]}",
               400, "invalid_type", "messages[0].tool_calls", NULL);
    expect_err("tool-calls-empty", API_CHAT,
               "{'model':'m','messages':[{'role':'assistant','content':'x','tool_calls':[]}]}", 400,
               "empty_array", "messages[0].tool_calls", NULL);
}

static void test_reject_sampling(void) {
    C("temperature-type", "'temperature':'hot'", "invalid_type", "temperature",
      "Invalid type for 'temperature': expected a decimal, but got a string instead.");
    C("temperature-bool", "'temperature':true", "invalid_type", "temperature",
      "but got a boolean instead");
    C("temperature-high", "'temperature':2.5", "decimal_above_max_value", "temperature",
      "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 "
      "instead.");
    C("temperature-huge", "'temperature':1e999", "decimal_above_max_value", "temperature", NULL);
    C("temperature-negative", "'temperature':-0.1", "decimal_below_min_value", "temperature",
      "Expected a value >= 0, but got -0.1 instead.");
    C("top-p-high", "'top_p':1.5", "decimal_above_max_value", "top_p", NULL);
    C("top-p-type", "'top_p':[1]", "invalid_type", "top_p", "but got an array instead");
    C("presence-low", "'presence_penalty':-3", "decimal_below_min_value", "presence_penalty", NULL);
    C("frequency-high", "'frequency_penalty':2.01", "decimal_above_max_value", "frequency_penalty",
      NULL);
    C("n-zero", "'n':0", "integer_below_min_value", "n",
      "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.");
    C("n-too-many", "'n':17", "integer_above_max_value", "n",
      "Invalid 'n': integer above maximum value. Expected a value <= 16, but got 17 instead.");
    C("n-decimal", "'n':1.5", "invalid_type", "n",
      "Invalid type for 'n': expected an integer, but got a decimal instead.");
    C("n-string", "'n':'2'", "invalid_type", "n", "but got a string instead");
    C("max-tokens-zero", "'max_tokens':0", "integer_below_min_value", "max_tokens", NULL);
    C("max-tokens-huge", "'max_tokens':1e300", "integer_above_max_value", "max_tokens", NULL);
    C("max-tokens-type", "'max_tokens':'10'", "invalid_type", "max_tokens", NULL);
    C("max-completion-tokens-negative", "'max_completion_tokens':-1", "integer_below_min_value",
      "max_completion_tokens", NULL);
    C("max-tokens-and-max-completion-tokens", "'max_tokens':5,'max_completion_tokens':5",
      "invalid_parameter_combination", "max_tokens",
      "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported.");
    C("stop-too-many", "'stop':['a','b','c','d','e']", "array_above_max_length", "stop",
      "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an "
      "array with length 5 instead.");
    C("stop-type", "'stop':5", "invalid_type", "stop",
      "expected one of a string or array of strings, but got an integer instead");
    C("stop-element-type", "'stop':['a',1]", "invalid_type", "stop[1]", NULL);
    C("logit-bias-type", "'logit_bias':'x'", "invalid_type", "logit_bias",
      "expected an object, but got a string instead");
    C("logit-bias-key-word", "'logit_bias':{'abc':1}", NULL, "logit_bias",
      "Invalid key in 'logit_bias': abc. You should only be submitting non-negative integers.");
    C("logit-bias-key-negative", "'logit_bias':{'-1':1}", NULL, "logit_bias", NULL);
    C("logit-bias-key-space", "'logit_bias':{' 5':1}", NULL, "logit_bias", NULL);
    C("logit-bias-key-vocab", "'logit_bias':{'1000':1}", NULL, "logit_bias",
      "Invalid key in 'logit_bias': 1000. Maximum value is 999.");
    C("logit-bias-key-huge", "'logit_bias':{'99999999999999999999':1}", NULL, "logit_bias",
      "Maximum value is 999.");
    C("logit-bias-value-high", "'logit_bias':{'5':101}", "decimal_above_max_value", "logit_bias",
      NULL);
    C("logit-bias-value-low", "'logit_bias':{'5':-100.5}", "decimal_below_min_value", "logit_bias",
      NULL);
    C("logit-bias-value-type", "'logit_bias':{'5':'a'}", "invalid_type", "logit_bias", NULL);
    C("logprobs-type", "'logprobs':'yes'", "invalid_type", "logprobs",
      "expected a boolean, but got a string instead");
    C("top-logprobs-without-logprobs", "'top_logprobs':3", NULL, "top_logprobs",
      "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.");
    C("top-logprobs-with-logprobs-false", "'logprobs':false,'top_logprobs':2", NULL, "top_logprobs",
      NULL);
    C("top-logprobs-high", "'logprobs':true,'top_logprobs':21", "integer_above_max_value",
      "top_logprobs", NULL);
    C("top-logprobs-negative", "'logprobs':true,'top_logprobs':-1", "integer_below_min_value",
      "top_logprobs", NULL);
    C("seed-decimal", "'seed':1.5", "invalid_type", "seed", NULL);
    C("seed-string", "'seed':'1'", "invalid_type", "seed", NULL);
    C("user-type", "'user':5", "invalid_type", "user", NULL);
    C("stream-type", "'stream':'true'", "invalid_type", "stream", NULL);
    C("stream-options-without-stream", "'stream_options':{'include_usage':true}", NULL,
      "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    C("stream-options-stream-false", "'stream':false,'stream_options':{'include_usage':true}", NULL,
      "stream_options", NULL);
    C("stream-options-type", "'stream':true,'stream_options':true", "invalid_type",
      "stream_options", NULL);
    C("stream-options-include-usage-type", "'stream':true,'stream_options':{'include_usage':1}",
      "invalid_type", "stream_options.include_usage", NULL);
    C("stream-options-unknown", "'stream':true,'stream_options':{'foo':1}", NULL,
      "stream_options.foo", NULL);
    C("top-k-negative", "'top_k':-1", "integer_below_min_value", "top_k", NULL);
    C("top-k-decimal", "'top_k':1.5", "invalid_type", "top_k", NULL);
    C("min-p-high", "'min_p':1.5", "decimal_above_max_value", "min_p", NULL);
    C("repetition-penalty-zero", "'repetition_penalty':0", "decimal_below_min_value",
      "repetition_penalty", "Expected a value > 0, but got 0 instead.");
    C("chat-template-kwargs-type", "'chat_template_kwargs':[]", "invalid_type",
      "chat_template_kwargs", NULL);
    C("metadata-type", "'metadata':'x'", "invalid_type", "metadata", NULL);
    C("metadata-value-type", "'metadata':{'a':1}", "invalid_type", "metadata", NULL);
    C("store-type", "'store':'no'", "invalid_type", "store", NULL);
    C("service-tier-flex", "'service_tier':'flex'", "unsupported_value", "service_tier", NULL);
    C("service-tier-bogus", "'service_tier':'bogus'", "invalid_value", "service_tier", NULL);
    C("service-tier-type", "'service_tier':1", "invalid_type", "service_tier", NULL);
}

static void test_reject_unknown_and_unsupported(void) {
    C("unknown-field", "'foo':1", NULL, "foo", "Unrecognized request argument supplied: foo");
    C("unknown-field-null", "'foo':null", NULL, "foo", NULL);
    C("completion-field-in-chat", "'echo':false", NULL, "echo", NULL);
    C("prompt-in-chat", "'prompt':'x'", NULL, "prompt", NULL);
    C("field-case-matters", "'Temperature':1", NULL, "Temperature", NULL);
    P("chat-field-in-completion", "'max_completion_tokens':5", NULL, "max_completion_tokens", NULL);
    P("messages-in-completion", "'messages':[]", NULL, "messages", NULL);
    P("chat-template-kwargs-in-completion", "'chat_template_kwargs':{}", NULL,
      "chat_template_kwargs", NULL);

    static const char *const fields[][2] = {
        {"functions", "'functions':[{'name':'f'}]"},
        {"function_call", "'function_call':'auto'"},
        {"functions", "'functions':[{'name':'f'}],'tools':[{'type':'function','function':"
                      "{'name':'f'}}]"},
        {"audio", "'audio':{'voice':'alloy','format':'wav'}"},
        {"modalities", "'modalities':['text','audio']"},
        {"prediction", "'prediction':{'type':'content','content':'x'}"},
        {"web_search_options", "'web_search_options':{}"},
        {"verbosity", "'verbosity':'low'"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char name[64], body[256];
        snprintf(name, sizeof name, "unsupported-%s-%zu", fields[i][0], i);
        snprintf(body, sizeof body, "{'model':'m'," CHAT_MSGS ",%s}", fields[i][1]);
        expect_err(name, API_CHAT, body, 400, "unsupported_parameter", fields[i][0],
                   "is not supported yet");
    }
    C("response-format-type-missing", "'response_format':{}", "missing_required_parameter",
      "response_format.type", NULL);
    C("response-format-not-object", "'response_format':'text'", "invalid_type", "response_format",
      NULL);
}

/* tools, tool_choice, parallel_tool_calls, response_format, reasoning_effort */
#define TOOL_F "{'type':'function','function':{'name':'f'}}"
#define TOOLS  "'tools':[" TOOL_F "]"

static void test_reject_steering(void) {
    C("tools-type", "'tools':{}", "invalid_type", "tools",
      "Invalid type for 'tools': expected an array, but got an object instead.");
    C("tools-empty", "'tools':[]", "empty_array", "tools",
      "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty "
      "array instead.");
    C("tool-not-object", "'tools':[" TOOL_F ",'f']", "invalid_type", "tools[1]", "got a string");
    C("tool-type-missing", "'tools':[{'function':{'name':'f'}}]", "missing_required_parameter",
      "tools[0].type", "Missing required parameter: 'tools[0].type'.");
    C("tool-type-type", "'tools':[{'type':1,'function':{'name':'f'}}]", "invalid_type",
      "tools[0].type", NULL);
    C("tool-type-bogus", "'tools':[{'type':'fn','function':{'name':'f'}}]", "invalid_value",
      "tools[0].type", "Invalid value: 'fn'. Supported values are: 'function' and 'custom'.");
    C("tool-type-custom", "'tools':[{'type':'custom','custom':{'name':'f'}}]", "unsupported_value",
      "tools[0].type", NULL);
    C("tool-function-missing", "'tools':[{'type':'function','name':'f','parameters':{}}]",
      "missing_required_parameter", "tools[0].function", NULL);
    C("tool-function-type", "'tools':[{'type':'function','function':'f'}]", "invalid_type",
      "tools[0].function", NULL);
    C("tool-unknown-member", "'tools':[{'type':'function','function':{'name':'f'},'x':1}]",
      "unknown_parameter", "tools[0].x", "Unknown parameter: 'tools[0].x'.");
    C("tool-name-missing", "'tools':[" TOOL_F ",{'type':'function','function':{}}]",
      "missing_required_parameter", "tools[1].function.name",
      "Missing required parameter: 'tools[1].function.name'.");
    C("tool-name-null", "'tools':[{'type':'function','function':{'name':null}}]",
      "missing_required_parameter", "tools[0].function.name", NULL);
    C("tool-name-type", "'tools':[{'type':'function','function':{'name':1}}]", "invalid_type",
      "tools[0].function.name",
      "Invalid type for 'tools[0].function.name': expected a string, but got an integer "
      "instead.");
    C("tool-name-pattern", "'tools':[{'type':'function','function':{'name':'get weather'}}]",
      "invalid_value", "tools[0].function.name",
      "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that "
      "matches the pattern '^[a-zA-Z0-9_-]+$'.");
    C("tool-name-dot", "'tools':[{'type':'function','function':{'name':'a.b'}}]", "invalid_value",
      "tools[0].function.name", NULL);
    C("tool-name-unicode", "'tools':[{'type':'function','function':{'name':'caf\\u00e9'}}]",
      "invalid_value", "tools[0].function.name", NULL);
    C("tool-name-empty", "'tools':[{'type':'function','function':{'name':''}}]", "empty_string",
      "tools[0].function.name", NULL);
    C("tool-name-65",
      "'tools':[{'type':'function','function':{'name':"
      "'a234567890123456789012345678901234567890123456789012345678901234x'}}]",
      "string_above_max_length", "tools[0].function.name",
      "Expected a string with maximum length 64, but got a string with length 65 instead.");
    C("tool-description-type",
      "'tools':[{'type':'function','function':{'name':'f','description':"
      "[]}}]",
      "invalid_type", "tools[0].function.description", NULL);
    C("tool-parameters-type",
      "'tools':[{'type':'function','function':{'name':'f','parameters':"
      "'{}'}}]",
      "invalid_type", "tools[0].function.parameters",
      "expected an object, but got a string instead");
    C("tool-strict-type", "'tools':[{'type':'function','function':{'name':'f','strict':'yes'}}]",
      "invalid_type", "tools[0].function.strict", NULL);
    C("tool-function-unknown", "'tools':[{'type':'function','function':{'name':'f','args':{}}}]",
      "unknown_parameter", "tools[0].function.args", NULL);

    tu_case("reject/chat/tools-129");
    {
        /* 129 tools: one over OpenAI's limit */
        static char body[8192];
        size_t n = (size_t)snprintf(body, sizeof body, "{'model':'m'," CHAT_MSGS ",'tools':[");
        for (int i = 0; i < 129; i++)
            n += (size_t)snprintf(body + n, sizeof body - n,
                                  "%s{'type':'function','function':{'name':'f%d'}}", i ? "," : "",
                                  i);
        snprintf(body + n, sizeof body - n, "]}");
        expect_err("tools-129", API_CHAT, body, 400, "array_above_max_length", "tools",
                   "Invalid 'tools': array too long. Expected an array with maximum length 128, "
                   "but got an array with length 129 instead.");
    }

    const char *no_tools = "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                           "'tools' are specified.";
    C("tool-choice-auto-no-tools", "'tool_choice':'auto'", NULL, "tool_choice", no_tools);
    C("tool-choice-required-no-tools", "'tool_choice':'required'", NULL, "tool_choice", no_tools);
    C("tool-choice-named-no-tools", "'tool_choice':{'type':'function','function':{'name':'f'}}",
      NULL, "tool_choice", no_tools);
    C("tool-choice-auto-null-tools", "'tools':null,'tool_choice':'auto'", NULL, "tool_choice",
      no_tools);
    C("tool-choice-bogus", TOOLS ",'tool_choice':'any'", "invalid_value", "tool_choice",
      "Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.");
    C("tool-choice-type", TOOLS ",'tool_choice':true", "invalid_type", "tool_choice",
      "expected one of a string or object, but got a boolean instead");
    C("tool-choice-array", TOOLS ",'tool_choice':['f']", "invalid_type", "tool_choice", NULL);
    C("tool-choice-type-missing", TOOLS ",'tool_choice':{'function':{'name':'f'}}",
      "missing_required_parameter", "tool_choice.type", NULL);
    C("tool-choice-type-bogus", TOOLS ",'tool_choice':{'type':'tool','function':{'name':'f'}}",
      "invalid_value", "tool_choice.type", NULL);
    C("tool-choice-allowed-tools",
      TOOLS ",'tool_choice':{'type':'allowed_tools','allowed_tools':"
            "{'mode':'auto','tools':[]}}",
      "unsupported_value", "tool_choice.type", NULL);
    C("tool-choice-function-missing", TOOLS ",'tool_choice':{'type':'function','name':'f'}",
      "missing_required_parameter", "tool_choice.function", NULL);
    C("tool-choice-function-type", TOOLS ",'tool_choice':{'type':'function','function':'f'}",
      "invalid_type", "tool_choice.function", NULL);
    C("tool-choice-name-missing", TOOLS ",'tool_choice':{'type':'function','function':{}}",
      "missing_required_parameter", "tool_choice.function.name", NULL);
    C("tool-choice-name-type", TOOLS ",'tool_choice':{'type':'function','function':{'name':5}}",
      "invalid_type", "tool_choice.function.name", NULL);
    C("tool-choice-unknown-member",
      TOOLS ",'tool_choice':{'type':'function','function':{'name':'f'},'x':1}", "unknown_parameter",
      "tool_choice.x", NULL);
    C("tool-choice-function-unknown-member",
      TOOLS ",'tool_choice':{'type':'function','function':{'name':'f','arguments':'{}'}}",
      "unknown_parameter", "tool_choice.function.arguments", NULL);
    C("tool-choice-name-not-a-tool",
      TOOLS ",'tool_choice':{'type':'function','function':{'name':"
            "'g'}}",
      "invalid_value", "tool_choice", "Invalid value for 'tool_choice': function 'g'");
    C("parallel-tool-calls-type", TOOLS ",'parallel_tool_calls':'yes'", "invalid_type",
      "parallel_tool_calls", "expected a boolean, but got a string instead");

    C("response-format-type-type", "'response_format':{'type':1}", "invalid_type",
      "response_format.type", NULL);
    C("response-format-type-bogus", "'response_format':{'type':'xml'}", "invalid_value",
      "response_format.type",
      "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'.");
    C("response-format-json-object-schema", "'response_format':{'type':'json_object','schema':{}}",
      "unknown_parameter", "response_format.schema",
      "Unknown parameter: 'response_format.schema'.");
    C("response-format-text-extra", "'response_format':{'type':'text','json_schema':{}}",
      "unknown_parameter", "response_format.json_schema", NULL);
    C("json-schema-missing", "'response_format':{'type':'json_schema'}",
      "missing_required_parameter", "response_format.json_schema",
      "Missing required parameter: 'response_format.json_schema'.");
    C("json-schema-type", "'response_format':{'type':'json_schema','json_schema':[]}",
      "invalid_type", "response_format.json_schema", NULL);
    C("json-schema-name-missing", "'response_format':{'type':'json_schema','json_schema':{}}",
      "missing_required_parameter", "response_format.json_schema.name",
      "Missing required parameter: 'response_format.json_schema.name'.");
    C("json-schema-name-type", "'response_format':{'type':'json_schema','json_schema':{'name':1}}",
      "invalid_type", "response_format.json_schema.name", NULL);
    C("json-schema-name-pattern",
      "'response_format':{'type':'json_schema','json_schema':{'name':'my schema'}}",
      "invalid_value", "response_format.json_schema.name", "does not match pattern");
    C("json-schema-schema-type",
      "'response_format':{'type':'json_schema','json_schema':{'name':'s','schema':'{}'}}",
      "invalid_type", "response_format.json_schema.schema", NULL);
    C("json-schema-schema-bool",
      "'response_format':{'type':'json_schema','json_schema':{'name':'s','schema':true}}",
      "invalid_type", "response_format.json_schema.schema", NULL);
    C("json-schema-strict-type",
      "'response_format':{'type':'json_schema','json_schema':{'name':'s','strict':1}}",
      "invalid_type", "response_format.json_schema.strict", NULL);
    C("json-schema-description-type",
      "'response_format':{'type':'json_schema','json_schema':{'name':'s','description':{}}}",
      "invalid_type", "response_format.json_schema.description", NULL);
    C("json-schema-unknown-member",
      "'response_format':{'type':'json_schema','json_schema':{'name':'s','type':'object'}}",
      "unknown_parameter", "response_format.json_schema.type", NULL);
    C("json-schema-flat-schema",
      "'response_format':{'type':'json_schema','json_schema':{'name':'s'},'schema':{}}",
      "unknown_parameter", "response_format.schema", NULL);

    C("reasoning-effort-bogus", "'reasoning_effort':'max'", "invalid_value", "reasoning_effort",
      "Invalid value: 'max'. Supported values are: 'none', 'minimal', 'low', 'medium', and "
      "'high'.");
    C("reasoning-effort-case", "'reasoning_effort':'High'", "invalid_value", "reasoning_effort",
      NULL);
    C("reasoning-effort-type", "'reasoning_effort':1", "invalid_type", "reasoning_effort", NULL);
    P("tools-in-completion", TOOLS, NULL, "tools", "Unrecognized request argument supplied: tools");
    P("response-format-in-completion", "'response_format':{'type':'text'}", NULL, "response_format",
      NULL);
    P("reasoning-effort-in-completion", "'reasoning_effort':'low'", NULL, "reasoning_effort", NULL);
}

static void test_reject_completion(void) {
    expect_err("prompt-missing", API_COMPLETION, "{'model':'m'}", 400, "missing_required_parameter",
               "prompt", "Missing required parameter: 'prompt'.");
    expect_err("prompt-null", API_COMPLETION, "{'model':'m','prompt':null}", 400,
               "missing_required_parameter", "prompt", NULL);
    expect_err("model-missing", API_COMPLETION, "{'prompt':'x'}", 400, "missing_required_parameter",
               "model", NULL);
    expect_err("prompt-type", API_COMPLETION, "{'model':'m','prompt':5}", 400, "invalid_type",
               "prompt", NULL);
    expect_err("prompt-object", API_COMPLETION, "{'model':'m','prompt':{}}", 400, "invalid_type",
               "prompt", NULL);
    expect_err("prompt-empty-array", API_COMPLETION, "{'model':'m','prompt':[]}", 400,
               "empty_array", "prompt", NULL);
    expect_err("prompt-strings-mixed", API_COMPLETION, "{'model':'m','prompt':['a',1]}", 400,
               "invalid_type", "prompt[1]", NULL);
    expect_err("prompt-ids-mixed", API_COMPLETION, "{'model':'m','prompt':[1,'a']}", 400,
               "invalid_type", "prompt[1]", NULL);
    expect_err("prompt-ids-decimal", API_COMPLETION, "{'model':'m','prompt':[1,2.5]}", 400,
               "invalid_type", "prompt[1]", "got a decimal");
    expect_err("prompt-ids-out-of-vocab", API_COMPLETION, "{'model':'m','prompt':[1,1000]}", 400,
               "invalid_value", "prompt[1]", NULL);
    expect_err("prompt-ids-negative", API_COMPLETION, "{'model':'m','prompt':[-1]}", 400,
               "invalid_value", "prompt[0]", NULL);
    expect_err("prompt-id-arrays-empty", API_COMPLETION, "{'model':'m','prompt':[[1],[]]}", 400,
               "empty_array", "prompt[1]", NULL);
    expect_err("prompt-id-arrays-mixed", API_COMPLETION, "{'model':'m','prompt':[[1],[2,'x']]}",
               400, "invalid_type", "prompt[1][1]", NULL);
    expect_err("prompt-id-arrays-not-array", API_COMPLETION, "{'model':'m','prompt':[[1],2]}", 400,
               "invalid_type", "prompt[1]", NULL);
    expect_err("prompt-id-arrays-vocab", API_COMPLETION, "{'model':'m','prompt':[[1],[5,9999]]}",
               400, "invalid_value", "prompt[1][1]", NULL);
    expect_err("prompt-bool", API_COMPLETION, "{'model':'m','prompt':[true]}", 400, "invalid_type",
               "prompt[0]", NULL);
    P("echo-true", "'echo':true", "unsupported_value", "echo", NULL);
    P("echo-type", "'echo':'x'", "invalid_type", "echo", NULL);
    P("suffix", "'suffix':'abc'", "unsupported_parameter", "suffix", NULL);
    P("suffix-type", "'suffix':1", "invalid_type", "suffix", NULL);
    P("best-of-below-n", "'n':2,'best_of':1", "invalid_value", "best_of", NULL);
    P("best-of-above-n", "'n':2,'best_of':3", "unsupported_value", "best_of", NULL);
    P("best-of-zero", "'best_of':0", "integer_below_min_value", "best_of", NULL);
    P("logprobs-high", "'logprobs':6", "integer_above_max_value", "logprobs",
      "Expected a value <= 5, but got 6 instead.");
    P("logprobs-bool", "'logprobs':true", "invalid_type", "logprobs",
      "expected an integer, but got a boolean instead");
    P("top-logprobs", "'top_logprobs':2", NULL, "top_logprobs", NULL);
    P("temperature-high", "'temperature':3", "decimal_above_max_value", "temperature", NULL);
    P("stop-too-many", "'stop':['a','b','c','d','e']", "array_above_max_length", "stop", NULL);
    P("stream-options-without-stream", "'stream_options':{}", NULL, "stream_options", NULL);
    P("logit-bias-vocab", "'logit_bias':{'5000':1}", NULL, "logit_bias", NULL);
    P("unknown", "'bar':true", NULL, "bar", "Unrecognized request argument supplied: bar");
}

/* ------------------------------------------------------ request: accepted */

static void test_accept_chat(void) {
    api_request r;
    if (parse_ok("minimal", API_CHAT, "{'model':'m'," CHAT_MSGS "}", &r)) {
        TU_CHECK(r.kind == API_CHAT && strcmp(r.model, "m") == 0, "model");
        TU_CHECK(r.n_messages == 1 && strcmp(r.messages[0].role, "user") == 0 &&
                     strcmp(r.messages[0].content, "hi") == 0,
                 "message");
        TU_CHECK(r.temperature == 1 && r.top_p == 1 && r.n == 1 && r.repetition_penalty == 1,
                 "defaults");
        TU_CHECK(r.max_tokens == 0 && r.top_k == 0 && r.min_p == 0 && !r.has_seed && !r.stream &&
                     !r.include_usage && !r.logprobs && r.top_logprobs == 0,
                 "defaults");
        TU_CHECK(r.stop[0] == NULL && r.n_logit_bias == 0 && r.user == NULL &&
                     r.chat_template_kwargs == NULL && r.prompts == NULL && r.n_prompts == 0 &&
                     r.add_generation_prompt,
                 "defaults");
        api_request_free(&r);
        TU_CHECK(r.model == NULL && r.messages == NULL, "free zeroes");
    }

    if (parse_ok("every-field", API_CHAT,
                 "{'model':'qwen','messages':[{'role':'developer','content':'be brief'},"
                 "{'role':'system','content':'sys'},{'role':'user','content':'q','name':'bob'}],"
                 "'temperature':0.5,'top_p':0.9,'n':3,'max_completion_tokens':77,"
                 "'presence_penalty':-1.5,'frequency_penalty':2,'stop':['END','','x'],"
                 "'logit_bias':{'5':-100,'999':100,'0':1.5},'logprobs':true,'top_logprobs':20,"
                 "'seed':-1,'user':'u1','stream':true,'stream_options':{'include_usage':true,"
                 "'include_obfuscation':false},'top_k':40,'min_p':0.05,"
                 "'repetition_penalty':1.1,'chat_template_kwargs':{'enable_thinking':false},"
                 "'metadata':{'k':'v'},'store':false,'service_tier':'auto',"
                 "'safety_identifier':'s','prompt_cache_key':'c','response_format':{'type':'text'}"
                 ",'tool_choice':'none','modalities':['text'],'tools':null,"
                 "'parallel_tool_calls':null}",
                 &r)) {
        TU_CHECK(r.n_messages == 3 && strcmp(r.messages[0].role, "developer") == 0 &&
                     strcmp(r.messages[2].name, "bob") == 0,
                 "messages");
        TU_CHECK(r.temperature == 0.5 && r.top_p == 0.9 && r.n == 3 && r.max_tokens == 77,
                 "sampling");
        TU_CHECK(r.presence_penalty == -1.5 && r.frequency_penalty == 2, "penalties");
        TU_CHECK(r.stop[0] && strcmp(r.stop[0], "END") == 0 && r.stop[1] &&
                     strcmp(r.stop[1], "x") == 0 && r.stop[2] == NULL,
                 "stop (empty strings dropped)");
        TU_CHECK(r.n_logit_bias == 3 && r.logit_bias[0].id == 5 &&
                     r.logit_bias[0].bias == -100.0f && r.logit_bias[1].id == 999 &&
                     r.logit_bias[2].id == 0 && r.logit_bias[2].bias == 1.5f,
                 "logit_bias");
        TU_CHECK(r.logprobs && r.top_logprobs == 20, "logprobs");
        TU_CHECK(r.has_seed && r.seed == UINT64_MAX, "seed -1 keeps its bits");
        TU_CHECK(r.user && strcmp(r.user, "u1") == 0, "user");
        TU_CHECK(r.stream && r.include_usage, "stream");
        TU_CHECK(r.top_k == 40 && fabs(r.min_p - 0.05) < 1e-12 &&
                     fabs(r.repetition_penalty - 1.1) < 1e-12,
                 "extensions");
        TU_CHECK(cJSON_IsObject(r.chat_template_kwargs) &&
                     cJSON_IsFalse(cJSON_GetObjectItem(r.chat_template_kwargs, "enable_thinking")),
                 "chat_template_kwargs copied");
        api_request_free(&r);
    }

    if (parse_ok("nulls-are-absent", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'temperature':null,'top_p':null,'n':null,'stop':null,"
                 "'max_tokens':null,'max_completion_tokens':null,'logit_bias':null,"
                 "'logprobs':null,'top_logprobs':null,'seed':null,'stream':null,"
                 "'stream_options':null,'user':null,'metadata':null,'service_tier':null,"
                 "'tools':null,'tool_choice':null,'response_format':null,'store':null}",
                 &r)) {
        TU_CHECK(r.temperature == 1 && r.n == 1 && !r.has_seed && r.max_tokens == 0,
                 "null fields left at their defaults");
        api_request_free(&r);
    }

    if (parse_ok("max-tokens", API_CHAT, "{'model':'m'," CHAT_MSGS ",'max_tokens':12}", &r)) {
        TU_CHECK(r.max_tokens == 12, "max_tokens %lld", (long long)r.max_tokens);
        api_request_free(&r);
    }

    if (parse_ok("stop-string", API_CHAT, "{'model':'m'," CHAT_MSGS ",'stop':'\\n\\n'}", &r)) {
        TU_CHECK(r.stop[0] && strcmp(r.stop[0], "\n\n") == 0 && !r.stop[1], "stop string");
        api_request_free(&r);
    }

    if (parse_ok("stop-four", API_CHAT, "{'model':'m'," CHAT_MSGS ",'stop':['a','b','c','d']}",
                 &r)) {
        TU_CHECK(r.stop[3] && strcmp(r.stop[3], "d") == 0 && !r.stop[4], "four stops");
        api_request_free(&r);
    }

    if (parse_ok("content-parts", API_CHAT,
                 "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'one'},"
                 "{'type':'text','text':'two'}]},{'role':'system','content':[]}]}",
                 &r)) {
        TU_CHECK(r.messages[0].content && strcmp(r.messages[0].content, "one\ntwo") == 0,
                 "text parts joined: '%s'", r.messages[0].content);
        TU_CHECK(r.messages[1].content && r.messages[1].content[0] == 0, "empty parts -> ''");
        api_request_free(&r);
    }

    if (parse_ok("tool-round-trip", API_CHAT,
                 "{'model':'m','messages':[{'role':'user','content':'weather?'},"
                 "{'role':'assistant','content':null,'refusal':null,'tool_calls':[{'id':'call_1',"
                 "'type':'function','function':{'name':'get','arguments':'{}'}}]},"
                 "{'role':'tool','tool_call_id':'call_1','content':'sunny'},"
                 "{'role':'assistant','tool_calls':[{'id':'c2','type':'function','function':"
                 "{'name':'g','arguments':'{}'}}]}]}",
                 &r)) {
        TU_CHECK(r.n_messages == 4, "messages");
        TU_CHECK(r.messages[1].content == NULL && cJSON_IsArray(r.messages[1].tool_calls) &&
                     cJSON_GetArraySize(r.messages[1].tool_calls) == 1,
                 "assistant tool_calls copied");
        TU_CHECK(r.messages[2].tool_call_id && strcmp(r.messages[2].tool_call_id, "call_1") == 0 &&
                     strcmp(r.messages[2].content, "sunny") == 0,
                 "tool message");
        TU_CHECK(r.messages[3].content == NULL && r.messages[3].tool_calls, "absent content");
        api_request_free(&r);
    }

    if (parse_ok("unicode-and-escapes", API_CHAT,
                 "{'model':'m','messages':[{'role':'user','content':'h\\u00e9 \\ud83d\\ude00 "
                 "\\'q\\''}]}",
                 &r)) {
        TU_CHECK(strcmp(r.messages[0].content, "h\xC3\xA9 \xF0\x9F\x98\x80 \"q\"") == 0,
                 "content '%s'", r.messages[0].content);
        api_request_free(&r);
    }

    if (parse_ok("seed-large", API_CHAT, "{'model':'m'," CHAT_MSGS ",'seed':4294967296}", &r)) {
        TU_CHECK(r.has_seed && r.seed == 4294967296ull, "seed");
        api_request_free(&r);
    }

    if (parse_ok("integral-decimals-are-integers", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'n':2.0,'max_tokens':1e2}", &r)) {
        TU_CHECK(r.n == 2 && r.max_tokens == 100, "2.0 and 1e2 read as integers");
        api_request_free(&r);
    }

    if (parse_ok("service-tier-default", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'service_tier':'default','store':true}", &r))
        api_request_free(&r);

    if (parse_ok("whitespace-around-body", API_CHAT, " \n{'model':'m'," CHAT_MSGS "}\r\n\t", &r))
        api_request_free(&r);

    if (parse_ok("logprobs-without-top", API_CHAT, "{'model':'m'," CHAT_MSGS ",'logprobs':true}",
                 &r)) {
        TU_CHECK(r.logprobs && r.top_logprobs == 0, "logprobs alone");
        api_request_free(&r);
    }

    tu_case("accept/chat/no-vocab-bound");
    {
        /* vocab_size 0 = unknown: ids are only bounded by int32 */
        api_error err;
        const char *b = q("{'model':'m'," CHAT_MSGS ",'logit_bias':{'123456':5}}");
        int rc = api_parse_request(API_CHAT, b, strlen(b), 0, &r, &err);
        TU_CHECK(rc == 0 && r.n_logit_bias == 1 && r.logit_bias[0].id == 123456, "bias kept");
        if (rc == 0) api_request_free(&r);
    }

    tu_case("accept/chat/free-twice-and-null");
    api_request_free(NULL);
    memset(&r, 0, sizeof r);
    api_request_free(&r);
    api_request_free(&r);
}

static void test_accept_steering(void) {
    api_request r;
    if (parse_ok("defaults", API_CHAT, "{'model':'m'," CHAT_MSGS "}", &r)) {
        TU_CHECK(r.tools == NULL && r.tool_choice == API_TOOL_NONE && r.tool_choice_name == NULL &&
                     r.parallel_tool_calls,
                 "tool defaults");
        TU_CHECK(r.response_format == API_FORMAT_TEXT && r.json_schema == NULL &&
                     r.json_schema_name == NULL && !r.json_schema_strict,
                 "format defaults");
        TU_CHECK(r.reasoning_effort == API_EFFORT_UNSET, "effort default");
        api_request_free(&r);
    }
    if (parse_ok("completion-defaults", API_COMPLETION, "{'model':'m','prompt':'x'}", &r)) {
        TU_CHECK(r.tools == NULL && r.tool_choice == API_TOOL_NONE && r.parallel_tool_calls &&
                     r.response_format == API_FORMAT_TEXT,
                 "completion defaults");
        api_request_free(&r);
    }

    if (parse_ok("tools", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'tools':[{'type':'function','function':{'name':"
                 "'get_weather','description':'Weather now','parameters':{'type':'object',"
                 "'properties':{'city':{'type':'string'}},'required':['city'],"
                 "'additionalProperties':false},'strict':true}},{'type':'function','function':{"
                 "'name':'A-b_9','description':null,'parameters':null,'strict':null}}]}",
                 &r)) {
        TU_CHECK(cJSON_GetArraySize(r.tools) == 2, "two tools kept");
        TU_CHECK(r.tool_choice == API_TOOL_AUTO && r.tool_choice_name == NULL, "auto by default");
        TU_CHECK(r.parallel_tool_calls, "parallel by default");
        const cJSON *f0 = jget(r.tools, "0.function");
        TU_CHECK(strcmp(jstr(f0, "name"), "get_weather") == 0 &&
                     strcmp(jstr(f0, "description"), "Weather now") == 0 &&
                     strcmp(jstr(f0, "parameters.properties.city.type"), "string") == 0 &&
                     cJSON_IsTrue(jget(f0, "strict")),
                 "tool 0 copied");
        const cJSON *f1 = jget(r.tools, "1.function");
        TU_CHECK(strcmp(jstr(f1, "name"), "A-b_9") == 0 && cJSON_GetArraySize(f1) == 1,
                 "null members dropped from the copy (%d left)", cJSON_GetArraySize(f1));
        api_request_free(&r);
        TU_CHECK(r.tools == NULL, "free zeroes");
    }

    if (parse_ok("tools-128", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'tools':[" TOOL_F "],'tool_choice':'none',"
                 "'parallel_tool_calls':false}",
                 &r)) {
        TU_CHECK(r.tool_choice == API_TOOL_NONE && !r.parallel_tool_calls && r.tools,
                 "none with tools, parallel off");
        api_request_free(&r);
    }

    tu_case("accept/chat/tools-128-max");
    {
        static char body[8192];
        size_t n = (size_t)snprintf(body, sizeof body, "{'model':'m'," CHAT_MSGS ",'tools':[");
        for (int i = 0; i < 128; i++)
            n += (size_t)snprintf(body + n, sizeof body - n,
                                  "%s{'type':'function','function':{'name':'f%d'}}", i ? "," : "",
                                  i);
        snprintf(body + n, sizeof body - n,
                 "],'tool_choice':{'type':'function','function':"
                 "{'name':'f127'}}}");
        if (parse_ok("tools-128-max", API_CHAT, body, &r)) {
            TU_CHECK(cJSON_GetArraySize(r.tools) == 128 && r.tool_choice == API_TOOL_NAMED &&
                         strcmp(r.tool_choice_name, "f127") == 0,
                     "128 tools, the last one named");
            api_request_free(&r);
        }
    }

    if (parse_ok("tool-choice-required", API_CHAT,
                 "{'model':'m'," CHAT_MSGS "," TOOLS ",'tool_choice':'required'}", &r)) {
        TU_CHECK(r.tool_choice == API_TOOL_REQUIRED, "required");
        api_request_free(&r);
    }
    if (parse_ok("tool-choice-auto", API_CHAT,
                 "{'model':'m'," CHAT_MSGS "," TOOLS ",'tool_choice':'auto'}", &r)) {
        TU_CHECK(r.tool_choice == API_TOOL_AUTO, "auto");
        api_request_free(&r);
    }
    if (parse_ok("tool-choice-named", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'tools':[" TOOL_F ",{'type':'function','function':{"
                 "'name':'g'}}],'tool_choice':{'type':'function','function':{'name':'g'}}}",
                 &r)) {
        TU_CHECK(r.tool_choice == API_TOOL_NAMED && r.tool_choice_name &&
                     strcmp(r.tool_choice_name, "g") == 0,
                 "named g");
        api_request_free(&r);
    }
    if (parse_ok("tool-choice-none-without-tools", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'tool_choice':'none','parallel_tool_calls':true}",
                 &r)) {
        TU_CHECK(r.tool_choice == API_TOOL_NONE && r.tools == NULL && r.parallel_tool_calls,
                 "none alone");
        api_request_free(&r);
    }
    if (parse_ok("parallel-without-tools", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'parallel_tool_calls':false}", &r)) {
        TU_CHECK(!r.parallel_tool_calls, "accepted and kept");
        api_request_free(&r);
    }

    if (parse_ok("response-format-json-object", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'response_format':{'type':'json_object'}}", &r)) {
        TU_CHECK(r.response_format == API_FORMAT_JSON_OBJECT && r.json_schema == NULL,
                 "json_object");
        api_request_free(&r);
    }
    if (parse_ok("response-format-json-schema", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'response_format':{'type':'json_schema',"
                 "'json_schema':{'name':'math_answer','description':'d','strict':true,'schema':"
                 "{'type':'object','properties':{'x':{'type':'integer'}},'required':['x'],"
                 "'additionalProperties':false}}}}",
                 &r)) {
        TU_CHECK(r.response_format == API_FORMAT_JSON_SCHEMA && r.json_schema_strict &&
                     r.json_schema_name && strcmp(r.json_schema_name, "math_answer") == 0,
                 "json_schema fields");
        TU_CHECK(cJSON_IsObject(r.json_schema) &&
                     strcmp(jstr(r.json_schema, "properties.x.type"), "integer") == 0,
                 "schema copied");
        api_request_free(&r);
        TU_CHECK(r.json_schema == NULL && r.json_schema_name == NULL, "free zeroes");
    }
    if (parse_ok("response-format-json-schema-no-schema", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'response_format':{'type':'json_schema',"
                 "'json_schema':{'name':'any','schema':null,'strict':null}}}",
                 &r)) {
        TU_CHECK(r.response_format == API_FORMAT_JSON_SCHEMA && cJSON_IsObject(r.json_schema) &&
                     cJSON_GetArraySize(r.json_schema) == 0 && !r.json_schema_strict,
                 "absent schema kept as {}");
        api_request_free(&r);
    }

    static const struct {
        const char *name;
        api_reasoning_effort effort;
    } efforts[] = {{"none", API_EFFORT_NONE},
                   {"minimal", API_EFFORT_MINIMAL},
                   {"low", API_EFFORT_LOW},
                   {"medium", API_EFFORT_MEDIUM},
                   {"high", API_EFFORT_HIGH}};
    for (size_t i = 0; i < sizeof efforts / sizeof efforts[0]; i++) {
        char body[128], name[64];
        snprintf(body, sizeof body, "{'model':'m'," CHAT_MSGS ",'reasoning_effort':'%s'}",
                 efforts[i].name);
        snprintf(name, sizeof name, "reasoning-effort-%s", efforts[i].name);
        if (parse_ok(name, API_CHAT, body, &r)) {
            TU_CHECK(r.reasoning_effort == efforts[i].effort, "effort %s", efforts[i].name);
            api_request_free(&r);
        }
    }
    if (parse_ok("steering-nulls", API_CHAT,
                 "{'model':'m'," CHAT_MSGS ",'tools':null,'tool_choice':null,"
                 "'parallel_tool_calls':null,'response_format':null,'reasoning_effort':null}",
                 &r)) {
        TU_CHECK(r.tools == NULL && r.tool_choice == API_TOOL_NONE && r.parallel_tool_calls &&
                     r.response_format == API_FORMAT_TEXT && r.reasoning_effort == API_EFFORT_UNSET,
                 "nulls are absent");
        api_request_free(&r);
    }
}

static void test_accept_completion(void) {
    api_request r;
    if (parse_ok("prompt-string", API_COMPLETION, "{'model':'m','prompt':'Once upon'}", &r)) {
        TU_CHECK(r.kind == API_COMPLETION && r.n_prompts == 1 && r.prompts &&
                     strcmp(r.prompts[0], "Once upon") == 0 && r.prompt_ids == NULL,
                 "prompt");
        TU_CHECK(r.messages == NULL && r.n_messages == 0, "no messages");
        api_request_free(&r);
    }
    if (parse_ok("prompt-empty-string", API_COMPLETION, "{'model':'m','prompt':''}", &r)) {
        TU_CHECK(r.n_prompts == 1 && r.prompts[0][0] == 0, "empty prompt");
        api_request_free(&r);
    }
    if (parse_ok("prompt-strings", API_COMPLETION, "{'model':'m','prompt':['a','bb','']}", &r)) {
        TU_CHECK(r.n_prompts == 3 && strcmp(r.prompts[1], "bb") == 0 && r.prompts[2][0] == 0,
                 "prompts");
        api_request_free(&r);
    }
    if (parse_ok("prompt-ids", API_COMPLETION, "{'model':'m','prompt':[1,2,999,0]}", &r)) {
        TU_CHECK(r.n_prompts == 1 && r.prompts == NULL && r.prompt_ids &&
                     r.prompt_ids_len[0] == 4 && r.prompt_ids[0][2] == 999 &&
                     r.prompt_ids[0][3] == 0,
                 "ids");
        api_request_free(&r);
    }
    if (parse_ok("prompt-id-arrays", API_COMPLETION, "{'model':'m','prompt':[[1,2],[3],[4,5,6]]}",
                 &r)) {
        TU_CHECK(r.n_prompts == 3 && r.prompt_ids_len[0] == 2 && r.prompt_ids_len[1] == 1 &&
                     r.prompt_ids_len[2] == 3 && r.prompt_ids[2][2] == 6,
                 "id arrays");
        api_request_free(&r);
    }
    if (parse_ok("every-field", API_COMPLETION,
                 "{'model':'m','prompt':'x','max_tokens':16,'temperature':0,'top_p':0.5,'n':2,"
                 "'best_of':2,'logprobs':5,'echo':false,'suffix':'','stop':'.','seed':7,"
                 "'presence_penalty':1,'frequency_penalty':-1,'logit_bias':{'1':-1},"
                 "'user':'u','stream':true,'stream_options':{'include_usage':false},"
                 "'top_k':5,'min_p':0.1,'repetition_penalty':1.3}",
                 &r)) {
        TU_CHECK(r.max_tokens == 16 && r.temperature == 0 && r.top_p == 0.5 && r.n == 2,
                 "sampling");
        TU_CHECK(r.logprobs && r.top_logprobs == 5, "logprobs 5 -> top 5");
        TU_CHECK(r.stop[0] && strcmp(r.stop[0], ".") == 0, "stop");
        TU_CHECK(r.has_seed && r.seed == 7 && r.stream && !r.include_usage, "seed/stream");
        TU_CHECK(r.top_k == 5 && r.n_logit_bias == 1, "extensions, bias");
        api_request_free(&r);
    }
    if (parse_ok("logprobs-zero", API_COMPLETION, "{'model':'m','prompt':'x','logprobs':0}", &r)) {
        TU_CHECK(r.logprobs && r.top_logprobs == 0, "logprobs 0 = sampled token only");
        api_request_free(&r);
    }
    if (parse_ok("best-of-one", API_COMPLETION, "{'model':'m','prompt':'x','best_of':1}", &r))
        api_request_free(&r);
}

/* ------------------------------------------------------------- responses */

static void test_meta(void) {
    tu_case("meta/ids");
    api_meta a, b, c;
    time_t now = time(NULL);
    api_meta_init(&a, API_CHAT, "m1");
    api_meta_init(&b, API_CHAT, "m1");
    api_meta_init(&c, API_COMPLETION, "m2");
    TU_CHECK(strncmp(a.id, "chatcmpl-", 9) == 0 && strncmp(c.id, "cmpl-", 5) == 0, "prefixes");
    size_t na = strlen(a.id) - 9, nc = strlen(c.id) - 5;
    TU_CHECK(na >= 24 && nc >= 24, "random part too short: %zu %zu", na, nc);
    for (const char *p = a.id + 9; *p; p++)
        TU_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'),
                 "non-alphanumeric id char %c", *p);
    TU_CHECK(strcmp(a.id, b.id) != 0, "two ids are equal: %s", a.id);
    TU_CHECK(a.created >= (int64_t)now - 1 && a.created <= (int64_t)now + 5, "created %lld",
             (long long)a.created);
    TU_CHECK(a.kind == API_CHAT && c.kind == API_COMPLETION && strcmp(a.model, "m1") == 0,
             "fields");

    tu_case("meta/ids-spread");
    /* 62 symbols: 2000 ids should use every one, in about equal numbers */
    int counts[128] = {0};
    for (int i = 0; i < 2000; i++) {
        api_meta_init(&a, API_CHAT, "m");
        for (const char *p = a.id + 9; *p; p++) counts[(unsigned char)*p]++;
    }
    int used = 0, lo = 1 << 30, hi = 0;
    for (int i = 0; i < 128; i++)
        if (counts[i]) {
            used++;
            lo = counts[i] < lo ? counts[i] : lo;
            hi = counts[i] > hi ? counts[i] : hi;
        }
    TU_CHECK(used == 62 && lo > 600 && hi < 1300, "id characters skewed: %d used, %d..%d", used, lo,
             hi);
}

static void test_error_body(void) {
    tu_case("error-body/null-param-and-code");
    api_error e;
    memset(&e, 0, sizeof e);
    TU_CHECK(api_fail(&e, 404, "invalid_request_error", "model_not_found", NULL,
                      "The model '%s' does not exist", "gpt") == -1,
             "api_fail returns -1");
    char *out = api_error_body(&e);
    cJSON *j = parse_out("error", out);
    TU_CHECK(j && strcmp(jstr(j, "error.code"), "model_not_found") == 0 &&
                 cJSON_IsNull(jget(j, "error.param")) &&
                 strcmp(jstr(j, "error.message"), "The model 'gpt' does not exist") == 0,
             "body %s", out);
    cJSON_Delete(j);
    keep_error_body(out);

    tu_case("error-body/invalid-utf8-in-param-and-message");
    /* an unknown field name is echoed back: its bytes must not break the JSON */
    api_request req;
    const char body[] = "{\"\xC3\x28\xFF\":1,\"model\":\"m\",\"prompt\":\"x\"}";
    TU_CHECK(api_parse_request(API_COMPLETION, body, sizeof body - 1, VOCAB, &req, &e) == -1,
             "accepted");
    out = api_error_body(&e);
    j = parse_out("error", out);
    TU_CHECK(j && jstr(j, "error.param") &&
                 strcmp(jstr(j, "error.param"), "\xEF\xBF\xBD(\xEF\xBF\xBD") == 0,
             "param not sanitized: %s", out);
    cJSON_Delete(j);
    keep_error_body(out);

    tu_case("error-body/long-field-name-truncated");
    char big[3000];
    snprintf(big, sizeof big, "{\"%02000d\":1}", 7);
    TU_CHECK(api_parse_request(API_CHAT, big, strlen(big), VOCAB, &req, &e) == -1, "accepted");
    TU_CHECK(strlen(e.param) == sizeof e.param - 1, "param not truncated to its buffer");
    out = api_error_body(&e);
    j = parse_out("error", out);
    cJSON_Delete(j);
    keep_error_body(out);

    tu_case("error-body/server-error-default-type");
    memset(&e, 0, sizeof e);
    e.status = 503;
    snprintf(e.message, sizeof e.message, "busy");
    out = api_error_body(&e);
    j = parse_out("error", out);
    TU_CHECK(j && strcmp(jstr(j, "error.type"), "server_error") == 0 &&
                 cJSON_IsNull(jget(j, "error.code")),
             "body %s", out);
    cJSON_Delete(j);
    keep_error_body(out);
    TU_CHECK(api_error_body(NULL) == NULL, "NULL error");
    TU_CHECK(api_fail(NULL, 400, NULL, NULL, NULL, "x") == -1, "api_fail(NULL)");
}

/* Tokens for logprob tests: " Hello", a 4-byte emoji split over two tokens, bytes that are
 * never UTF-8, and a NUL, a quote, a backslash and a newline. */
static api_token_logprob toks[5];
static const char emoji[] = "\xF0\x9F\x98\x80";

static void make_tokens(void) {
    memset(toks, 0, sizeof toks);
    toks[0] = (api_token_logprob){.token = " Hello", .token_len = 6, .logprob = -0.1f, .n_top = 2};
    toks[0].top_token[0] = " Hello";
    toks[0].top_len[0] = 6;
    toks[0].top_logprob[0] = -0.1f;
    toks[0].top_token[1] = "\xF0\x9F";
    toks[0].top_len[1] = 2;
    toks[0].top_logprob[1] = -3.25f;
    toks[1] = (api_token_logprob){.token = emoji, .token_len = 2, .logprob = -1.5f, .n_top = 3};
    for (int k = 0; k < 3; k++) {
        /* three top tokens that all print as U+FFFD: completions keep one key */
        static const char *const bad[] = {"\xF0", "\x80", "\xFF"};
        toks[1].top_token[k] = bad[k];
        toks[1].top_len[k] = strlen(bad[k]);
        toks[1].top_logprob[k] = -1.5f - (float)k;
    }
    toks[2] = (api_token_logprob){.token = emoji + 2, .token_len = 2, .logprob = -INFINITY};
    toks[3] = (api_token_logprob){.token = "a\0\"\\\n", .token_len = 5, .logprob = -2e-7f};
    toks[4] = (api_token_logprob){.token = NULL, .token_len = 3, .logprob = NAN, .n_top = 25};
}

static void check_chat_logprobs(const cJSON *lp) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(lp, "content");
    TU_CHECK(cJSON_GetArraySize(content) == 5, "5 logprob entries");
    TU_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lp, "refusal")), "refusal null");
    const cJSON *t0 = cJSON_GetArrayItem(content, 0);
    TU_CHECK(strcmp(jstr(t0, "token"), " Hello") == 0, "token 0");
    TU_CHECK((float)jget(t0, "logprob")->valuedouble == -0.1f, "logprob round trip");
    const cJSON *bytes = jget(t0, "bytes");
    TU_CHECK(cJSON_GetArraySize(bytes) == 6 && cJSON_GetArrayItem(bytes, 1)->valueint == 'H',
             "bytes");
    TU_CHECK(cJSON_GetArraySize(jget(t0, "top_logprobs")) == 2, "top 2");
    TU_CHECK(strcmp(jstr(t0, "top_logprobs.1.token"), "\xEF\xBF\xBD\xEF\xBF\xBD") == 0,
             "partial UTF-8 top token shown as U+FFFD per byte");
    const cJSON *tb = jget(t0, "top_logprobs.1.bytes");
    TU_CHECK(cJSON_GetArraySize(tb) == 2 && cJSON_GetArrayItem(tb, 0)->valueint == 0xF0 &&
                 cJSON_GetArrayItem(tb, 1)->valueint == 0x9F,
             "top bytes carry the true bytes");
    const cJSON *t1 = cJSON_GetArrayItem(content, 1);
    TU_CHECK(cJSON_GetArraySize(jget(t1, "top_logprobs")) == 3, "chat keeps all 3 tops");
    const cJSON *t2 = cJSON_GetArrayItem(content, 2);
    TU_CHECK(jget(t2, "logprob")->valuedouble == -9999.0, "-inf -> -9999");
    TU_CHECK(cJSON_GetArrayItem(jget(t2, "bytes"), 0)->valueint == 0x98, "bytes of 2nd half");
    const cJSON *t3 = cJSON_GetArrayItem(content, 3);
    TU_CHECK(cJSON_GetArraySize(jget(t3, "bytes")) == 5 &&
                 cJSON_GetArrayItem(jget(t3, "bytes"), 1)->valueint == 0,
             "NUL byte kept in bytes");
    const cJSON *t4 = cJSON_GetArrayItem(content, 4);
    TU_CHECK(strcmp(jstr(t4, "token"), "") == 0 && cJSON_GetArraySize(jget(t4, "bytes")) == 0 &&
                 jget(t4, "logprob")->valuedouble == -9999.0 &&
                 cJSON_GetArraySize(jget(t4, "top_logprobs")) == 20,
             "NULL token, NaN logprob, n_top out of range (%d tops)",
             cJSON_GetArraySize(jget(t4, "top_logprobs")));
}

/* Everything written in this pass, for the schema pass: {def name, JSON text}. */
static struct {
    const char *def;
    char *json;
    bool stream_intermediate; /* completions chunk with finish_reason null, see below */
    bool extension;           /* holds reasoning_content, which the spec does not list */
} outputs[128];
static size_t n_outputs;

static void keep_output_ext(const char *def, char *json, bool intermediate, bool extension) {
    if (json && n_outputs < sizeof outputs / sizeof outputs[0]) {
        outputs[n_outputs].def = def;
        outputs[n_outputs].json = json;
        outputs[n_outputs].extension = extension;
        outputs[n_outputs++].stream_intermediate = intermediate;
    } else {
        TU_CHECK(json == NULL, "outputs[] is full");
        free(json);
    }
}

static void keep_output(const char *def, char *json, bool intermediate) {
    keep_output_ext(def, json, intermediate, false);
}

static void test_chat_response(void) {
    make_tokens();
    api_meta m;
    api_meta_init(&m, API_CHAT, "qwen2.5-0.5b");
    m.system_fingerprint = "chatd-test";
    /* content with every kind of awkward byte: NUL, controls, quotes, invalid UTF-8, U+2028 */
    static const char text[] = "Hi \"you\"\\\n\t\x01\x7F\0after-nul \xC3\x28 \xE2\x80\xA8 \xF0\x9F";
    api_choice ch[2] = {
        {.text = text,
         .text_len = sizeof text - 1,
         .finish_reason = "length",
         .logprobs = toks,
         .n_logprobs = 5},
        {.text = "ok", .text_len = 2, .finish_reason = NULL},
    };
    api_usage u = {.prompt_tokens = 12, .completion_tokens = 5, .cached_tokens = 8};

    tu_case("response/chat");
    char *out = api_response_body(&m, ch, 2, &u);
    cJSON *j = parse_out("chat response", out);
    if (j) {
        TU_CHECK(strcmp(jstr(j, "object"), "chat.completion") == 0, "object");
        TU_CHECK(strcmp(jstr(j, "id"), m.id) == 0 && strcmp(jstr(j, "model"), m.model) == 0,
                 "id/model");
        TU_CHECK(jget(j, "created")->valuedouble == (double)m.created, "created");
        TU_CHECK(strcmp(jstr(j, "system_fingerprint"), "chatd-test") == 0, "fingerprint");
        TU_CHECK(strcmp(jstr(j, "choices.0.message.role"), "assistant") == 0, "role");
        TU_CHECK(cJSON_IsNull(jget(j, "choices.0.message.refusal")), "refusal null");
        TU_CHECK(strcmp(jstr(j, "choices.0.finish_reason"), "length") == 0, "finish 0");
        TU_CHECK(strcmp(jstr(j, "choices.1.finish_reason"), "stop") == 0, "NULL finish -> stop");
        TU_CHECK(jget(j, "choices.1.index")->valueint == 1, "index");
        TU_CHECK(cJSON_IsNull(jget(j, "choices.1.logprobs")), "logprobs null when not asked");
        check_chat_logprobs(jget(j, "choices.0.logprobs"));
        TU_CHECK(jget(j, "usage.total_tokens")->valueint == 17 &&
                     jget(j, "usage.prompt_tokens_details.cached_tokens")->valueint == 8 &&
                     jget(j, "usage.completion_tokens_details.reasoning_tokens")->valueint == 0,
                 "usage");
        cJSON_Delete(j);
    }
    tu_case("response/chat-content-bytes");
    /* cJSON stops at a decoded NUL, so the escapes are checked in the text itself */
    TU_CHECK(out && strstr(out, "\"Hi \\\"you\\\"\\\\\\n\\t\\u0001\x7F\\u0000after-nul "
                                "\xEF\xBF\xBD( \\u2028 \xEF\xBF\xBD\xEF\xBF\xBD\""),
             "content escaped wrongly: %s", out);
    keep_output("CreateChatCompletionResponse", out, false);

    tu_case("response/chat-no-usage-no-fingerprint");
    m.system_fingerprint = NULL;
    out = api_response_body(&m, ch + 1, 1, NULL);
    j = parse_out("chat response", out);
    TU_CHECK(j && !jget(j, "usage") && !jget(j, "system_fingerprint"), "optional fields: %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionResponse", out, false);

    tu_case("response/chat-empty-logprobs");
    api_choice one = {
        .text = NULL, .text_len = 9, .finish_reason = "stop", .logprobs = toks, .n_logprobs = 0};
    out = api_response_body(&m, &one, 1, &u);
    j = parse_out("chat response", out);
    TU_CHECK(j && cJSON_GetArraySize(jget(j, "choices.0.logprobs.content")) == 0 &&
                 strcmp(jstr(j, "choices.0.message.content"), "") == 0,
             "empty logprobs / NULL text: %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionResponse", out, false);

    tu_case("response/float-format");
    api_token_logprob t = {.token = "x", .token_len = 1, .logprob = -0.1f};
    out = api_chunk_body(&m, 0, NULL, "x", 1, NULL, &t, 1);
    TU_CHECK(out && strstr(out, "\"logprob\":-0.1,"), "shortest float not used: %s", out);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("response/null-meta");
    TU_CHECK(api_response_body(NULL, ch, 1, &u) == NULL &&
                 api_chunk_body(NULL, 0, NULL, NULL, 0, NULL, NULL, 0) == NULL &&
                 api_usage_chunk_body(&m, NULL) == NULL,
             "NULL arguments");
}

static void test_chat_chunks(void) {
    make_tokens();
    api_meta m;
    api_meta_init(&m, API_CHAT, "m");
    m.system_fingerprint = "fp";

    tu_case("chunk/chat-first");
    char *out = api_chunk_body(&m, 0, "assistant", NULL, 0, NULL, NULL, 0);
    cJSON *j = parse_out("chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "object"), "chat.completion.chunk") == 0 &&
                 strcmp(jstr(j, "choices.0.delta.role"), "assistant") == 0 &&
                 strcmp(jstr(j, "choices.0.delta.content"), "") == 0 &&
                 cJSON_IsNull(jget(j, "choices.0.finish_reason")) &&
                 cJSON_IsNull(jget(j, "choices.0.logprobs")) && strcmp(jstr(j, "id"), m.id) == 0,
             "first chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/chat-text-partial-utf8");
    out = api_chunk_body(&m, 2, NULL, emoji, 3, NULL, toks + 1, 2);
    j = parse_out("chunk", out);
    TU_CHECK(j &&
                 strcmp(jstr(j, "choices.0.delta.content"),
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") == 0 &&
                 !jget(j, "choices.0.delta.role") && jget(j, "choices.0.index")->valueint == 2 &&
                 cJSON_GetArraySize(jget(j, "choices.0.logprobs.content")) == 2,
             "text chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/chat-last");
    out = api_chunk_body(&m, 0, NULL, NULL, 0, "stop", NULL, 0);
    j = parse_out("chunk", out);
    TU_CHECK(j && cJSON_GetArraySize(jget(j, "choices.0.delta")) == 0 &&
                 strcmp(jstr(j, "choices.0.finish_reason"), "stop") == 0,
             "last chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/chat-usage");
    api_usage u = {.prompt_tokens = 3, .completion_tokens = 4, .cached_tokens = 0};
    out = api_usage_chunk_body(&m, &u);
    j = parse_out("usage chunk", out);
    TU_CHECK(j && cJSON_IsArray(jget(j, "choices")) &&
                 cJSON_GetArraySize(jget(j, "choices")) == 0 &&
                 jget(j, "usage.total_tokens")->valueint == 7 &&
                 strcmp(jstr(j, "object"), "chat.completion.chunk") == 0,
             "usage chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);
}

static void test_chat_tools_and_reasoning(void) {
    make_tokens();
    api_meta m;
    api_meta_init(&m, API_CHAT, "qwen3");

    tu_case("tool-call-id");
    char id1[API_TOOL_ID_SIZE], id2[API_TOOL_ID_SIZE];
    api_tool_call_id(id1);
    api_tool_call_id(id2);
    TU_CHECK(strncmp(id1, "call_", 5) == 0 && strlen(id1) == 29 && strcmp(id1, id2) != 0,
             "ids %s %s", id1, id2);
    for (const char *p = id1 + 5; *p; p++)
        TU_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'),
                 "non-alphanumeric id char %c", *p);

    /* choice 0: only tool calls (arguments with awkward bytes); choice 1: thinking, text and
     * a call; choice 2: thinking and text; choice 3: plain text with empty extras */
    static const char args0[] = "{\"city\":\"Z\xC3\xBCrich\\n\",\"q\":\"\xF0\x9F\"}";
    api_tool_call calls0[2] = {
        {.id = "call_a",
         .name = "get_weather",
         .arguments = args0,
         .arguments_len = sizeof args0 - 1},
        {.id = "call_b", .name = "get_time", .arguments = NULL, .arguments_len = 5},
    };
    api_tool_call calls1[1] = {
        {.id = "call_c", .name = "f", .arguments = "{}", .arguments_len = 2}};
    api_choice ch[4] = {
        {.text = NULL, .text_len = 0, .finish_reason = "tool_calls"},
        {.text = "Let me check.", .text_len = 13, .finish_reason = "tool_calls"},
        {.text = "42", .text_len = 2, .finish_reason = "stop", .logprobs = toks, .n_logprobs = 2},
        {.text = "", .text_len = 0, .finish_reason = "length"},
    };
    api_choice_extra ex[4] = {
        {.tool_calls = calls0, .n_tool_calls = 2},
        {.reasoning = "Weather? Use the tool.",
         .reasoning_len = 22,
         .tool_calls = calls1,
         .n_tool_calls = 1},
        {.reasoning = "6*7\n\xE2\x80\xA8=42 \xC3", .reasoning_len = 13},
        {.reasoning = "", .reasoning_len = 0, .tool_calls = calls1, .n_tool_calls = 0},
    };
    api_usage u = {
        .prompt_tokens = 20, .completion_tokens = 30, .cached_tokens = 4, .reasoning_tokens = 11};

    tu_case("response/chat-tools-reasoning");
    char *out = api_response_body_ex(&m, ch, ex, 4, &u);
    cJSON *j = parse_out("chat response", out);
    if (j) {
        const cJSON *m0 = jget(j, "choices.0.message");
        TU_CHECK(cJSON_IsNull(jget(m0, "content")), "tool-only reply: content null");
        TU_CHECK(!jget(m0, "reasoning_content"), "no reasoning key without reasoning");
        TU_CHECK(cJSON_GetArraySize(jget(m0, "tool_calls")) == 2, "two calls");
        TU_CHECK(strcmp(jstr(m0, "tool_calls.0.id"), "call_a") == 0 &&
                     strcmp(jstr(m0, "tool_calls.0.type"), "function") == 0 &&
                     strcmp(jstr(m0, "tool_calls.0.function.name"), "get_weather") == 0,
                 "call 0");
        TU_CHECK(strcmp(jstr(m0, "tool_calls.0.function.arguments"),
                        "{\"city\":\"Z\xC3\xBCrich\\n\",\"q\":\"\xEF\xBF\xBD\xEF\xBF\xBD\"}") == 0,
                 "arguments kept as a string, partial UTF-8 replaced: %s",
                 jstr(m0, "tool_calls.0.function.arguments"));
        TU_CHECK(strcmp(jstr(m0, "tool_calls.1.function.arguments"), "") == 0,
                 "NULL arguments -> \"\"");
        TU_CHECK(cJSON_IsNull(jget(m0, "refusal")), "refusal null");
        TU_CHECK(strcmp(jstr(j, "choices.0.finish_reason"), "tool_calls") == 0, "finish");

        const cJSON *m1 = jget(j, "choices.1.message");
        TU_CHECK(strcmp(jstr(m1, "content"), "Let me check.") == 0 &&
                     strcmp(jstr(m1, "reasoning_content"), "Weather? Use the tool.") == 0 &&
                     cJSON_GetArraySize(jget(m1, "tool_calls")) == 1,
                 "text, reasoning and a call");

        const cJSON *m2 = jget(j, "choices.2.message");
        TU_CHECK(strcmp(jstr(m2, "content"), "42") == 0 && !jget(m2, "tool_calls") &&
                     strcmp(jstr(m2, "reasoning_content"), "6*7\n\xE2\x80\xA8=42 \xEF\xBF\xBD") ==
                         0,
                 "reasoning text escaped like content");
        TU_CHECK(cJSON_GetArraySize(jget(j, "choices.2.logprobs.content")) == 2, "logprobs");

        const cJSON *m3 = jget(j, "choices.3.message");
        TU_CHECK(strcmp(jstr(m3, "content"), "") == 0 && !jget(m3, "reasoning_content") &&
                     !jget(m3, "tool_calls"),
                 "empty extras add nothing");
        TU_CHECK(jget(j, "usage.completion_tokens_details.reasoning_tokens")->valueint == 11 &&
                     jget(j, "usage.total_tokens")->valueint == 50,
                 "reasoning tokens in usage");
        cJSON_Delete(j);
    }
    TU_CHECK(out && strstr(out, "\\u2028"), "U+2028 in reasoning not escaped");
    keep_output_ext("CreateChatCompletionResponse", out, false, true);

    tu_case("response/chat-tools-only");
    out = api_response_body_ex(&m, ch, ex, 1, NULL);
    j = parse_out("chat response", out);
    TU_CHECK(j && cJSON_IsNull(jget(j, "choices.0.message.content")), "content null: %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionResponse", out, false);

    tu_case("response/ex-null-extras-is-plain");
    char *a = api_response_body_ex(&m, ch + 2, NULL, 1, &u);
    char *b = api_response_body(&m, ch + 2, 1, &u);
    TU_CHECK(a && b && strcmp(a, b) == 0, "api_response_body differs from _ex with no extras");
    free(b);
    keep_output("CreateChatCompletionResponse", a, false);

    tu_case("response/completion-ignores-extras");
    api_meta mc;
    api_meta_init(&mc, API_COMPLETION, "m");
    api_choice cc = {.text = "Let me check.", .text_len = 13, .finish_reason = "stop"};
    out = api_response_body_ex(&mc, &cc, ex + 1, 1, &u);
    j = parse_out("completion", out);
    TU_CHECK(j && strcmp(jstr(j, "choices.0.text"), "Let me check.") == 0 &&
                 !jget(j, "choices.0.message") && !strstr(out, "reasoning_content") &&
                 !strstr(out, "\"tool_calls\":"),
             "completion with extras: %s", out);
    cJSON_Delete(j);
    keep_output("CreateCompletionResponse", out, false);

    /* a streamed reply: role, reasoning, content, two tool calls, arguments in pieces, end */
    tu_case("chunk/reasoning-first");
    api_delta d = {.kind = API_DELTA_REASONING, .role = "assistant", .text = "Hm", .text_len = 2};
    out = api_chunk_body_delta(&m, 1, &d);
    j = parse_out("chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "choices.0.delta.role"), "assistant") == 0 &&
                 cJSON_IsNull(jget(j, "choices.0.delta.content")) &&
                 strcmp(jstr(j, "choices.0.delta.reasoning_content"), "Hm") == 0 &&
                 jget(j, "choices.0.index")->valueint == 1 &&
                 cJSON_IsNull(jget(j, "choices.0.finish_reason")),
             "reasoning chunk %s", out);
    cJSON_Delete(j);
    keep_output_ext("CreateChatCompletionStreamResponse", out, false, true);

    tu_case("chunk/reasoning-partial-utf8");
    d = (api_delta){.kind = API_DELTA_REASONING, .text = "\xE2\x80", .text_len = 2};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    TU_CHECK(j &&
                 strcmp(jstr(j, "choices.0.delta.reasoning_content"), "\xEF\xBF\xBD\xEF\xBF\xBD") ==
                     0 &&
                 !jget(j, "choices.0.delta.content") && !jget(j, "choices.0.delta.role"),
             "reasoning fragment %s", out);
    cJSON_Delete(j);
    keep_output_ext("CreateChatCompletionStreamResponse", out, false, true);

    tu_case("chunk/content-delta");
    d = (api_delta){.kind = API_DELTA_CONTENT,
                    .text = "Sure",
                    .text_len = 4,
                    .logprobs = toks,
                    .n_logprobs = 1};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "choices.0.delta.content"), "Sure") == 0 &&
                 !jget(j, "choices.0.delta.reasoning_content") &&
                 cJSON_GetArraySize(jget(j, "choices.0.logprobs.content")) == 1,
             "content chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/tool-start-with-role");
    d = (api_delta){.kind = API_DELTA_TOOL_START,
                    .role = "assistant",
                    .tool_index = 0,
                    .tool_id = "call_x1",
                    .tool_name = "get_weather"};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    if (j) {
        const cJSON *dl = jget(j, "choices.0.delta");
        TU_CHECK(strcmp(jstr(dl, "role"), "assistant") == 0 && cJSON_IsNull(jget(dl, "content")),
                 "role with content null");
        TU_CHECK(cJSON_GetArraySize(jget(dl, "tool_calls")) == 1 &&
                     jget(dl, "tool_calls.0.index")->valueint == 0 &&
                     strcmp(jstr(dl, "tool_calls.0.id"), "call_x1") == 0 &&
                     strcmp(jstr(dl, "tool_calls.0.type"), "function") == 0 &&
                     strcmp(jstr(dl, "tool_calls.0.function.name"), "get_weather") == 0 &&
                     strcmp(jstr(dl, "tool_calls.0.function.arguments"), "") == 0,
                 "first delta of a call: %s", out);
        cJSON_Delete(j);
    }
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/tool-args");
    d = (api_delta){.kind = API_DELTA_TOOL_ARGS, .tool_index = 0, .text = "{\"ci", .text_len = 4};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    if (j) {
        const cJSON *call = jget(j, "choices.0.delta.tool_calls.0");
        TU_CHECK(call && jget(call, "index")->valueint == 0 && !jget(call, "id") &&
                     !jget(call, "type") && !jget(call, "function.name") &&
                     strcmp(jstr(call, "function.arguments"), "{\"ci") == 0 &&
                     cJSON_GetArraySize(jget(j, "choices.0.delta")) == 1,
                 "arguments fragment %s", out);
        cJSON_Delete(j);
    }
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/tool-start-second-call-with-args");
    d = (api_delta){.kind = API_DELTA_TOOL_START,
                    .tool_index = 1,
                    .tool_id = "call_x2",
                    .tool_name = "get_time",
                    .text = "{}",
                    .text_len = 2};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    TU_CHECK(j && jget(j, "choices.0.delta.tool_calls.0.index")->valueint == 1 &&
                 strcmp(jstr(j, "choices.0.delta.tool_calls.0.function.arguments"), "{}") == 0 &&
                 !jget(j, "choices.0.delta.content") && !jget(j, "choices.0.delta.role"),
             "second call %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/tool-args-partial-utf8-negative-index");
    d = (api_delta){.kind = API_DELTA_TOOL_ARGS, .tool_index = -3, .text = "\"\xC3", .text_len = 2};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    TU_CHECK(j && jget(j, "choices.0.delta.tool_calls.0.index")->valueint == 0 &&
                 strcmp(jstr(j, "choices.0.delta.tool_calls.0.function.arguments"),
                        "\"\xEF\xBF\xBD") == 0,
             "fragment %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/tool-calls-finish");
    d = (api_delta){.kind = API_DELTA_NONE, .finish_reason = "tool_calls"};
    out = api_chunk_body_delta(&m, 0, &d);
    j = parse_out("chunk", out);
    TU_CHECK(j && cJSON_GetArraySize(jget(j, "choices.0.delta")) == 0 &&
                 strcmp(jstr(j, "choices.0.finish_reason"), "tool_calls") == 0,
             "last chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/delta-matches-old-api");
    /* api_chunk_body is a wrapper: the same bytes for the same content, ids aside */
    d = (api_delta){.kind = API_DELTA_NONE, .role = "assistant"};
    a = api_chunk_body_delta(&m, 0, &d);
    b = api_chunk_body(&m, 0, "assistant", NULL, 0, NULL, NULL, 0);
    TU_CHECK(a && b && strcmp(a, b) == 0, "first chunk differs: %s vs %s", a, b);
    free(b);
    keep_output("CreateChatCompletionStreamResponse", a, false);

    tu_case("chunk/completion-delta");
    d = (api_delta){.kind = API_DELTA_REASONING, .text = "hidden", .text_len = 6};
    out = api_chunk_body_delta(&mc, 0, &d);
    j = parse_out("completion chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "choices.0.text"), "") == 0 && !strstr(out, "hidden"),
             "completions write only content: %s", out);
    cJSON_Delete(j);
    keep_output("CreateCompletionResponse", out, true);
    d = (api_delta){
        .kind = API_DELTA_CONTENT, .text = "abc", .text_len = 3, .finish_reason = "stop"};
    out = api_chunk_body_delta(&mc, 0, &d);
    j = parse_out("completion chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "choices.0.text"), "abc") == 0, "completion text: %s", out);
    cJSON_Delete(j);
    keep_output("CreateCompletionResponse", out, false);

    tu_case("chunk/usage-reasoning");
    out = api_usage_chunk_body(&m, &u);
    j = parse_out("usage chunk", out);
    TU_CHECK(j && jget(j, "usage.completion_tokens_details.reasoning_tokens")->valueint == 11,
             "usage chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateChatCompletionStreamResponse", out, false);

    tu_case("chunk/null-args");
    TU_CHECK(api_chunk_body_delta(NULL, 0, &d) == NULL &&
                 api_chunk_body_delta(&m, 0, NULL) == NULL &&
                 api_response_body_ex(NULL, ch, ex, 1, &u) == NULL,
             "NULL arguments");
    api_tool_call_id(NULL);
}

static void test_completion_response(void) {
    make_tokens();
    api_meta m;
    api_meta_init(&m, API_COMPLETION, "m");
    api_choice ch = {.text = " Hello\xF0\x9F",
                     .text_len = 8,
                     .finish_reason = "length",
                     .logprobs = toks,
                     .n_logprobs = 4};
    api_usage u = {.prompt_tokens = 1, .completion_tokens = 4};

    tu_case("response/completion");
    char *out = api_response_body(&m, &ch, 1, &u);
    cJSON *j = parse_out("completion", out);
    if (j) {
        TU_CHECK(strcmp(jstr(j, "object"), "text_completion") == 0 &&
                     strncmp(jstr(j, "id"), "cmpl-", 5) == 0,
                 "object/id");
        TU_CHECK(strcmp(jstr(j, "choices.0.text"), " Hello\xEF\xBF\xBD\xEF\xBF\xBD") == 0, "text");
        const cJSON *lp = jget(j, "choices.0.logprobs");
        TU_CHECK(cJSON_GetArraySize(jget(lp, "tokens")) == 4 &&
                     cJSON_GetArraySize(jget(lp, "token_logprobs")) == 4 &&
                     cJSON_GetArraySize(jget(lp, "top_logprobs")) == 4 &&
                     cJSON_GetArraySize(jget(lp, "text_offset")) == 4,
                 "parallel arrays");
        TU_CHECK(jget(lp, "text_offset.1")->valueint == 6 &&
                     jget(lp, "text_offset.2")->valueint == 8 &&
                     jget(lp, "text_offset.3")->valueint == 10,
                 "byte offsets");
        TU_CHECK(cJSON_GetArraySize(jget(lp, "top_logprobs.0")) == 2, "top 0 has 2 keys");
        TU_CHECK(cJSON_GetArraySize(jget(lp, "top_logprobs.1")) == 1 &&
                     jget(lp, "top_logprobs.1.\xEF\xBF\xBD")->valuedouble == -1.5,
                 "duplicate U+FFFD keys keep the most probable");
        TU_CHECK(cJSON_GetArraySize(jget(lp, "top_logprobs.2")) == 0, "no tops -> {}");
        TU_CHECK(jget(lp, "token_logprobs.2")->valuedouble == -9999.0, "-inf -> -9999");
        cJSON_Delete(j);
    }
    keep_output("CreateCompletionResponse", out, false);

    tu_case("chunk/completion");
    out = api_chunk_body(&m, 1, "assistant", "abc", 3, NULL, toks, 1);
    j = parse_out("completion chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "object"), "text_completion") == 0 &&
                 strcmp(jstr(j, "choices.0.text"), "abc") == 0 && !jget(j, "choices.0.delta") &&
                 cJSON_IsNull(jget(j, "choices.0.finish_reason")) &&
                 jget(j, "choices.0.index")->valueint == 1,
             "completion chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateCompletionResponse", out, true);

    tu_case("chunk/completion-last");
    out = api_chunk_body(&m, 0, NULL, NULL, 0, "stop", NULL, 0);
    j = parse_out("completion chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "choices.0.text"), "") == 0 &&
                 strcmp(jstr(j, "choices.0.finish_reason"), "stop") == 0,
             "completion last chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateCompletionResponse", out, false);

    tu_case("chunk/completion-usage");
    out = api_usage_chunk_body(&m, &u);
    j = parse_out("completion usage chunk", out);
    TU_CHECK(j && strcmp(jstr(j, "object"), "text_completion") == 0 &&
                 cJSON_GetArraySize(jget(j, "choices")) == 0,
             "usage chunk %s", out);
    cJSON_Delete(j);
    keep_output("CreateCompletionResponse", out, false);
}

/* ------------------------------------------------------- random bodies */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One parse of arbitrary bytes: it may succeed or fail, but a failure must be a 400 with a
 * well-formed envelope, and nothing may crash or leak (ASan checks the latter). */
static void fuzz_one(api_kind kind, const char *body, size_t len, int *bad) {
    api_request req;
    api_error err;
    memset(&err, 0, sizeof err);
    int rc = api_parse_request(kind, body, len, VOCAB, &req, &err);
    if (rc == 0) {
        api_request_free(&req);
        return;
    }
    char *out = api_error_body(&err);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    if (rc != -1 || err.status != 400 || !out || !valid_utf8(out) || !j) {
        if ((*bad)++ < 5)
            tu_fail(__FILE__, __LINE__, "bad refusal rc=%d status=%d body=%.*s out=%s", rc,
                    err.status, (int)len, body, out ? out : "(null)");
    }
    cJSON_Delete(j);
    free(out);
}

static const char *const seeds[] = {
    "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'a'}]},{'role':"
    "'assistant','content':null,'tool_calls':[{'id':'x','type':'function'}]},{'role':'tool',"
    "'tool_call_id':'x','content':'r'}],'temperature':0.5,'stop':['a','b'],'logit_bias':{'5':1},"
    "'stream':true,'stream_options':{'include_usage':true},'logprobs':true,'top_logprobs':2}",
    "{'model':'m','prompt':[[1,2],[3]],'logprobs':2,'n':2,'best_of':2,'echo':false,'max_tokens':5}",
    "{'model':'m','prompt':['a','b'],'seed':5,'stop':'x','top_k':3,'min_p':0.1}",
    "{'model':'m','messages':[{'role':'user','content':'a'}],'tools':[{'type':'function',"
    "'function':{'name':'f','description':'d','parameters':{'type':'object'},'strict':true}},"
    "{'type':'function','function':{'name':'g'}}],'tool_choice':{'type':'function','function':"
    "{'name':'g'}},'parallel_tool_calls':false,'response_format':{'type':'json_schema',"
    "'json_schema':{'name':'s','schema':{},'strict':true}},'reasoning_effort':'low'}",
};

static void test_fuzz(void) {
    tu_case("fuzz/mutated-bodies");
    rng r = {42};
    int bad = 0;
    char buf[2048];
    for (int it = 0; it < 30000; it++) {
        const char *s = q(seeds[it % 4]);
        size_t len = strlen(s);
        memcpy(buf, s, len);
        int edits = 1 + (int)(rnd(&r) % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = (size_t)(rnd(&r) % len);
            switch (rnd(&r) % 4) {
            case 0:
                buf[pos] = (char)rnd(&r);
                break; /* flip */
            case 1:
                len = pos + 1;
                break; /* truncate */
            case 2:
                buf[pos] = "{}[],:\"0-.e"[rnd(&r) % 11];
                break; /* syntax */
            default:
                if (len + 1 < sizeof buf) { /* insert */
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = (char)rnd(&r);
                    len++;
                }
            }
        }
        fuzz_one(it % 4 == 0 || it % 4 == 3 ? API_CHAT : API_COMPLETION, buf, len, &bad);
    }
    TU_CHECK(bad == 0, "%d bad refusals", bad);

    tu_case("fuzz/field-types");
    /* every known field with values of every JSON type */
    static const char *const fields[] = {
        "model",
        "messages",
        "prompt",
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "user",
        "stream",
        "stream_options",
        "top_k",
        "min_p",
        "repetition_penalty",
        "chat_template_kwargs",
        "metadata",
        "store",
        "service_tier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "modalities",
        "echo",
        "suffix",
        "best_of",
    };
    static const char *const values[] = {
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1",
        "2.5",
        "1e308",
        "-1e308",
        "'x'",
        "''",
        "[]",
        "{}",
        "[1,2]",
        "['a']",
        "[[1]]",
        "[{}]",
        "{'a':1}",
        "{'5':1}",
        "{'type':'text'}",
        "[{'role':'user','content':'x'}]",
        "[{'role':'user'}]",
        "4294967296",
        "20",
        "17",
        "{'include_usage':true}",
        "'auto'",
        "'none'",
        "['text']",
        "[[1],[1001]]",
        "-0",
        "'required'",
        "'low'",
        "[{'type':'function','function':{'name':'f'}}]",
        "[{'type':'function','function':{'name':'f','parameters':[]}}]",
        "{'type':'function','function':{'name':'f'}}",
        "{'type':'json_object'}",
        "{'type':'json_schema','json_schema':{'name':'n','schema':{'type':'object'}}}",
        "{'type':'json_schema','json_schema':{'name':'n','schema':[]}}",
    };
    bad = 0;
    size_t nf = sizeof fields / sizeof fields[0], nv = sizeof values / sizeof values[0];
    for (size_t f = 0; f < nf; f++)
        for (size_t v = 0; v < nv; v++)
            for (int kind = 0; kind < 2; kind++) {
                char body[512];
                snprintf(body, sizeof body,
                         kind ? "{'model':'m','prompt':'p','stream':true,'%s':%s}"
                              : "{'model':'m','messages':[{'role':'user','content':'x'}],"
                                "'stream':true,'%s':%s}",
                         fields[f], values[v]);
                const char *b = q(body);
                fuzz_one(kind ? API_COMPLETION : API_CHAT, b, strlen(b), &bad);
            }
    TU_CHECK(bad == 0, "%d bad refusals", bad);

    tu_case("fuzz/deep-nesting");
    /* deeper than cJSON's nesting limit: must be a parse error, not a stack overflow */
    static char deep[20000];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"model\":\"m\",\"prompt\":\"x\",\"a\":");
    for (int i = 0; i < 5000; i++) deep[n++] = '[';
    for (int i = 0; i < 5000; i++) deep[n++] = ']';
    deep[n++] = '}';
    bad = 0;
    fuzz_one(API_COMPLETION, deep, n, &bad);
    TU_CHECK(bad == 0, "deep nesting");
}

/* --------------------------------------------------------- schema pass */

static void test_validator(const cJSON *schema) {
    char err[512];
    struct {
        const char *name, *def, *json;
        bool valid;
        int flags;
    } cases[] = {
        {"error-ok", "ErrorResponse",
         "{'error':{'message':'m','type':'t','param':null,'code':null}}", true, 0},
        {"error-int-code", "ErrorResponse",
         "{'error':{'message':'m','type':'t','param':null,'code':400}}", false, 0},
        {"error-missing-param", "ErrorResponse", "{'error':{'message':'m','type':'t','code':null}}",
         false, 0},
        {"error-not-object", "ErrorResponse", "[]", false, 0},
        {"chat-minimal", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':'hi','refusal':null},'logprobs':null,"
         "'finish_reason':'stop'}]}",
         true, SCHEMA_STRICT},
        {"chat-wrong-object", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion.chunk','created':1,'model':'m','choices':[]}", false,
         0},
        {"chat-missing-created", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','model':'m','choices':[]}", false, 0},
        {"chat-created-decimal", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1.5,'model':'m','choices':[]}", false, 0},
        {"chat-bad-finish", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':'hi','refusal':null},'logprobs':null,"
         "'finish_reason':'eos'}]}",
         false, 0},
        {"chat-null-finish", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':'hi','refusal':null},'logprobs':null,"
         "'finish_reason':null}]}",
         false, 0},
        {"chat-missing-refusal", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':'hi'},'logprobs':null,'finish_reason':'stop'}]}",
         false, 0},
        {"chat-content-number", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':5,'refusal':null},'logprobs':null,"
         "'finish_reason':'stop'}]}",
         false, 0},
        {"chat-logprob-without-bytes", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':'a','refusal':null},'logprobs':{'content':["
         "{'token':'a','logprob':-1,'top_logprobs':[]}],'refusal':null},'finish_reason':'stop'}]}",
         false, 0},
        {"chat-extra-member-lax", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[],'extra':1}",
         true, 0},
        {"chat-extra-member-strict", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[],'extra':1}",
         false, SCHEMA_STRICT},
        {"chat-tool-calls-oneof", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':null,'refusal':null,'tool_calls':[{'id':'c',"
         "'type':'function','function':{'name':'f','arguments':'{}'}}]},'logprobs':null,"
         "'finish_reason':'tool_calls'}]}",
         true, 0},
        {"chat-tool-calls-bad-type", "CreateChatCompletionResponse",
         "{'id':'x','object':'chat.completion','created':1,'model':'m','choices':[{'index':0,"
         "'message':{'role':'assistant','content':null,'refusal':null,'tool_calls':[{'id':'c',"
         "'type':'magic','function':{'name':'f','arguments':'{}'}}]},'logprobs':null,"
         "'finish_reason':'tool_calls'}]}",
         false, 0},
        {"chunk-null-finish", "CreateChatCompletionStreamResponse",
         "{'id':'x','object':'chat.completion.chunk','created':1,'model':'m','choices':[{'index':"
         "0,'delta':{},'finish_reason':null}],'usage':null}",
         true, SCHEMA_STRICT},
        {"chunk-bad-role", "CreateChatCompletionStreamResponse",
         "{'id':'x','object':'chat.completion.chunk','created':1,'model':'m','choices':[{'index':"
         "0,'delta':{'role':'robot'},'finish_reason':null}]}",
         false, 0},
        {"usage-missing-total", "CompletionUsage", "{'prompt_tokens':1,'completion_tokens':1}",
         false, 0},
        {"completion-top-logprobs-values", "CreateCompletionResponse",
         "{'id':'x','object':'text_completion','created':1,'model':'m','choices':[{'index':0,"
         "'text':'a','finish_reason':'stop','logprobs':{'tokens':['a'],'token_logprobs':[-1],"
         "'top_logprobs':[{'a':'high'}],'text_offset':[0]}}]}",
         false, 0},
        {"models-list", "ListModelsResponse",
         "{'object':'list','data':[{'id':'m','object':'model','created':1,'owned_by':'me'}]}", true,
         SCHEMA_STRICT},
        {"model-missing-owner", "ListModelsResponse",
         "{'object':'list','data':[{'id':'m','object':'model','created':1}]}", false, 0},
        {"no-such-def", "NoSuchThing", "{}", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_case("validator/%s", cases[i].name);
        int rc = schema_validate_text(schema, cases[i].def, q(cases[i].json), cases[i].flags, err,
                                      sizeof err);
        TU_CHECK((rc == 0) == cases[i].valid, "%s (%s)", cases[i].valid ? "refused" : "accepted",
                 rc ? err : "no error");
        if (!cases[i].valid) TU_CHECK(err[0] != 0, "no message for a refusal");
    }

    /* keywords the OpenAI file does not use, on little schemas of their own */
    struct {
        const char *name, *schema, *json;
        bool valid;
    } own[] = {
        {"type-array", "{'type':['integer','null']}", "null", true},
        {"type-array-miss", "{'type':['integer','null']}", "'x'", false},
        {"integer-vs-number", "{'type':'integer'}", "1.5", false},
        {"const", "{'const':{'a':[1]}}", "{'a':[1]}", true},
        {"const-miss", "{'const':'a'}", "'b'", false},
        {"oneof-two-match", "{'oneOf':[{'type':'number'},{'type':'integer'}]}", "1", false},
        {"oneof-one-match", "{'oneOf':[{'type':'number'},{'type':'integer'}]}", "1.5", true},
        {"allof", "{'allOf':[{'type':'number'},{'minimum':2}]}", "1", false},
        {"not", "{'not':{'type':'string'}}", "'s'", false},
        {"additional-false", "{'properties':{'a':{}},'additionalProperties':false}", "{'b':1}",
         false},
        {"additional-schema", "{'additionalProperties':{'type':'number'}}", "{'b':'x'}", false},
        {"nullable", "{'type':'string','nullable':true}", "null", true},
        {"bounds", "{'maxItems':1,'items':{'maxLength':2}}", "['abc']", false},
        {"exclusive", "{'exclusiveMinimum':0}", "0", false},
        {"prefix-items", "{'prefixItems':[{'type':'string'}],'items':{'type':'number'}}",
         "['a',1,2]", true},
        {"bool-schema-false", "{'properties':{'a':false}}", "{'a':1}", false},
        {"ref-local", "{'$defs':{'n':{'type':'null'}},'$ref':'#/$defs/n'}", "null", false},
        {"ref-missing", "{'$ref':'#/$defs/Nope'}", "1", false},
        {"ref-by-id", "{'$ref':'https://conformance.local/openai-schemas.json#/$defs/Error'}",
         "{'message':'m','type':'t','param':null,'code':null}", true},
        {"ref-cycle", "{'$ref':'#/$defs/Self'}", "1", false},
        {"unknown-keyword", "{'patternProperties':{}}", "{}", false},
        {"annotations-ignored", "{'description':'d','x-foo':1,'format':'uri','type':'string'}",
         "'x'", true},
    };
    /* ref-local resolves against the OpenAI file, which has no $defs/n: it must fail;
     * ref-cycle needs a self-referencing definition, added to a copy of the file */
    cJSON *copy = cJSON_Duplicate(schema, 1);
    cJSON *defs = cJSON_GetObjectItemCaseSensitive(copy, "$defs");
    cJSON *self = cJSON_Parse(q("{'$ref':'#/$defs/Self'}"));
    if (defs && self)
        cJSON_AddItemToObject(defs, "Self", self);
    else
        cJSON_Delete(self);
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        tu_case("validator/own/%s", own[i].name);
        cJSON *s = cJSON_Parse(q(own[i].schema));
        char jtext[512];
        snprintf(jtext, sizeof jtext, "%s", q(own[i].json));
        cJSON *v = cJSON_Parse(jtext);
        TU_CHECK(s && v, "test JSON broken");
        int rc = s && v ? schema_validate_ex(copy, s, v, 0, err, sizeof err) : -1;
        TU_CHECK((rc == 0) == own[i].valid, "%s (%s)", own[i].valid ? "refused" : "accepted",
                 rc ? err : "no error");
        cJSON_Delete(s);
        cJSON_Delete(v);
    }
    cJSON_Delete(copy);
}

static void test_schemas(const cJSON *schema) {
    char err[512];
    for (size_t i = 0; i < n_error_bodies; i++) {
        tu_case("schema/error-body-%zu", i);
        TU_CHECK(schema_validate_text(schema, "ErrorResponse", error_bodies[i], SCHEMA_STRICT, err,
                                      sizeof err) == 0,
                 "%s in %s", err, error_bodies[i]);
    }

    /* OpenAI's completions stream sends "finish_reason": null until the last chunk, which the
     * spec's CreateCompletionResponse (shared by both) does not allow; those chunks are
     * checked against a copy that does */
    cJSON *lenient = cJSON_Duplicate(schema, 1);
    cJSON *fr = (cJSON *)jget(lenient, "$defs.CreateCompletionResponse.properties.choices.items."
                                       "properties.finish_reason");
    if (fr) {
        cJSON_ReplaceItemInObject(fr, "type", cJSON_Parse("[\"string\",\"null\"]"));
        cJSON_AddItemToArray(cJSON_GetObjectItem(fr, "enum"), cJSON_CreateNull());
    }
    TU_CHECK(fr != NULL, "schema layout changed: no completions finish_reason");

    /* reasoning_content is an extension (DeepSeek, vLLM, llama.cpp): strict validation, which
     * refuses members the spec does not list, is done against a copy that lists it, and the
     * unmodified spec must refuse only because of it */
    cJSON *extended = cJSON_Duplicate(schema, 1);
    static const char *const ext_defs[] = {"$defs.ChatCompletionResponseMessage.properties",
                                           "$defs.ChatCompletionStreamResponseDelta.properties"};
    for (size_t k = 0; k < 2; k++) {
        cJSON *props = (cJSON *)jget(extended, ext_defs[k]);
        TU_CHECK(props != NULL, "schema layout changed: no %s", ext_defs[k]);
        if (props)
            cJSON_AddItemToObject(props, "reasoning_content", cJSON_Parse("{\"type\":\"string\"}"));
    }

    for (size_t i = 0; i < n_outputs; i++) {
        for (int strict = 0; strict < 2; strict++) {
            tu_case("schema/%s-%zu%s", outputs[i].def, i, strict ? "-strict" : "");
            const cJSON *root = outputs[i].stream_intermediate   ? lenient
                                : outputs[i].extension && strict ? extended
                                                                 : schema;
            TU_CHECK(schema_validate_text(root, outputs[i].def, outputs[i].json,
                                          strict ? SCHEMA_STRICT : 0, err, sizeof err) == 0,
                     "%s in %s", err, outputs[i].json);
        }
        if (outputs[i].extension) {
            tu_case("schema/%s-%zu-spec-strict-refuses-extension", outputs[i].def, i);
            TU_CHECK(schema_validate_text(schema, outputs[i].def, outputs[i].json, SCHEMA_STRICT,
                                          err, sizeof err) != 0 &&
                         strstr(err, "reasoning_content"),
                     "the strict spec should refuse reasoning_content (%s)", err);
        }
        if (outputs[i].stream_intermediate) {
            tu_case("schema/%s-%zu-spec-refuses-null-finish", outputs[i].def, i);
            TU_CHECK(schema_validate_text(schema, outputs[i].def, outputs[i].json, 0, err,
                                          sizeof err) != 0,
                     "the unmodified schema should refuse finish_reason null");
        }
    }
    cJSON_Delete(lenient);
    cJSON_Delete(extended);
}

int main(void) {
    test_reject_json();
    test_reject_model_and_messages();
    test_reject_sampling();
    test_reject_unknown_and_unsupported();
    test_reject_steering();
    test_reject_completion();
    test_accept_chat();
    test_accept_completion();
    test_accept_steering();
    test_meta();
    test_error_body();
    test_chat_response();
    test_chat_chunks();
    test_chat_tools_and_reasoning();
    test_completion_response();
    test_fuzz();

    /* The schema pass needs ../shared; a failure so far is reported even when it is absent. */
    int rc = 0;
    if (tu.failed || (tu.current && tu.case_failed)) {
        rc = tu_finish();
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/spec/openai-schemas.json", tu_shared_dir());
        cJSON *schema = tu_load_json(path);
        test_validator(schema);
        test_schemas(schema);
        cJSON_Delete(schema);
        rc = tu_finish();
    }
    for (size_t i = 0; i < n_error_bodies; i++) free(error_bodies[i]);
    for (size_t i = 0; i < n_outputs; i++) free(outputs[i].json);
    return rc;
}
