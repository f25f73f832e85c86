/* test_tokenizer_unit.c - the tokenizer on small vocabularies built in memory, for the
 * paths the real models never take: a merge whose result is not a token, duplicate merge
 * lines, duplicate and empty token texts, missing byte tokens, bad special ids, unknown
 * tokenizer kinds, and the priority rules of special-token matching. Needs no files. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "chatd/gguf.h"
#include "chatd/tokenizer.h"
#include "gguf_builder.h"

enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };

/* A vocab-only GGUF image under construction: key/values are counted as they go. */
typedef struct img {
    gb_buf b;
    size_t n_kv_at;
    uint64_t n_kv;
} img;

static void img_start(img *m) {
    memset(m, 0, sizeof *m);
    gb_u32(&m->b, 0x46554747u);
    gb_u32(&m->b, 3);
    gb_u64(&m->b, 0); /* tensors */
    m->n_kv_at = m->b.len;
    gb_u64(&m->b, 0);
}

static void kv_str(img *m, const char *key, const char *v) {
    gb_str(&m->b, key);
    gb_u32(&m->b, T_STR);
    gb_str(&m->b, v);
    m->n_kv++;
}

static void kv_u32(img *m, const char *key, uint32_t v) {
    gb_str(&m->b, key);
    gb_u32(&m->b, T_U32);
    gb_u32(&m->b, v);
    m->n_kv++;
}

static void kv_bool(img *m, const char *key, bool v) {
    gb_str(&m->b, key);
    gb_u32(&m->b, T_BOOL);
    gb_u8(&m->b, v ? 1 : 0);
    m->n_kv++;
}

static void kv_strs(img *m, const char *key, const char *const *v, size_t n) {
    gb_str(&m->b, key);
    gb_u32(&m->b, T_ARR);
    gb_u32(&m->b, T_STR);
    gb_u64(&m->b, n);
    for (size_t i = 0; i < n; i++) gb_str(&m->b, v[i]);
    m->n_kv++;
}

static void kv_i32s(img *m, const char *key, const int32_t *v, size_t n) {
    gb_str(&m->b, key);
    gb_u32(&m->b, T_ARR);
    gb_u32(&m->b, T_I32);
    gb_u64(&m->b, n);
    for (size_t i = 0; i < n; i++) gb_u32(&m->b, (uint32_t)v[i]);
    m->n_kv++;
}

static void kv_f32s(img *m, const char *key, const float *v, size_t n) {
    gb_str(&m->b, key);
    gb_u32(&m->b, T_ARR);
    gb_u32(&m->b, T_F32);
    gb_u64(&m->b, n);
    for (size_t i = 0; i < n; i++) gb_f32(&m->b, v[i]);
    m->n_kv++;
}

/* Loads the image; NULL (with the message in err) when the tokenizer is refused. */
static tok_vocab *img_load(img *m, chatd_error *err) {
    gb_put_u64(&m->b, m->n_kv_at, m->n_kv);
    gguf_file *f = gguf_open_memory(m->b.data, m->b.len, err);
    TU_CHECK(f != NULL, "gguf_open_memory: %s", err->msg);
    if (!f) return NULL;
    tok_vocab *v = tok_load(f, err);
    gguf_close(f);
    return v;
}

static void check_encode(const tok_vocab *v, const char *text, bool parse_special,
                         const int32_t *want, size_t n_want) {
    tok_ids ids = {0};
    chatd_error err = {{0}};
    TU_CHECK(tok_encode(v, text, strlen(text), false, parse_special, &ids, &err) == 0, "encode: %s",
             err.msg);
    bool same = ids.n == n_want && (!n_want || memcmp(ids.v, want, n_want * sizeof *want) == 0);
    TU_CHECK(same, "'%s': got %zu ids (first %d), want %zu", text, ids.n, ids.n ? ids.v[0] : -1,
             n_want);
    tok_ids_free(&ids);
}

