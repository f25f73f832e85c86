/* bench_tokenizer.c - encoding throughput of the tokenizers, one thread, in MB/s.
 *
 * `bench_tokenizer [MODELS_DIR]` (default $CHATD_MODELS_DIR) encodes 1 MB each of English
 * prose, Chinese and C source code with the Qwen (qwen2-tiny-q8_0), Llama 3
 * (llama3-tiny-q6_k) and, for comparison, Llama 2 SentencePiece (llama-spm-tiny-f32)
 * tokenizers. The texts are generated here from a fixed seed, so every run measures the
 * same bytes. Each figure is the best of several runs, as one 1 MB call and as 4 KB calls
 * (chat-message sized, where the per-call word cache has less to reuse). Prints figures;
 * never passes or fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chatd/gguf.h"
#include "chatd/tokenizer.h"

#define TEXT_BYTES (1u << 20)

static uint64_t rng = 42;

static uint32_t below(uint32_t n) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

typedef struct text {
    char *s;
    size_t n;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->n + n > TEXT_BYTES) return;
    memcpy(t->s + t->n, s, n);
    t->n += n;
}

static void puts_(text *t, const char *s) {
    put(t, s, strlen(s));
}

static const char *const english[] = {"the",
                                      "of",
                                      "and",
                                      "to",
                                      "in",
                                      "a",
                                      "is",
                                      "that",
                                      "for",
                                      "it",
                                      "as",
                                      "was",
                                      "with",
                                      "be",
                                      "by",
                                      "on",
                                      "not",
                                      "he",
                                      "this",
                                      "are",
                                      "or",
                                      "his",
                                      "from",
                                      "at",
                                      "which",
                                      "but",
                                      "have",
                                      "an",
                                      "had",
                                      "they",
                                      "you",
                                      "were",
                                      "their",
                                      "one",
                                      "all",
                                      "we",
                                      "can",
                                      "her",
                                      "has",
                                      "there",
                                      "been",
                                      "if",
                                      "more",
                                      "when",
                                      "will",
                                      "would",
                                      "who",
                                      "so",
                                      "no",
                                      "time",
                                      "people",
                                      "year",
                                      "way",
                                      "day",
                                      "man",
                                      "thing",
                                      "woman",
                                      "life",
                                      "child",
                                      "world",
                                      "school",
                                      "state",
                                      "family",
                                      "student",
                                      "group",
                                      "country",
                                      "problem",
                                      "hand",
                                      "part",
                                      "place",
                                      "case",
                                      "week",
                                      "company",
                                      "system",
                                      "program",
                                      "question",
                                      "work",
                                      "government",
                                      "number",
                                      "night",
                                      "point",
                                      "home",
                                      "water",
                                      "room",
                                      "mother",
                                      "area",
                                      "money",
                                      "story",
                                      "fact",
                                      "month",
                                      "lot",
                                      "right",
                                      "study",
                                      "book",
                                      "eye",
                                      "job",
                                      "word",
                                      "business",
                                      "issue",
                                      "side",
                                      "kind",
                                      "head",
                                      "house",
                                      "service",
                                      "friend",
                                      "father",
                                      "power",
                                      "hour",
                                      "game",
                                      "line",
                                      "end",
                                      "member",
                                      "law",
                                      "car",
                                      "city",
                                      "community",
                                      "name",
                                      "president",
                                      "team",
                                      "minute",
                                      "idea",
                                      "kid",
                                      "body",
                                      "information",
                                      "back",
                                      "parent",
                                      "face",
                                      "others",
                                      "level",
                                      "office",
                                      "door",
                                      "health",
                                      "person",
                                      "art",
                                      "war",
                                      "history",
                                      "party",
                                      "result",
                                      "change",
                                      "morning",
                                      "reason",
                                      "research",
                                      "girl",
                                      "guy",
                                      "moment",
                                      "air",
                                      "teacher",
                                      "force",
                                      "education",
                                      "said",
                                      "made",
                                      "found",
                                      "thought",
                                      "walked",
                                      "remembered",
                                      "quietly",
                                      "beautiful",
                                      "extraordinary",
                                      "understanding",
                                      "nevertheless",
                                      "although",
                                      "because",
                                      "don't",
                                      "it's",
                                      "wasn't",
                                      "they'll",
                                      "we've",
                                      "I'm",
                                      "she'd",
                                      "1984",
                                      "42",
                                      "3.5"};

static void gen_english(text *t) {
    while (t->n < TEXT_BYTES - 64) {
        int words = 6 + (int)below(20);
        for (int i = 0; i < words; i++) {
            const char *w = english[below(sizeof english / sizeof english[0])];
            char buf[64];
            snprintf(buf, sizeof buf, "%s%s", i ? " " : "", w);
            if (i == 0 && buf[0] >= 'a' && buf[0] <= 'z') buf[0] = (char)(buf[0] - 32);
            puts_(t, buf);
            if (i + 1 < words && below(9) == 0) puts_(t, ",");
        }
        static const char *const ends[] = {". ", ". ", ". ", "? ", "! ", ".\n\n", "; "};
        puts_(t, ends[below(7)]);
    }
}

/* Common Chinese characters, for sentences of random words. */
static const char chinese[] = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成"
                              "会可主发年动同工也能下过子说"
                              "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理"
                              "起小物现实加量都两体制机当使点"
                              "从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样"
                              "与关各重新线内数正心反你明看原又"
                              "么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已"
                              "通并提直题党程展五果料象员革位入"
                              "常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别"
                              "她手角期根论运农指几九区强放决西"
                              "被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压"
                              "志世金增争济阶油思术极交受联什认"
                              "六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至"
                              "达走积示议声报斗完类八离华名确才"
                              "科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越"
                              "织装影算低持音众书布复容儿须际商"
                              "非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克"
                              "何除消构府称太准精值号率族维划选"
                              "标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆"
                              "包火住调满县局照参红细引听该铁价";

