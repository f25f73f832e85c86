/* test_tokenizer_prop.c - properties every tokenizer must keep on any input, checked on
 * random inputs for each tokenizer family (SPM 512, SPM 32000, Qwen2, Qwen3, R1-Qwen,
 * Llama 3):
 *   - random bytes (invalid UTF-8 included) never crash, give in-range ids, and the
 *     streaming decoder turns them into valid UTF-8;
 *   - for random valid UTF-8, decode(encode(s)) == s (SentencePiece: after dropping the
 *     leading space it adds), and the stream decoder gives the same text;
 *   - one vocab used from several threads at once gives the same ids as from one.
 * The generator is seeded, so a failure names a reproducible case:
 * `test_tokenizer_prop [ITERATIONS [SEED]]`. */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/gguf.h"
#include "chatd/tokenizer.h"

static uint64_t rng_state;

static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) {
    return (uint32_t)(rnd() % n);
}

/* Strict UTF-8 validity (no overlong forms, surrogates or values above U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t need;
        uint32_t min;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 2;
            min = 0x80;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 3;
            min = 0x800;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (i + need > n) return false;
        uint32_t c = b & (0x7F >> need);
        for (size_t k = 1; k < need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += need;
    }
    return true;
}

static size_t put_utf8(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Random bytes, biased towards what tokenizers branch on. */
static size_t random_bytes(char *out, size_t max) {
    size_t n = below((uint32_t)max);
    static const char interesting[] =
        "<|>' \n\r\t0123456789aZ\x80\xBF\xC0\xC1\xC3\xE2\xED\xF0\xF4\xF5\xFF";
    for (size_t i = 0; i < n; i++)
        out[i] = below(3) ? (char)below(256) : interesting[below(sizeof interesting - 1)];
    return n;
}

/* A random code point from pools that exercise every class the splitters know. */
static uint32_t random_cpt(bool spm) {
    static const uint32_t spaces[] = {' ',    '\t',   '\n',   '\r',   0x0B,   0x0C,
                                      0x85,   0xA0,   0x1680, 0x2000, 0x200A, 0x2028,
                                      0x2029, 0x202F, 0x205F, 0x3000};
    for (;;) {
        uint32_t c;
        switch (below(12)) {
        case 0:
            c = 0x20 + below(0x5F);
            break; /* printable ASCII */
        case 1:
            c = spaces[below(sizeof spaces / sizeof spaces[0])];
            break;
        case 2:
            c = '0' + below(10);
            break;
        case 3:
            c = "'sStTmMdDrReEvVlL"[below(17)];
            break; /* contractions */
        case 4:
            c = 0xC0 + below(0x180);
            break; /* Latin */
        case 5:
            c = 0x370 + below(0x200);
            break; /* Greek, Cyrillic */
        case 6:
            c = 0x4E00 + below(0x5200);
            break; /* CJK */
        case 7:
            c = 0xAC00 + below(0x2BA4);
            break; /* Hangul */
        case 8:
            c = 0x1F300 + below(0x700);
            break; /* emoji */
        case 9:
            c = below(2) ? 0x300 + below(0x70) : 0x200D;
            break; /* marks, ZWJ */
        case 10:
            c = below(0x20);
            break; /* controls */
        default:
            c = below(0x110000);
            break; /* anything, unassigned too */
        }
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        if (c == 0) continue; /* keeps the test strings printable in failure reports */
        /* U+2581 is SentencePiece's escaped space: the reference decodes it as ' ' */
        if (spm && c == 0x2581) continue;
        return c;
    }
}

static size_t random_text(char *out, size_t max_cpts, bool spm, const tok_vocab *v) {
    size_t n = below((uint32_t)max_cpts), w = 0;
    for (size_t i = 0; i < n; i++) {
        if (below(20) == 0) {
            /* now and then the text of a special token */
            int32_t id = (int32_t)below((uint32_t)tok_n_vocab(v));
            uint32_t a = tok_attr(v, id);
            if (a & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
                size_t len;
                const char *t = tok_text(v, id, &len);
                if (len < 64 && valid_utf8((const unsigned char *)t, len) &&
                    !(spm && memmem(t, len, "\xE2\x96\x81", 3))) {
                    memcpy(out + w, t, len);
                    w += len;
                    continue;
                }
            }
        }
        w += put_utf8(random_cpt(spm), out + w);
    }
    return w;
}

