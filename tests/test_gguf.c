/* test_gguf.c - the GGUF reader on a small model built in memory: a valid file loads
 * with the right metadata, and every kind of hostile file is refused with a message
 * (wrong magic or version, absurd counts, strings without bytes, bad shapes, offsets
 * past the end, misaligned and overlapping tensors, unsupported types, truncation at
 * every byte, random corruption). Each image is copied into an allocation of its exact
 * size so AddressSanitizer sees any read past the end. */
#include <stdlib.h>
#include <string.h>

#include "chatd/gguf.h"
#include "chatd/model.h"
#include "gguf_builder.h"
#include "testutil.h"

/* Opens an exact-size copy of an image as a model; returns 0 when accepted. */
static int open_copy(const uint8_t *data, size_t len, chatd_error *err) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    if (len) memcpy(copy, data, len);
    err->msg[0] = 0;
    int rc = -1;
    gguf_file *f = gguf_open_memory(copy, len, err);
    if (f) {
        model *m = model_from_gguf(f, err);
        if (m) rc = 0;
        model_close(m);
    }
    free(copy);
    return rc;
}

/* A mutation of the valid image must be refused with a message containing want. */
static void expect_refused(const char *name, gb_buf *b, const char *want) {
    tu_case("hostile/%s", name);
    chatd_error err = {{0}};
    int rc = open_copy(b->data, b->len, &err);
    TU_CHECK(rc != 0, "accepted a hostile file");
    TU_CHECK(err.msg[0] != 0, "refused without a message");
    TU_CHECK(!want || strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
}

static void test_valid(void) {
    gb_buf b = {0};
    gb_layout lay;
    gb_tiny_model(&b, &lay);
    tu_case("valid/opens");
    chatd_error err = {{0}};
    gguf_file *f = gguf_open_memory(b.data, b.len, &err);
    TU_CHECK(f != NULL, "valid file refused: %s", err.msg);
    if (f) {
        TU_CHECK(f->version == 3, "version %u", f->version);
        TU_CHECK(f->n_kv == 14 && f->n_tensors == 11, "counts %llu %llu",
                 (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
        TU_CHECK(f->data_offset == lay.data_offset, "data offset %llu != %zu",
                 (unsigned long long)f->data_offset, lay.data_offset);
        gguf_str s;
        TU_CHECK(gguf_get_str(f, "general.name", &s, &err) == 0 &&
                     gguf_str_eq(s, "tiny test model"),
                 "general.name");
        int64_t v;
        TU_CHECK(gguf_get_int(f, "llama.block_count", &v, &err) == 0 && v == 1, "block_count");
        TU_CHECK(gguf_get_int(f, "no.such.key", &v, &err) != 0 && strstr(err.msg, "missing"),
                 "missing key must be reported");
        TU_CHECK(gguf_get_int(f, "general.name", &v, &err) != 0 && strstr(err.msg, "string"),
                 "type mismatch must be reported: %s", err.msg);
        const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING);
        TU_CHECK(toks && toks->v.arr.n == 8 && gguf_str_eq(toks->v.arr.items[7].v.str, "ab"),
                 "string array");
        const gguf_value *sc = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32);
        TU_CHECK(sc && gguf_arr_float(sc, 3) == -3.0, "float array");
        const gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
        TU_CHECK(t && t->ne[0] == 64 && t->ne[1] == 32 && t->nbytes == 64 * 32 * 4, "tensor");
        TU_CHECK(gguf_find_tensor(f, "blk.0.ffn_down") == NULL, "prefix must not match");
        /* every key can be found through the index */
        for (uint64_t i = 0; i < f->n_kv; i++) {
            char key[128];
            gguf_str_copy(f->kv[i].key, key, sizeof key);
            TU_CHECK(gguf_find(f, key) == &f->kv[i], "lookup of %s", key);
        }
        model *m = model_from_gguf(f, &err);
        TU_CHECK(m != NULL, "model refused: %s", err.msg);
        if (m) {
            TU_CHECK(m->hp.n_embd == 32 && m->hp.n_head == 2 && m->hp.n_head_kv == 1 &&
                         m->hp.head_dim_k == 16 && m->hp.n_ff == 64 && m->hp.n_vocab == 8 &&
                         m->hp.tied_output && m->hp.rope_style == MODEL_ROPE_NORM,
                     "hyperparameters");
        }
        model_close(m);
    }
    gb_free(&b);
}

/* Runs fn on a fresh copy of the valid image and expects it refused. */
#define MUTATE(name, want, stmt)                                                                   \
    do {                                                                                           \
        gb_buf b = {0};                                                                            \
        gb_layout lay;                                                                             \
        gb_tiny_model(&b, &lay);                                                                   \
        stmt;                                                                                      \
        expect_refused(name, &b, want);                                                            \
        gb_free(&b);                                                                               \
    } while (0)

static void test_hostile(void) {
    MUTATE("bad-magic", "magic", b.data[0] = 'X');
    MUTATE("version-1", "version 1", gb_put_u32(&b, lay.version, 1));
    MUTATE("version-4", "version 4", gb_put_u32(&b, lay.version, 4));
    MUTATE("big-endian", "big-endian", gb_put_u32(&b, lay.version, 0x03000000u));
    MUTATE("huge-kv-count", "metadata count", gb_put_u64(&b, lay.n_kv, 1ull << 60));
    MUTATE("huge-tensor-count", "tensor count", gb_put_u64(&b, lay.n_tensors, 1ull << 40));
    MUTATE("key-without-bytes", "length", gb_put_u64(&b, lay.first_key_len, 1ull << 62));
    MUTATE("string-array-past-end", "past the end", gb_put_u64(&b, lay.tokens_count, 1ull << 40));
    MUTATE("too-many-dims", "dimensions", gb_put_u32(&b, lay.first_ndims, 5));
    MUTATE("zero-dims", "dimensions", gb_put_u32(&b, lay.first_ndims, 0));
    MUTATE("zero-size-dim", "dimension", gb_put_u64(&b, lay.first_ne0, 0));
    MUTATE("shape-overflow", "overflow", gb_put_u64(&b, lay.first_ne0, 1ull << 62));
    MUTATE("unknown-type", "type#99", gb_put_u32(&b, lay.first_type, 99));
    MUTATE("unsupported-type", "IQ2_XXS", gb_put_u32(&b, lay.first_type, 16));
    MUTATE("offset-past-end", "past the end", gb_put_u64(&b, lay.first_offset, 1ull << 40));
    MUTATE("misaligned", "aligned", gb_put_u64(&b, lay.first_offset, 4));
    MUTATE("overlap", "overlap", gb_put_u64(&b, lay.second_offset, 32));
    MUTATE("truncated-data", "past the end", b.len -= 1);
    MUTATE("empty", "truncated", b.len = 0);
    MUTATE("bad-alignment", "alignment", {
        /* general.alignment is the third key: find its value and make it 48 */
        uint8_t *p = memmem(b.data, b.len, "general.alignment", 17);
        if (p) gb_put_u32(&b, (size_t)(p - b.data) + 17 + 4, 48);
    });
    MUTATE("wrong-architecture", "architecture 'bloom'", {
        uint8_t *p = memmem(b.data, b.len, "llama", 5); /* the first "llama" is the value */
        if (p) memcpy(p, "bloom", 5);
    });
    MUTATE("missing-tensor", "missing", {
        uint8_t *p = memmem(b.data, b.len, "blk.0.ffn_up.weight", 19);
        if (p) p[6] = 'X';
    });
    MUTATE("wrong-shape", "shape",
           gb_put_u64(&b, lay.first_ne0, 16)); /* token_embd ne0 != n_embd */
    MUTATE("duplicate-key", "duplicate", {
        uint8_t *p = memmem(b.data, b.len, "tokenizer.ggml.model", 20); /* same length */
        if (p) memcpy(p, "general.architecture", 20);
    });
}

/* Builds a file whose only metadata is one deeply nested array. */
static void test_nesting(void) {
    gb_buf b = {0};
    gb_u32(&b, 0x46554747u);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    gb_u64(&b, 1);
    gb_str(&b, "deep");
    gb_u32(&b, 9);
    for (int i = 0; i < 100; i++) {
        gb_u32(&b, 9);
        gb_u64(&b, 1);
    }
    gb_u32(&b, 4);
    gb_u64(&b, 0);
    tu_case("hostile/deep-nesting");
    chatd_error err = {{0}};
    gguf_file *f = gguf_open_memory(b.data, b.len, &err);
    TU_CHECK(!f && strstr(err.msg, "nested"), "deep nesting: %s", err.msg);
    gguf_close(f);
    gb_free(&b);

    /* two levels of nesting are legal GGUF */
    gb_buf c = {0};
    gb_u32(&c, 0x46554747u);
    gb_u32(&c, 2);
    gb_u64(&c, 0);
    gb_u64(&c, 1);
    gb_str(&c, "nested");
    gb_u32(&c, 9);
    gb_u32(&c, 9); /* array of arrays */
    gb_u64(&c, 2);
    for (int i = 0; i < 2; i++) {
        gb_u32(&c, 8); /* of strings */
        gb_u64(&c, 1);
        gb_str(&c, i ? "y" : "x");
    }
    tu_case("valid/nested-array-v2");
    f = gguf_open_memory(c.data, c.len, &err);
    TU_CHECK(f != NULL, "nested arrays refused: %s", err.msg);
    if (f) {
        const gguf_kv *kv = gguf_find(f, "nested");
        TU_CHECK(kv && kv->value.v.arr.n == 2 &&
                     gguf_str_eq(kv->value.v.arr.items[1].v.arr.items[0].v.str, "y"),
                 "nested value");
    }
    gguf_close(f);
    gb_free(&c);
}

static void test_truncation_every_byte(void) {
    gb_buf b = {0};
    gb_layout lay;
    gb_tiny_model(&b, &lay);
    tu_case("truncated/every-byte");
    int accepted = 0;
    for (size_t n = 0; n < b.len; n++) {
        chatd_error err = {{0}};
        if (open_copy(b.data, n, &err) == 0) {
            accepted++;
            TU_CHECK(0, "accepted a copy truncated to %zu of %zu bytes", n, b.len);
        } else if (!err.msg[0]) {
            TU_CHECK(0, "truncation to %zu refused without a message", n);
        }
        if (accepted > 3) break;
    }
    gb_free(&b);
}

/* xorshift: a fixed-seed generator so failures reproduce. */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_corruption(void) {
    gb_buf b = {0};
    gb_layout lay;
    gb_tiny_model(&b, &lay);
    tu_case("corrupted/random-header-bytes");
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int refused = 0, accepted = 0;
    for (int it = 0; it < 20000; it++) {
        uint8_t *copy = malloc(b.len);
        if (!copy) break;
        memcpy(copy, b.data, b.len);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = rng_next(&seed) % lay.data_offset;
            copy[at] = (uint8_t)rng_next(&seed);
        }
        chatd_error err = {{0}};
        if (open_copy(copy, b.len, &err) == 0)
            accepted++;
        else {
            refused++;
            TU_CHECK(err.msg[0], "refused without a message");
        }
        free(copy);
    }
    printf("random corruption: %d refused, %d still valid\n", refused, accepted);
    TU_CHECK(refused > 1000, "only %d of 20000 corruptions refused", refused);
    gb_free(&b);
}

int main(void) {
    test_valid();
    test_hostile();
    test_nesting();
    test_truncation_every_byte();
    test_random_corruption();
    return tu_finish();
}