static void gen_chinese(text *t) {
    size_t nchars = (sizeof chinese - 1) / 3;
    while (t->n < TEXT_BYTES - 64) {
        int n = 8 + (int)below(30);
        for (int i = 0; i < n; i++) {
            put(t, chinese + 3 * below((uint32_t)nchars), 3);
            if (i + 1 < n && below(12) == 0) puts_(t, "\xEF\xBC\x8C"); /* ， */
        }
        if (below(10) == 0) puts_(t, "2024\xE5\xB9\xB4");       /* 2024年 */
        puts_(t, below(8) ? "\xE3\x80\x82" : "\xE3\x80\x82\n"); /* 。 */
    }
}

static const char *const idents[] = {"buf",      "len",     "ctx",    "node",   "count",
                                     "value",    "index",   "result", "tensor", "offset",
                                     "n_tokens", "weights", "scale",  "block",  "row",
                                     "col",      "head",    "layer",  "cache"};
static const char *const types[] = {"int",      "size_t",        "float",  "const char *",
                                    "uint32_t", "struct node *", "double", "bool"};

static void gen_code(text *t) {
    char buf[512];
    while (t->n < TEXT_BYTES - 600) {
        const char *fn = idents[below(19)], *a = idents[below(19)], *b = idents[below(19)];
        snprintf(buf, sizeof buf, "/* %s - computes the %s of each %s. */\n", fn, a, b);
        puts_(t, buf);
        snprintf(buf, sizeof buf, "static %s %s_%s(%s%s, %s %s) {\n", types[below(8)], fn, a,
                 types[below(8)], a, types[below(8)], b);
        puts_(t, buf);
        int stmts = 2 + (int)below(6);
        for (int i = 0; i < stmts; i++) {
            const char *x = idents[below(19)], *y = idents[below(19)];
            switch (below(5)) {
            case 0:
                snprintf(buf, sizeof buf,
                         "    for (int i = 0; i < %s->%s; i++) {\n        %s[i] += %s[i] * 0.5f;\n "
                         "   }\n",
                         x, y, x, y);
                break;
            case 1:
                snprintf(buf, sizeof buf, "    if (%s == NULL || %s->%s > %u) return -1;\n", x, y,
                         x, below(4096));
                break;
            case 2:
                snprintf(buf, sizeof buf, "    %s = %s(%s, %s + %u);\n", x, y, x, y, below(100));
                break;
            case 3:
                snprintf(buf, sizeof buf, "    // TODO: handle the %s case\n", x);
                break;
            default:
                snprintf(buf, sizeof buf, "    printf(\"%%s: %%d\\n\", \"%s\", %s);\n", x, y);
            }
            puts_(t, buf);
        }
        puts_(t, "    return 0;\n}\n\n");
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best-of-runs seconds to encode t in chunks of `chunk` bytes (cut at UTF-8 boundaries). */
static double measure(const tok_vocab *v, const text *t, size_t chunk, size_t *n_tokens) {
    tok_ids ids = {0};
    chatd_error err;
    double best = 1e30;
    for (int run = 0; run < 5; run++) {
        ids.n = 0;
        double t0 = now();
        for (size_t at = 0; at < t->n;) {
            size_t n = t->n - at < chunk ? t->n - at : chunk;
            while (at + n < t->n && ((unsigned char)t->s[at + n] & 0xC0) == 0x80) n++;
            if (tok_encode(v, t->s + at, n, false, true, &ids, &err) != 0) {
                fprintf(stderr, "encode failed: %s\n", err.msg);
                tok_ids_free(&ids);
                return -1;
            }
            at += n;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    *n_tokens = ids.n;
    tok_ids_free(&ids);
    return best;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("CHATD_MODELS_DIR");
    if (!dir) {
        fprintf(stderr, "usage: bench_tokenizer MODELS_DIR (or set CHATD_MODELS_DIR)\n");
        return 2;
    }
    text texts[3];
    const char *names[3] = {"English prose", "Chinese", "C source"};
    void (*gens[3])(text *) = {gen_english, gen_chinese, gen_code};
    for (int i = 0; i < 3; i++) {
        texts[i].s = malloc(TEXT_BYTES);
        texts[i].n = 0;
        if (!texts[i].s) return 1;
        gens[i](&texts[i]);
    }
    static const char *const models[] = {"qwen2-tiny-q8_0", "llama3-tiny-q6_k",
                                         "llama-spm-tiny-f32"};
    printf("tokenizer encoding throughput, 1 thread (best of 5)\n");
    printf("%-20s %-14s %9s %9s %12s %12s\n", "model", "text", "bytes", "tokens", "1 call MB/s",
           "4 KB MB/s");
    for (int m = 0; m < 3; m++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, models[m]);
        chatd_error err;
        gguf_file *f = gguf_open(path, &err);
        if (!f) {
            printf("%-20s (skipped: %s)\n", models[m], err.msg);
            continue;
        }
        tok_vocab *v = tok_load(f, &err);
        gguf_close(f);
        if (!v) {
            printf("%-20s (skipped: %s)\n", models[m], err.msg);
            continue;
        }
        for (int i = 0; i < 3; i++) {
            size_t n_tok = 0, n_tok4 = 0;
            double whole = measure(v, &texts[i], texts[i].n, &n_tok);
            double chunks = measure(v, &texts[i], 4096, &n_tok4);
            double mb = (double)texts[i].n / (1024.0 * 1024.0);
            printf("%-20s %-14s %9zu %9zu %12.1f %12.1f\n", models[m], names[i], texts[i].n, n_tok,
                   whole > 0 ? mb / whole : 0.0, chunks > 0 ? mb / chunks : 0.0);
        }
        tok_free(v);
    }
    for (int i = 0; i < 3; i++) free(texts[i].s);
    return 0;
}
