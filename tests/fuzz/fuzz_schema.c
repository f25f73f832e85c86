/* fuzz_schema.c - libFuzzer harness for JSON Schema translation and constrained decoding.
 *
 * The input is a JSON Schema, then optionally a NUL byte and "choice" bytes. The schema
 * (request data: any bytes a client sends) must be turned into a grammar or refused with
 * a 400 and a message; a grammar is compiled for a small byte-level vocabulary and a
 * generation is steered through it, each choice byte picking one of the allowed tokens.
 * Every allowed token must be accepted by cons_advance (the mask never lies), a step may
 * allow nothing only when the output is finished, and when the budget allowed at least the
 * shortest completion the output must end complete. Built as a fuzzer with -DCHATD_FUZZ=ON,
 * and always as a replay program over the seed corpus (tests/fuzz/corpus/fuzz_schema). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/schema.h"
#include "chatd/constrain.h"
#include "chatd/gguf.h"
#include "chatd/tokenizer.h"
#include "gguf_builder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Tokens longer than a byte, so that the mask walk meets tokens spanning structure. */
static const char *const fuzz_extra[] = {
    "{\"",  "\":", "\",",  "\"}", "\": \"", "},",      "true",     "false",
    "null", "12",  "2024", "-01", ":00",    "ab",      " \"",      "\n  ",
    "[1",   "],",  "\\u",  "0.5", "e+",     "<think>", "</think>", "<tool_call>\n"};
#define FUZZ_N_EXTRA (sizeof fuzz_extra / sizeof fuzz_extra[0])

/* The vocabulary, built once per process (the harness's only state across inputs). */
static tok_vocab *fuzz_tok;
static cons_vocab *fuzz_cv;

static void fuzz_fail(const char *what) {
    fprintf(stderr, "fuzz_schema: %s\n", what);
    abort();
}

static void fuzz_init(void) {
    gb_buf b = {0};
    chatd_error err = {{0}};
    if (gb_byte_vocab(&b, fuzz_extra, FUZZ_N_EXTRA) < 0) fuzz_fail("no memory for the vocabulary");
    gguf_file *f = gguf_open_memory(b.data, b.len, &err);
    fuzz_tok = f ? tok_load(f, &err) : NULL;
    if (f) gguf_close(f);
    gb_free(&b);
    fuzz_cv = fuzz_tok ? cons_vocab_new(fuzz_tok, &err) : NULL;
    if (!fuzz_cv) fuzz_fail(err.msg);
}

/* Steers one generation through program p with the choice bytes. */
static void fuzz_generate(cons_program *p, const uint8_t *choice, size_t n_choice) {
    chatd_error err = {{0}};
    cons_matcher *m = cons_matcher_new(p, &err);
    if (!m) fuzz_fail(err.msg);
    size_t words = cons_mask_words(m);
    uint32_t *mask = malloc(words * sizeof *mask);
    if (!mask) fuzz_fail("no memory");
    int64_t budget = 24 + (n_choice ? choice[0] % 64 : 40);
    bool fits = cons_remaining(m) < budget; /* the shortest completion fits in bytes */
    bool ended = false;
    for (int64_t step = 0; step < budget && !cons_finished(m); step++) {
        int64_t n = cons_allowed(m, budget - step, mask);
        if (n < 0) fuzz_fail("cons_allowed failed");
        if (n == 0) fuzz_fail("nothing allowed before the output finished");
        uint8_t c = n_choice > 1 ? choice[1 + (size_t)step % (n_choice - 1)] : (uint8_t)step;
        int32_t id = cons_mask_nth(mask, words, c % n);
        if (cons_advance(m, id) != 0) fuzz_fail("an allowed token was refused");
        if (tok_is_eog(fuzz_tok, id)) {
            ended = true;
            break;
        }
    }
    if (fits && !ended && !cons_complete(m)) fuzz_fail("the budget did not close the output");
    free(mask);
    cons_matcher_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fuzz_cv) fuzz_init();
    const uint8_t *nul = memchr(data, 0, size);
    size_t schema_len = nul ? (size_t)(nul - data) : size;
    const uint8_t *choice = nul ? nul + 1 : NULL;
    size_t n_choice = nul ? size - schema_len - 1 : 0;
    cJSON *schema = cJSON_ParseWithLength((const char *)data, schema_len);
    if (!schema) return 0;
    chatd_error err = {{0}};
    cons_grammar *g = cons_grammar_new(&err);
    if (!g) fuzz_fail(err.msg);
    api_error aerr;
    memset(&aerr, 0, sizeof aerr);
    cons_node root = schema_to_grammar(g, schema, "schema", &aerr);
    cJSON_Delete(schema);
    if (root < 0) {
        if (aerr.status != 400 || !aerr.message[0]) fuzz_fail("a refusal without a 400 message");
        cons_grammar_free(g);
        return 0;
    }
    if (n_choice && choice[0] & 0x80) { /* behind a thinking block, as reasoning models write */
        cons_node seq[] = {cons_text(g, "<think>", 7), cons_until(g, "</think>"), cons_ws(g), root};
        root = cons_seq(g, seq, 4);
    }
    cons_program *p = cons_compile(g, root, fuzz_cv, &err);
    cons_grammar_free(g);
    if (!p) {
        if (!err.msg[0]) fuzz_fail("a compile error without a message");
        return 0;
    }
    fuzz_generate(p, choice, n_choice);
    cons_program_release(p);
    return 0;
}
