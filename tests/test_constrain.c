/* test_constrain.c - the constraint engine over a real vocabulary (Qwen2.5's 151,936
 * tokens): which texts each grammar accepts byte by byte, and generation that picks a
 * random allowed token at every step, whose output must always be complete and valid
 * within its token budget. Uniformly random choices explore far odder paths than any
 * model would. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chatd/constrain.h"
#include "chatd/gguf.h"
#include "chatd/tokenizer.h"
#include "testutil.h"

static const cons_vocab *cv;
static const tok_vocab *tv;
static double max_step_s; /* slowest cons_allowed call */

/* A grammar under construction and the node to compile. */
typedef struct tgram {
    cons_grammar *g;
    cons_node root;
} tgram;

static cons_matcher *start(tgram t) {
    chatd_error err = {{0}};
    cons_program *p = cons_compile(t.g, t.root, cv, &err);
    TU_CHECK(p != NULL, "compile: %s", err.msg);
    if (!p) return NULL;
    cons_matcher *m = cons_matcher_new(p, &err);
    cons_program_release(p);
    TU_CHECK(m != NULL, "matcher: %s", err.msg);
    return m;
}

/* 1 = accepted and complete, 0 = accepted, incomplete, -1 = refused. */
static int accepts(tgram t, const char *text) {
    cons_matcher *m = start(t);
    if (!m) return -2;
    int r = cons_advance_bytes(m, text, strlen(text)) != 0 ? -1 : cons_complete(m) ? 1 : 0;
    cons_matcher_free(m);
    return r;
}

static void expect(tgram t, const char *text, int want) {
    int got = accepts(t, text);
    TU_CHECK(got == want, "%s: got %d, want %d", text, got, want);
}

/* {"name": string(1..20), "age": integer 0..150, "tags": [enum a|b, max 2],
 *  "when": date, "kind": anyOf(null, "x"|"y")}, name and age required, no other keys. */
static tgram person(void) {
    tgram t = {cons_grammar_new(NULL), -1};
    cons_grammar *g = t.g;
    const char *ab[] = {"\"a\"", "\"b\""};
    const char *xy[] = {"\"x\"", "\"y\""};
    cons_node alts[] = {cons_null(g), cons_literals(g, xy, 2)};
    cons_node o = cons_object(g, -1);
    cons_object_prop(g, o, "name", cons_string(g, 1, 20, CONS_FMT_NONE), true);
    cons_object_prop(g, o, "age", cons_integer(g, true, 0, true, 150), true);
    cons_object_prop(g, o, "tags", cons_array(g, cons_literals(g, ab, 2), 0, 2), false);
    cons_object_prop(g, o, "when", cons_string(g, 0, -1, CONS_FMT_DATE), false);
    cons_object_prop(g, o, "kind", cons_any_of(g, alts, 2), false);
    t.root = o;
    return t;
}

static tgram json_object(void) {
    tgram t = {cons_grammar_new(NULL), -1};
    t.root = cons_object(t.g, cons_any(t.g));
    return t;
}

/* A thinking block, then a Hermes tool call of one of two functions. */
static tgram think_then_call(void) {
    tgram t = {cons_grammar_new(NULL), -1};
    cons_grammar *g = t.g;
    cons_node loc = cons_object(g, -1);
    cons_object_prop(g, loc, "city", cons_string(g, 0, -1, CONS_FMT_NONE), true);
    cons_node none = cons_object(g, -1);
    const char *a = "{\"name\": \"get_weather\", \"arguments\": ";
    const char *b = "{\"name\": \"get_time\", \"arguments\": ";
    cons_node call_a[] = {cons_text(g, a, strlen(a)), loc, cons_text(g, "}", 1)};
    cons_node call_b[] = {cons_text(g, b, strlen(b)), none, cons_text(g, "}", 1)};
    cons_node calls[] = {cons_seq(g, call_a, 3), cons_seq(g, call_b, 3)};
    cons_node one[] = {cons_text(g, "<tool_call>\n", 12), cons_any_of(g, calls, 2),
                       cons_text(g, "\n</tool_call>", 13)};
    cons_node seq[] = {cons_text(g, "<think>", 7), cons_until(g, "</think>"), cons_ws(g),
                       cons_repeat(g, cons_seq(g, one, 3), cons_text(g, "\n", 1), 1, -1)};
    t.root = cons_seq(g, seq, 4);
    return t;
}