static const char *hex(const char *s, size_t n) {
    static char buf[400];
    size_t w = 0;
    for (size_t i = 0; i < n && w + 4 < sizeof buf; i++)
        w += (size_t)snprintf(buf + w, sizeof buf - w, "%02x", (unsigned char)s[i]);
    buf[w] = '\0';
    return buf;
}

static void stream_all(const tok_vocab *v, const tok_ids *ids, tok_buf *out) {
    tok_stream st;
    chatd_error err;
    tok_stream_init(&st, v, true);
    out->len = 0;
    for (size_t i = 0; i < ids->n; i++)
        TU_CHECK(tok_stream_push(&st, ids->v[i], out, &err) == 0, "push");
    TU_CHECK(tok_stream_flush(&st, out, &err) == 0, "flush");
}

static void run_bytes(const char *name, const tok_vocab *v, int iters) {
    char *s = malloc(4096);
    tok_ids ids = {0};
    tok_buf out = {0};
    chatd_error err;
    for (int it = 0; it < iters; it++) {
        size_t n = random_bytes(s, 400);
        tu_case("%s random bytes #%d %s", name, it, hex(s, n));
        for (int mode = 0; mode < 3; mode++) {
            ids.n = 0;
            bool add = mode == 2, parse = mode != 0;
            TU_CHECK(tok_encode(v, s, n, add, parse, &ids, &err) == 0, "encode: %s", err.msg);
            for (size_t i = 0; i < ids.n; i++)
                TU_CHECK(ids.v[i] >= 0 && ids.v[i] < tok_n_vocab(v), "id %d out of range",
                         ids.v[i]);
            out.len = 0;
            TU_CHECK(
                tok_decode(v, ids.v, ids.n, TOK_DECODE_SPECIAL | TOK_DECODE_LLAMA, &out, &err) == 0,
                "decode: %s", err.msg);
            stream_all(v, &ids, &out);
            TU_CHECK(valid_utf8((const unsigned char *)out.data, out.len),
                     "stream gave invalid UTF-8");
        }
    }
    free(s);
    tok_ids_free(&ids);
    tok_buf_free(&out);
}

static void run_text(const char *name, const tok_vocab *v, int iters) {
    bool spm = tok_vocab_kind(v) == TOK_KIND_SPM;
    char *s = malloc(200 * 64 + 64);
    tok_ids ids = {0};
    tok_buf out = {0}, st = {0};
    chatd_error err;
    for (int it = 0; it < iters; it++) {
        size_t n = random_text(s, 200, spm, v);
        tu_case("%s random text #%d %s", name, it, hex(s, n));
        /* special parsing splits SentencePiece text into separately prefixed pieces, so
         * only byte-level BPE round-trips with it */
        for (int parse = 0; parse < (spm ? 1 : 2); parse++) {
            ids.n = 0;
            TU_CHECK(tok_encode(v, s, n, false, parse, &ids, &err) == 0, "encode: %s", err.msg);
            out.len = 0;
            unsigned flags = TOK_DECODE_SPECIAL | (spm ? TOK_DECODE_STRIP_PREFIX : 0);
            TU_CHECK(tok_decode(v, ids.v, ids.n, flags, &out, &err) == 0, "decode: %s", err.msg);
            TU_CHECK(out.len == n && memcmp(out.data, s, n) == 0,
                     "decode(encode(s)) != s (parse_special %d): got %s", parse,
                     hex(out.data, out.len));
            /* the stream gives the same text as one-shot decoding, prefix space and all */
            out.len = 0;
            TU_CHECK(tok_decode(v, ids.v, ids.n, TOK_DECODE_SPECIAL, &out, &err) == 0, "decode");
            stream_all(v, &ids, &st);
            TU_CHECK(st.len == out.len && memcmp(st.data, out.data, out.len) == 0,
                     "stream differs from decode");
        }
    }
    free(s);
    tok_ids_free(&ids);
    tok_buf_free(&out);
    tok_buf_free(&st);
}