/* A byte-level BPE vocab: the 256 byte tokens, then extra tokens, with merges. */
static tok_vocab *bpe_vocab(const char *const *extra, const int32_t *extra_types, size_t n_extra,
                            const char *const *merges, size_t n_merges, chatd_error *err) {
    static char bytes[256][4];
    const char *toks[256 + 16];
    int32_t types[256 + 16];
    for (unsigned b = 0; b < 256; b++) {
        gb_byte_text(b, bytes[b]);
        toks[b] = bytes[b];
        types[b] = 1;
    }
    for (size_t i = 0; i < n_extra; i++) {
        toks[256 + i] = extra[i];
        types[256 + i] = extra_types ? extra_types[i] : 1;
    }
    img m;
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "gpt2");
    kv_str(&m, "tokenizer.ggml.pre", "qwen2");
    kv_strs(&m, "tokenizer.ggml.tokens", toks, 256 + n_extra);
    kv_i32s(&m, "tokenizer.ggml.token_type", types, 256 + n_extra);
    kv_strs(&m, "tokenizer.ggml.merges", merges, n_merges);
    kv_u32(&m, "tokenizer.ggml.eos_token_id", 0);
    kv_u32(&m, "tokenizer.ggml.bos_token_id", 0);
    tok_vocab *v = img_load(&m, err);
    gb_free(&m.b);
    return v;
}

static void test_bpe_merges(void) {
    chatd_error err = {{0}};
    /* "a b" makes "ab", which is not a token; "ab c" then makes the token "abc". The second
     * "a b" line must not change the first one's rank. */
    static const char *const extra[] = {"abc", "xy", "x y"};
    static const char *const merges[] = {"a b", "ab c", "x y", "a b", "b c"};
    tu_case("unit bpe: merges through a non-token");
    tok_vocab *v = bpe_vocab(extra, NULL, 3, merges, 5, &err);
    TU_CHECK(v != NULL, "tok_load: %s", err.msg);
    if (!v) return;
    int32_t abc = 256, xy = 257;
    check_encode(v, "abc", false, &abc, 1);
    check_encode(v, "xy", false, &xy, 1);
    /* "ab" stays a non-token symbol: llama.cpp spells it byte by byte */
    int32_t ab[2] = {'a', 'b'};
    check_encode(v, "ab", false, ab, 2);
    /* a word seen twice in one call comes from the cache the second time */
    tu_case("unit bpe: cached words");
    check_encode(v, "abc abc abc", false, (int32_t[]){abc, ' ', abc, ' ', abc}, 5);
    check_encode(v, "abcabc-abcabc", false, (int32_t[]){abc, abc, '-', abc, abc}, 5);
    tok_free(v);
}

static void test_special_priority(void) {
    chatd_error err = {{0}};
    /* USER_DEFINED "ab" and "abc" overlap; longer texts are cut out first. CONTROL "<x>"
     * is text unless special parsing is on. */
    static const char *const extra[] = {"ab", "abc", "<x>"};
    static const int32_t types[] = {4, 4, 3};
    tu_case("unit special: priorities");
    tok_vocab *v = bpe_vocab(extra, types, 3, NULL, 0, &err);
    TU_CHECK(v != NULL, "tok_load: %s", err.msg);
    if (!v) return;
    int32_t ab = 256, abc = 257, x = 258;
    int32_t want1[] = {abc, ab, '<', 'x', '>'};
    check_encode(v, "abcab<x>", false, want1, 5);
    int32_t want2[] = {abc, ab, x};
    check_encode(v, "abcab<x>", true, want2, 3);
    int32_t want3[] = {'a', abc};
    check_encode(v, "aabc", true, want3, 2);
    tu_case("unit special: pieces and decode");
    size_t len;
    const char *p = tok_piece(v, x, false, &len);
    TU_CHECK(p && len == 0, "a CONTROL piece is hidden without special");
    p = tok_piece(v, x, true, &len);
    TU_CHECK(p && len == 3 && memcmp(p, "<x>", 3) == 0, "a CONTROL piece is its text");
    tok_buf out = {0};
    TU_CHECK(tok_decode(v, want2, 3, 0, &out, &err) == 0 && strcmp(out.data, "abcab") == 0,
             "decode without specials");
    TU_CHECK(tok_decode(v, (int32_t[]){-1}, 1, 0, &out, &err) != 0, "negative id accepted");
    tok_buf_free(&out);
    tok_free(v);
}