static void test_accepts(void) {
    tu_case("accept.json_object");
    tgram t = json_object();
    expect(t, "{\"a\":1,\"b\":[true,null,\"x\\n\\u00e9\"],\"c\":{\"d\":-1.5e3}}", 1);
    expect(t, "{ \"a\" : [ ] , \"\xc3\xa9\" : {} }", 1);
    expect(t, "{\"a\":1", 0);
    expect(t, "{\"a\":}", -1);
    expect(t, "[1]", -1);
    expect(t, "{\"a\":01}", -1);
    expect(t, "{\"a\":\"\x01\"}", -1);
    expect(t, "{\"a\":\"\xc3\"}", -1);
    expect(t, "{\"a\":tru}", -1);
    expect(t, "{\"a\":\"\\ud83d\\ude00\"}", -1); /* no surrogates, paired or not */
    expect(t, "{\"a\":\"\\u00e9\\n\"}", 1);
    expect(t, "{}x", -1);
    cons_grammar_free(t.g);

    tu_case("accept.schema");
    t = person();
    expect(t, "{\"name\":\"Ann\",\"age\":42}", 1);
    expect(t, "{\"age\":0,\"name\":\"B\",\"tags\":[\"a\",\"b\"],\"when\":\"2024-02-28\"}", 1);
    expect(t, "{\"name\":\"Ann\",\"age\":42,\"kind\":null}", 1);
    expect(t, "{\"name\":\"Ann\",\"age\":42,\"kind\":\"y\"}", 1);
    expect(t, "{\"name\":\"Ann\",\"age\":42,\"kind\":\"z\"}", -1);
    expect(t, "{\"name\":\"Ann\"}", -1);                             /* age is required */
    expect(t, "{\"name\":\"Ann\",\"age\":151}", -1);                 /* maximum */
    expect(t, "{\"name\":\"Ann\",\"age\":-1}", -1);                  /* minimum */
    expect(t, "{\"name\":\"Ann\",\"age\":4.5}", -1);                 /* an integer */
    expect(t, "{\"name\":\"\",\"age\":1}", -1);                      /* minLength */
    expect(t, "{\"name\":\"123456789012345678901\",\"age\":1}", -1); /* maxLength */
    expect(t, "{\"name\":\"A\",\"age\":1,\"x\":1}", -1);        /* additionalProperties false */
    expect(t, "{\"name\":\"A\",\"name\":\"B\",\"age\":1}", -1); /* twice */
    expect(t, "{\"name\":\"A\",\"age\":1,\"tags\":[\"a\",\"a\",\"b\"]}", -1); /* maxItems */
    expect(t, "{\"name\":\"A\",\"age\":1,\"when\":\"2024-13-01\"}", -1);
    expect(t, "{\"name\":\"A\",\"age\":1,\"when\":\"2024-04-31\"}", -1);
    cons_grammar_free(t.g);

    tu_case("accept.integers");
    t = (tgram){cons_grammar_new(NULL), -1};
    t.root = cons_integer(t.g, true, -5, true, 12);
    expect(t, "-5", 1);
    expect(t, "-6", -1);
    expect(t, "12", 1);
    expect(t, "1", 1);
    expect(t, "13", -1);
    expect(t, "0", 1);
    expect(t, "-0", -1);
    expect(t, "007", -1);
    cons_grammar_free(t.g);

    tu_case("accept.formats");
    t = (tgram){cons_grammar_new(NULL), -1};
    t.root = cons_string(t.g, 0, -1, CONS_FMT_DATE_TIME);
    expect(t, "\"2024-01-31T23:59:59Z\"", 1);
    expect(t, "\"2024-01-31T24:00:00Z\"", -1);
    expect(t, "\"2024-01-31\"", -1);
    cons_grammar_free(t.g);
    t = (tgram){cons_grammar_new(NULL), -1};
    t.root = cons_string(t.g, 0, -1, CONS_FMT_UUID);
    expect(t, "\"123e4567-e89b-12d3-a456-426614174000\"", 1);
    expect(t, "\"123e4567e89b-12d3-a456-426614174000\"", -1);
    cons_grammar_free(t.g);

    tu_case("accept.think_then_calls");
    t = think_then_call();
    expect(t,
           "<think>a <b> </thi </think>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
           "{}}\n</tool_call>",
           1);
    expect(t,
           "<think></think><tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
           "{\"city\":\"P\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", "
           "\"arguments\": {}}\n</tool_call>",
           1);
    expect(t, "<think></think><tool_call>\n{\"name\": \"get_x\"", -1);
    expect(t, "<think></think>hello", -1);
    cons_grammar_free(t.g);
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Generates with uniformly random allowed tokens; returns the text (caller frees), or
 * NULL when a step had nothing allowed. Adds the time spent in cons_allowed. */
static char *generate(tgram t, uint64_t seed, int64_t max_tokens, double *mask_s, int *steps) {
    cons_matcher *m = start(t);
    if (!m) return NULL;
    size_t words = cons_mask_words(m);
    uint32_t *mask = malloc(words * sizeof *mask);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    uint64_t rng = seed * 2654435761u + 1;
    bool ok = mask && out;
    for (int64_t i = 0; ok && i < max_tokens && !cons_finished(m); i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int64_t n = cons_allowed(m, max_tokens - i, mask);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        *mask_s += dt;
        if (dt > max_step_s) max_step_s = dt;
        (*steps)++;
        if (n <= 0) {
            TU_CHECK(0, "seed %llu step %lld: no token allowed after \"%.*s\"",
                     (unsigned long long)seed, (long long)i, (int)len, out);
            ok = false;
            break;
        }
        int64_t id = cons_mask_nth(mask, words, (int64_t)(rng_next(&rng) % (uint64_t)n));
        if (cons_advance(m, (int32_t)id) != 0) {
            TU_CHECK(0, "seed %llu: allowed token %lld refused", (unsigned long long)seed,
                     (long long)id);
            ok = false;
            break;
        }
        if (tok_is_eog(tv, (int32_t)id)) break;
        size_t pl = 0;
        const char *piece = tok_piece(tv, (int32_t)id, false, &pl);
        if (len + pl + 1 > cap) {
            char *no = realloc(out, cap *= 2);
            if (!no) break;
            out = no;
        }
        memcpy(out + len, piece, pl);
        len += pl;
    }
    if (ok) {
        TU_CHECK(cons_complete(m), "seed %llu: incomplete after %lld tokens: \"%.*s\"",
                 (unsigned long long)seed, (long long)max_tokens, (int)len, out);
        out[len] = 0;
    }
    free(mask);
    cons_matcher_free(m);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

static void check_person(const char *text, uint64_t seed) {
    cJSON *j = cJSON_Parse(text);
    TU_CHECK(j && cJSON_IsObject(j), "seed %llu: not an object: %s", (unsigned long long)seed,
             text);
    if (!j) return;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *age = cJSON_GetObjectItemCaseSensitive(j, "age");
    TU_CHECK(cJSON_IsString(name), "seed %llu: name: %s", (unsigned long long)seed, text);
    TU_CHECK(cJSON_IsNumber(age) && age->valuedouble >= 0 && age->valuedouble <= 150 &&
                 age->valuedouble == (double)(int)age->valuedouble,
             "seed %llu: age: %s", (unsigned long long)seed, text);
    for (const cJSON *k = j->child; k; k = k->next)
        TU_CHECK(strcmp(k->string, "name") == 0 || strcmp(k->string, "age") == 0 ||
                     strcmp(k->string, "tags") == 0 || strcmp(k->string, "when") == 0 ||
                     strcmp(k->string, "kind") == 0,
                 "seed %llu: extra key %s", (unsigned long long)seed, k->string);
    cJSON_Delete(j);
}

static void test_generate(void) {
    double mask_s = 0;
    int steps = 0;
    tu_case("generate.person");
    tgram t = person();
    for (uint64_t seed = 1; seed <= 40; seed++) {
        char *s = generate(t, seed, 60, &mask_s, &steps);
        if (s) check_person(s, seed);
        free(s);
    }
    cons_grammar_free(t.g);

    tu_case("generate.json_object");
    t = json_object();
    for (uint64_t seed = 1; seed <= 40; seed++) {
        char *s = generate(t, seed, 30 + (int64_t)seed, &mask_s, &steps);
        if (s) {
            cJSON *j = cJSON_Parse(s);
            TU_CHECK(j && cJSON_IsObject(j), "seed %llu: not a JSON object: %s",
                     (unsigned long long)seed, s);
            cJSON_Delete(j);
        }
        free(s);
    }
    cons_grammar_free(t.g);

    tu_case("generate.think_then_call");
    t = think_then_call();
    for (uint64_t seed = 1; seed <= 20; seed++) {
        char *s = generate(t, seed, 80, &mask_s, &steps);
        if (s) {
            const char *c = strstr(s, "</think>");
            TU_CHECK(strncmp(s, "<think>", 7) == 0 && c, "seed %llu: %s", (unsigned long long)seed,
                     s);
            c = c ? strstr(c, "<tool_call>\n") : NULL;
            TU_CHECK(c != NULL, "seed %llu: no call: %s", (unsigned long long)seed, s);
            if (c) {
                c += 12;
                const char *e = strstr(c, "\n</tool_call>");
                TU_CHECK(e != NULL, "seed %llu: unterminated: %s", (unsigned long long)seed, s);
                cJSON *j = e ? cJSON_ParseWithLength(c, (size_t)(e - c)) : NULL;
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
                TU_CHECK(cJSON_IsString(nm) && (strcmp(nm->valuestring, "get_weather") == 0 ||
                                                strcmp(nm->valuestring, "get_time") == 0),
                         "seed %llu: call: %s", (unsigned long long)seed, s);
                cJSON_Delete(j);
            }
        }
        free(s);
    }
    cons_grammar_free(t.g);
    printf("# %d constrained steps, %.3f ms per step in cons_allowed (Qwen vocabulary), slowest "
           "%.3f ms\n",
           steps, steps ? mask_s * 1e3 / steps : 0.0, max_step_s * 1e3);
}

int main(void) {
    const char *path = tu_model_path("qwen2-tiny-q8_0.gguf");
    chatd_error err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    if (!f) tu_skip_or_fail("cannot open %s: %s", path, err.msg);
    tok_vocab *v = tok_load(f, &err);
    gguf_close(f);
    if (!v) tu_skip_or_fail("tok_load: %s", err.msg);
    tv = v;
    cons_vocab *c = cons_vocab_new(v, &err);
    if (!c) tu_skip_or_fail("cons_vocab_new: %s", err.msg);
    cv = c;
    test_accepts();
    test_generate();
    cons_vocab_free(c);
    tok_free(v);
    return tu_finish();
}