/* ---- threads ---- */

#define N_SHARED  40
#define N_THREADS 4

typedef struct shared_work {
    const tok_vocab *v;
    char *text[N_SHARED];
    size_t len[N_SHARED];
    tok_ids want[N_SHARED];
    int mismatches;
} shared_work;

static void *thread_main(void *p) {
    shared_work *w = p;
    tok_ids ids = {0};
    chatd_error err;
    int bad = 0;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N_SHARED; i++) {
            ids.n = 0;
            if (tok_encode(w->v, w->text[i], w->len[i], true, true, &ids, &err) != 0 ||
                ids.n != w->want[i].n ||
                (ids.n && memcmp(ids.v, w->want[i].v, ids.n * sizeof *ids.v) != 0))
                bad++;
        }
    tok_ids_free(&ids);
    return (void *)(intptr_t)bad;
}

static void run_threads(const char *name, const tok_vocab *v) {
    tu_case("%s shared by %d threads", name, N_THREADS);
    shared_work w = {.v = v};
    chatd_error err;
    bool spm = tok_vocab_kind(v) == TOK_KIND_SPM;
    for (int i = 0; i < N_SHARED; i++) {
        w.text[i] = malloc(300 * 64);
        w.len[i] = random_text(w.text[i], 300, spm, v);
        TU_CHECK(tok_encode(v, w.text[i], w.len[i], true, true, &w.want[i], &err) == 0, "encode");
    }
    pthread_t th[N_THREADS];
    int started = 0;
    for (int t = 0; t < N_THREADS; t++)
        if (pthread_create(&th[t], NULL, thread_main, &w) == 0) started++;
    intptr_t bad = 0;
    for (int t = 0; t < started; t++) {
        void *r;
        pthread_join(th[t], &r);
        bad += (intptr_t)r;
    }
    TU_CHECK(started == N_THREADS, "only %d threads started", started);
    TU_CHECK(bad == 0, "%ld encodings differed between threads", (long)bad);
    for (int i = 0; i < N_SHARED; i++) {
        free(w.text[i]);
        tok_ids_free(&w.want[i]);
    }
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 150;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : 20240601;
    const char *shared = tu_shared_dir();
    static const char *models[] = {"stories260K",
                                   "llama-spm-tiny-f32",
                                   "qwen2-tiny-q8_0",
                                   "qwen3-tiny-q8_0",
                                   "r1-qwen-tiny-q4_0",
                                   "llama3-tiny-q6_k",
                                   NULL};
    char path[1024];
    for (int m = 0; models[m] || m < 7; m++) {
        const char *name;
        if (models[m]) {
            char file[256];
            snprintf(file, sizeof file, "%s.gguf", models[m]);
            snprintf(path, sizeof path, "%s", tu_model_path(file));
            name = models[m];
        } else {
            /* the vocab-only LLaMA SentencePiece file llama.cpp ships for its own tests */
            snprintf(path, sizeof path, "%s/models/tokenizers/llama-spm/ggml-vocab-llama-spm.gguf",
                     shared);
            name = "ggml-vocab-llama-spm";
        }
        chatd_error err = {{0}};
        tu_case("%s load", name);
        gguf_file *f = gguf_open(path, &err);
        TU_CHECK(f != NULL, "gguf_open(%s): %s", path, err.msg);
        if (!f) continue;
        tok_vocab *v = tok_load(f, &err);
        gguf_close(f);
        TU_CHECK(v != NULL, "tok_load: %s", err.msg);
        if (!v) continue;
        run_bytes(name, v, iters);
        run_text(name, v, iters);
        run_threads(name, v);
        tok_free(v);
        if (!models[m]) break;
    }
    return tu_finish();
}