static void test_refusals(void) {
    chatd_error err = {{0}};
    img m;

    tu_case("unit refuse: unknown tokenizer model");
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "bert");
    kv_strs(&m, "tokenizer.ggml.tokens", (const char *const[]){"a", "b"}, 2);
    TU_CHECK(img_load(&m, &err) == NULL && strstr(err.msg, "bert"), "accepted: %s", err.msg);
    gb_free(&m.b);

    tu_case("unit refuse: unknown pre-tokenizer");
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "gpt2");
    kv_str(&m, "tokenizer.ggml.pre", "no-such-pre");
    kv_strs(&m, "tokenizer.ggml.tokens", (const char *const[]){"a", "b"}, 2);
    kv_strs(&m, "tokenizer.ggml.merges", (const char *const[]){"a b"}, 1);
    TU_CHECK(img_load(&m, &err) == NULL && strstr(err.msg, "no-such-pre"), "accepted: %s", err.msg);
    gb_free(&m.b);

    tu_case("unit refuse: BPE without merges");
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "gpt2");
    kv_str(&m, "tokenizer.ggml.pre", "llama-bpe");
    kv_strs(&m, "tokenizer.ggml.tokens", (const char *const[]){"a", "b"}, 2);
    TU_CHECK(img_load(&m, &err) == NULL && strstr(err.msg, "merges"), "accepted: %s", err.msg);
    gb_free(&m.b);

    tu_case("unit refuse: duplicate token text");
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "llama");
    kv_strs(&m, "tokenizer.ggml.tokens", (const char *const[]){"<unk>", "<s>", "</s>", "a", "a"},
            5);
    TU_CHECK(img_load(&m, &err) == NULL && strstr(err.msg, "duplicate"), "accepted: %s", err.msg);
    gb_free(&m.b);

    tu_case("unit refuse: add_bos without a BOS id");
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "gpt2");
    kv_str(&m, "tokenizer.ggml.pre", "qwen2");
    kv_strs(&m, "tokenizer.ggml.tokens", (const char *const[]){"a", "b"}, 2);
    kv_strs(&m, "tokenizer.ggml.merges", (const char *const[]){"a b"}, 1);
    kv_bool(&m, "tokenizer.ggml.add_bos_token", true);
    TU_CHECK(img_load(&m, &err) == NULL && strstr(err.msg, "bos"), "accepted: %s", err.msg);
    gb_free(&m.b);

    tu_case("unit refuse: no tokens");
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "llama");
    TU_CHECK(img_load(&m, &err) == NULL, "accepted a vocab without tokens");
    gb_free(&m.b);
}

static void test_spm_small(void) {
    chatd_error err = {{0}};
    /* no byte tokens: text outside the vocab cannot be spelled (llama.cpp throws) */
    static const char *const toks[] = {"<unk>", "<s>", "</s>",          "\xE2\x96\x81",
                                       "a",     "b",   "\342\226\201a", /* U+2581 then 'a' */
                                       "ab",    ""};
    static const float scores[] = {0, 0, 0, -1, -2, -3, -1.5f, -0.5f, -9};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1};
    img m;
    img_start(&m);
    kv_str(&m, "tokenizer.ggml.model", "llama");
    kv_strs(&m, "tokenizer.ggml.tokens", toks, 9);
    kv_f32s(&m, "tokenizer.ggml.scores", scores, 9);
    kv_i32s(&m, "tokenizer.ggml.token_type", types, 9);
    kv_u32(&m, "tokenizer.ggml.bos_token_id", 99); /* out of range: the default 1 stays */
    tu_case("unit spm: load");
    tok_vocab *v = img_load(&m, &err);
    gb_free(&m.b);
    TU_CHECK(v != NULL, "tok_load: %s", err.msg);
    if (!v) return;
    TU_CHECK(tok_bos(v) == 1 && tok_eos(v) == 2 && tok_unk(v) == 0, "special ids");
    size_t len;
    const char *t = tok_text(v, 8, &len);
    TU_CHECK(t && len == 9 && memcmp(t, "[EMPTY_8]", 9) == 0, "empty text is '[EMPTY_8]'");

    tu_case("unit spm: merges by score");
    /* "▁ab": "ab" (-0.5) beats "▁a" (-1.5), so ▁ + ab */
    int32_t want[] = {3, 7};
    check_encode(v, "ab", false, want, 2);
    tok_ids ids = {0};
    TU_CHECK(tok_encode(v, "ab", 2, true, false, &ids, &err) == 0 && ids.n == 3 && ids.v[0] == 1,
             "BOS added");
    tu_case("unit spm: missing byte token");
    ids.n = 0;
    TU_CHECK(tok_encode(v, "abz", 3, false, false, &ids, &err) != 0 && strstr(err.msg, "0x7A"),
             "spelled 'z' without a byte token: %s", err.msg);
    TU_CHECK(ids.n == 0, "a failed call leaves the output as it was");
    tu_case("unit spm: <unk> only with special parsing");
    int32_t unk[] = {0};
    check_encode(v, "<unk>", true, unk, 1);
    tok_ids_free(&ids);
    tok_free(v);
}

int main(void) {
    test_bpe_merges();
    test_special_priority();
    test_refusals();
    test_spm_small();
    return tu_finish();
}
