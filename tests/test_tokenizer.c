/* test_tokenizer.c - the tokenizer against llama.cpp's own outputs, for one model:
 * `test_tokenizer MODEL` (a file stem, e.g. qwen2-tiny-q8_0) checks every case of
 *   - ../shared/models/MODEL.gguf.inp/.out, llama.cpp's test-tokenizer-0 vectors
 *     (add_special false, parse_special false), and that the ids decode back to the text;
 *   - ../shared/reference/MODEL/tokenize.json, llama-server's /tokenize and /detokenize
 *     (with and without special parsing, with BOS, pieces, round trips);
 * plus the model family's special ids and end-of-generation set, streaming decoding, and
 * bounded time on degenerate inputs. Every string is its own named case. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chatd/gguf.h"
#include "chatd/tokenizer.h"

static const char *model_name;
static tok_vocab *vocab;

/* A short printable rendering of a test string for case names. */
static const char *show(const char *s, size_t n) {
    static char buf[72];
    size_t w = 0;
    for (size_t i = 0; i < n && w + 5 < sizeof buf; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            buf[w++] = '\\';
            buf[w++] = 'n';
        } else if (c == '\t') {
            buf[w++] = '\\';
            buf[w++] = 't';
        } else if (c < 0x20) {
            w += (size_t)snprintf(buf + w, sizeof buf - w, "\\x%02x", c);
        } else {
            buf[w++] = (char)c;
        }
    }
    if (w + 5 >= sizeof buf) {
        /* do not cut a UTF-8 sequence in half */
        while (w > 0 && ((unsigned char)buf[w - 1] & 0xC0) == 0x80) w--;
        if (w > 0 && ((unsigned char)buf[w - 1] & 0xC0) == 0xC0) w--;
        memcpy(buf + w, "...", 3);
        w += 3;
    }
    buf[w] = '\0';
    return buf;
}

static char *ids_str(const int32_t *ids, size_t n) {
    size_t cap = n * 12 + 4;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t w = 0;
    s[w++] = '[';
    for (size_t i = 0; i < n; i++) w += (size_t)snprintf(s + w, cap - w, i ? " %d" : "%d", ids[i]);
    s[w++] = ']';
    s[w] = '\0';
    return s;
}

static void check_ids(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want) {
    bool same = n_got == n_want && (n_got == 0 || memcmp(got, want, n_got * sizeof *got) == 0);
    if (!same) {
        char *g = ids_str(got, n_got), *w = ids_str(want, n_want);
        TU_CHECK(0, "ids differ\n  got  %s\n  want %s", g ? g : "?", w ? w : "?");
        free(g);
        free(w);
    }
}

static bool encode(const char *text, size_t len, bool add_special, bool parse_special,
                   tok_ids *out) {
    chatd_error err = {{0}};
    out->n = 0;
    if (tok_encode(vocab, text, len, add_special, parse_special, out, &err) != 0) {
        TU_CHECK(0, "tok_encode failed: %s", err.msg);
        return false;
    }
    return true;
}

static bool decode(const int32_t *ids, size_t n, unsigned flags, tok_buf *out) {
    chatd_error err = {{0}};
    out->len = 0;
    if (tok_decode(vocab, ids, n, flags, out, &err) != 0) {
        TU_CHECK(0, "tok_decode failed: %s", err.msg);
        return false;
    }
    return true;
}

static void check_text(const char *got, size_t n_got, const char *want, size_t n_want,
                       const char *what) {
    TU_CHECK(n_got == n_want && memcmp(got, want, n_got) == 0,
             "%s: got '%s' (%zu bytes), want %zu bytes", what, show(got, n_got), n_got, n_want);
}

/* ---- llama.cpp's test-tokenizer-0 vectors ---- */

static void run_vectors(const char *shared) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s.gguf.inp", shared, model_name);
    size_t inp_len = 0, out_len = 0;
    char *inp = tu_read_file(path, &inp_len);
    snprintf(path, sizeof path, "%s/models/%s.gguf.out", shared, model_name);
    char *outs = tu_read_file(path, &out_len);
    if (!inp || !outs) {
        /* stories260K has no vectors; its reference file covers it */
        free(inp);
        free(outs);
        return;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    tok_ids ids = {0};
    tok_buf text = {0};
    size_t pos = 0, opos = 0;
    int k = 0;
    while (pos < inp_len) {
        const char *next = memmem(inp + pos, inp_len - pos, sep, sep_len);
        size_t end = next ? (size_t)(next - inp) : inp_len;
        const char *s = inp + pos;
        size_t n = end - pos;
        pos = next ? end + sep_len : inp_len;

        /* the matching line of .out: ids separated by spaces */
        size_t oend = opos;
        while (oend < out_len && outs[oend] != '\n') oend++;
        int32_t want[4096];
        size_t nw = 0;
        for (size_t i = opos; i < oend;) {
            while (i < oend && (outs[i] == ' ' || outs[i] == '\r')) i++;
            if (i >= oend) break;
            want[nw++] = (int32_t)strtol(outs + i, NULL, 10);
            while (i < oend && outs[i] != ' ') i++;
        }
        bool have_line = opos < out_len;
        opos = oend + 1;

        tu_case("%s vector %d '%s'", model_name, k++, show(s, n));
        TU_CHECK(have_line, ".out has fewer lines than .inp has cases");
        if (!have_line) break;
        if (!encode(s, n, false, false, &ids)) continue;
        check_ids(ids.v, ids.n, want, nw);

        /* decoding gives the text back (SentencePiece: once its leading space is dropped) */
        unsigned flags = TOK_DECODE_SPECIAL;
        if (tok_vocab_kind(vocab) == TOK_KIND_SPM) flags |= TOK_DECODE_STRIP_PREFIX;
        if (decode(ids.v, ids.n, flags, &text)) check_text(text.data, text.len, s, n, "round trip");
    }
    tu_case("%s vector count", model_name);
    TU_CHECK(k == 46, "%d vectors, expected 46", k);
    tok_ids_free(&ids);
    tok_buf_free(&text);
    free(inp);
    free(outs);
}

/* ---- llama-server's /tokenize and /detokenize ---- */

static size_t json_ids(const cJSON *arr, int32_t *out, size_t cap) {
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (n < cap) out[n] = (int32_t)it->valuedouble;
        n++;
    }
    return n;
}

static void run_reference(const char *shared) {
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/%s/tokenize.json", shared, model_name);
    cJSON *root = tu_load_json(path);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    tok_ids ids = {0}, with_bos = {0};
    tok_buf text = {0};
    static int32_t want[8192];
    int k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(c, "text");
        const char *s = cJSON_GetStringValue(jt);
        size_t n = s ? strlen(s) : 0;
        const char *name = show(s ? s : "", n);
        char label[96];
        snprintf(label, sizeof label, "%s", name);

        /* with special parsing */
        tu_case("%s ref %d parse_special '%s'", model_name, k, label);
        if (encode(s, n, false, true, &ids)) {
            size_t nw =
                json_ids(cJSON_GetObjectItemCaseSensitive(c, "ids_parse_special"), want, 8192);
            check_ids(ids.v, ids.n, want, nw);
        }
        tok_ids ps = ids;
        ids = (tok_ids){0};

        tu_case("%s ref %d no_parse_special '%s'", model_name, k, label);
        tok_ids nps = {0};
        if (encode(s, n, false, false, &nps)) {
            size_t nw =
                json_ids(cJSON_GetObjectItemCaseSensitive(c, "ids_no_parse_special"), want, 8192);
            check_ids(nps.v, nps.n, want, nw);
        }

        tu_case("%s ref %d add_special '%s'", model_name, k, label);
        if (encode(s, n, true, true, &with_bos)) {
            size_t nw = json_ids(
                cJSON_GetObjectItemCaseSensitive(c, "ids_add_special_parse_special"), want, 8192);
            check_ids(with_bos.v, with_bos.n, want, nw);
        }

        tu_case("%s ref %d pieces '%s'", model_name, k, label);
        {
            const cJSON *pieces = cJSON_GetObjectItemCaseSensitive(c, "pieces_parse_special");
            int np = cJSON_GetArraySize(pieces);
            TU_CHECK((size_t)np == ps.n, "%d pieces for %zu ids", np, ps.n);
            for (int i = 0; i < np && (size_t)i < ps.n; i++) {
                const cJSON *p = cJSON_GetArrayItem(pieces, i);
                size_t len;
                const char *got = tok_piece(vocab, ps.v[i], true, &len);
                char wantb[256];
                size_t wl = 0;
                if (cJSON_IsString(p)) {
                    wl = strlen(p->valuestring);
                    if (wl > sizeof wantb) wl = sizeof wantb;
                    memcpy(wantb, p->valuestring, wl);
                } else {
                    const cJSON *b;
                    cJSON_ArrayForEach(b, p) if (wl < sizeof wantb) wantb[wl++] = (char)b->valueint;
                }
                TU_CHECK(got && len == wl && memcmp(got, wantb, wl) == 0,
                         "piece %d of id %d: got '%s'", i, ps.v[i],
                         got ? show(got, len) : "(null)");
            }
        }

        /* /detokenize renders every token's piece, special ones included */
        tu_case("%s ref %d detokenize '%s'", model_name, k, label);
        {
            const char *want_ps = cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(c, "detokenize_parse_special"));
            const char *want_nps = cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(c, "detokenize_no_parse_special"));
            bool rt_ps =
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "roundtrip_ok_parse_special"));
            bool rt_nps =
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "roundtrip_ok_no_parse_special"));
            if (want_ps && decode(ps.v, ps.n, TOK_DECODE_SPECIAL, &text)) {
                check_text(text.data, text.len, want_ps, strlen(want_ps),
                           "detokenize(parse_special)");
                TU_CHECK((text.len == n && memcmp(text.data, s, n) == 0) == rt_ps,
                         "round trip (parse_special) should be %s", rt_ps ? "exact" : "inexact");
            }
            if (want_nps && decode(nps.v, nps.n, TOK_DECODE_SPECIAL, &text)) {
                check_text(text.data, text.len, want_nps, strlen(want_nps),
                           "detokenize(no_parse_special)");
                TU_CHECK((text.len == n && memcmp(text.data, s, n) == 0) == rt_nps,
                         "round trip (no_parse_special) should be %s",
                         rt_nps ? "exact" : "inexact");
            }
            /* and the stream decoder agrees with the one-shot decoder on valid UTF-8 */
            tok_stream st;
            tok_stream_init(&st, vocab, true);
            tok_buf sb = {0};
            chatd_error err;
            for (size_t i = 0; i < ps.n; i++)
                TU_CHECK(tok_stream_push(&st, ps.v[i], &sb, &err) == 0, "push");
            TU_CHECK(tok_stream_flush(&st, &sb, &err) == 0, "flush");
            if (want_ps) check_text(sb.data, sb.len, want_ps, strlen(want_ps), "stream");
            tok_buf_free(&sb);
        }
        tok_ids_free(&ps);
        tok_ids_free(&nps);
        k++;
    }
    tu_case("%s ref case count", model_name);
    TU_CHECK(k == 35, "%d reference cases, expected 35", k);
    tok_ids_free(&ids);
    tok_ids_free(&with_bos);
    tok_buf_free(&text);
    cJSON_Delete(root);
}

/* ---- what the model family must have ---- */

static int32_t id_of(const char *text) {
    return tok_find(vocab, text, strlen(text));
}

static void expect_eog(const char *text, bool want) {
    int32_t id = id_of(text);
    TU_CHECK(id != TOK_NULL, "token '%s' missing", text);
    if (id != TOK_NULL)
        TU_CHECK(tok_is_eog(vocab, id) == want, "'%s' (%d) %s end generation", text, id,
                 want ? "should" : "should not");
}

static void run_family(void) {
    tu_case("%s special ids", model_name);
    const char *m = model_name;
    if (strncmp(m, "qwen", 4) == 0) {
        TU_CHECK(tok_vocab_kind(vocab) == TOK_KIND_BPE, "kind");
        TU_CHECK(tok_bos(vocab) == 151643 && tok_eos(vocab) == 151645, "bos %d eos %d",
                 tok_bos(vocab), tok_eos(vocab));
        TU_CHECK(!tok_add_bos(vocab) && !tok_add_eos(vocab), "add_bos/add_eos");
        TU_CHECK(tok_eot(vocab) == 151645, "eot %d", tok_eot(vocab));
        expect_eog("<|im_end|>", true);
        expect_eog("<|endoftext|>", true);
        expect_eog("</s>", true); /* llama.cpp's "control-looking" rule */
        expect_eog("<|im_start|>", false);
        TU_CHECK(tok_is_control(vocab, id_of("</s>")), "</s> forced to CONTROL");
        TU_CHECK(tok_attr(vocab, id_of("<tool_call>")) == TOK_ATTR_USER_DEFINED,
                 "<tool_call> type");
        TU_CHECK(tok_nl(vocab) == 198, "nl %d", tok_nl(vocab));
    } else if (strncmp(m, "r1-qwen", 7) == 0) {
        TU_CHECK(tok_bos(vocab) == 151646 && tok_eos(vocab) == 151643, "bos %d eos %d",
                 tok_bos(vocab), tok_eos(vocab));
        TU_CHECK(tok_add_bos(vocab) && !tok_add_eos(vocab), "add_bos/add_eos");
        expect_eog("<\xEF\xBD\x9C"
                   "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                   true);
        expect_eog("<\xEF\xBD\x9CUser\xEF\xBD\x9C>", false);
    } else if (strncmp(m, "llama3", 6) == 0) {
        TU_CHECK(tok_bos(vocab) == 128000 && tok_eos(vocab) == 128009, "bos %d eos %d",
                 tok_bos(vocab), tok_eos(vocab));
        TU_CHECK(tok_add_bos(vocab) && !tok_add_eos(vocab), "add_bos/add_eos");
        TU_CHECK(tok_eot(vocab) == 128009 && tok_eom(vocab) == 128008, "eot %d eom %d",
                 tok_eot(vocab), tok_eom(vocab));
        expect_eog("<|eot_id|>", true);
        expect_eog("<|end_of_text|>", true);
        expect_eog("<|eom_id|>", true);
        expect_eog("<|start_header_id|>", false);
    } else {
        TU_CHECK(tok_vocab_kind(vocab) == TOK_KIND_SPM, "kind");
        TU_CHECK(tok_bos(vocab) == 1 && tok_eos(vocab) == 2, "bos %d eos %d", tok_bos(vocab),
                 tok_eos(vocab));
        TU_CHECK(tok_add_bos(vocab) && !tok_add_eos(vocab) && tok_add_space_prefix(vocab),
                 "add_bos/add_eos/space prefix");
        expect_eog("</s>", true);
        expect_eog("<s>", false);
        TU_CHECK(tok_nl(vocab) == 13, "nl %d", tok_nl(vocab));
    }
    const int32_t *eog;
    size_t n = tok_eog_ids(vocab, &eog);
    TU_CHECK(n >= 1, "empty EOG set");
    for (size_t i = 0; i < n; i++)
        TU_CHECK(tok_is_control(vocab, eog[i]), "EOG id %d is not CONTROL", eog[i]);
}

/* ---- streaming ---- */

static void run_stream(void) {
    tu_case("%s stream holds back partial UTF-8", model_name);
    /* an emoji spelled with byte-level tokens arrives in pieces; nothing may leak early */
    const char *emoji = "\xF0\x9F\xA6\x99 ok"; /* U+1F999 */
    tok_ids ids = {0};
    tok_buf out = {0};
    chatd_error err;
    if (!encode(emoji, strlen(emoji), false, false, &ids)) return;
    tok_stream st;
    tok_stream_init(&st, vocab, false);
    for (size_t i = 0; i < ids.n; i++) {
        size_t before = out.len;
        TU_CHECK(tok_stream_push(&st, ids.v[i], &out, &err) == 0, "push");
        /* whatever came out is whole characters */
        for (size_t j = before; j < out.len;) {
            unsigned char b = (unsigned char)out.data[j];
            size_t need = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            TU_CHECK(b < 0x80 || b >= 0xC2, "broken byte 0x%02x emitted", b);
            TU_CHECK(j + need <= out.len, "partial character emitted after id %d", ids.v[i]);
            j += need;
        }
    }
    TU_CHECK(tok_stream_flush(&st, &out, &err) == 0, "flush");
    /* SentencePiece pieces keep the space the tokenizer put in front */
    const char *want = tok_vocab_kind(vocab) == TOK_KIND_SPM ? " \xF0\x9F\xA6\x99 ok" : emoji;
    check_text(out.data, out.len, want, strlen(want), "stream");

    tu_case("%s stream replaces broken UTF-8", model_name);
    tok_stream_init(&st, vocab, false);
    out.len = 0;
    TU_CHECK(tok_stream_push_bytes(&st, "a\xE4\xB8", 3, &out, &err) == 0, "push");
    TU_CHECK(out.len == 1 && tok_stream_pending(&st) == 2, "held %zu, out %zu",
             tok_stream_pending(&st), out.len);
    TU_CHECK(tok_stream_push_bytes(&st, "b\x80", 2, &out, &err) == 0, "push");
    TU_CHECK(tok_stream_flush(&st, &out, &err) == 0, "flush");
    check_text(out.data, out.len,
               "a\xEF\xBF\xBD"
               "b\xEF\xBF\xBD",
               8, "replaced");
    TU_CHECK(tok_stream_push_bytes(&st, "\xED\xA0\x80", 3, &out, &err) == 0, "surrogate");
    TU_CHECK(tok_stream_pending(&st) == 0, "a surrogate is never held to completion");

    tu_case("%s stream hides control tokens unless asked", model_name);
    int32_t eos = tok_eos(vocab);
    out.len = 0;
    tok_stream_init(&st, vocab, false);
    TU_CHECK(tok_stream_push(&st, eos, &out, &err) == 0 && out.len == 0, "EOS rendered");
    tok_stream_init(&st, vocab, true);
    size_t plen;
    tok_piece(vocab, eos, true, &plen);
    TU_CHECK(tok_stream_push(&st, eos, &out, &err) == 0 && out.len == plen, "EOS hidden");
    TU_CHECK(tok_stream_push(&st, tok_n_vocab(vocab), &out, &err) != 0, "bad id accepted");
    tok_ids_free(&ids);
    tok_buf_free(&out);
}

/* ---- size and time ---- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void timed(const char *what, const char *text, size_t n) {
    tu_case("%s bounded time: %s", model_name, what);
    tok_ids ids = {0};
    tok_buf back = {0};
    double t0 = now();
    bool ok = encode(text, n, false, true, &ids);
    double dt = now() - t0;
    /* a quadratic pass over 10^5..10^6 symbols takes minutes; even under sanitizers this
     * takes well under a few seconds */
    TU_CHECK(dt < 30.0, "took %.1f s", dt);
    if (ok && n) {
        TU_CHECK(ids.n > 0, "no tokens");
        unsigned flags = TOK_DECODE_SPECIAL | TOK_DECODE_STRIP_PREFIX;
        if (decode(ids.v, ids.n, flags, &back))
            check_text(back.data, back.len, text, n, "round trip");
    }
    tok_ids_free(&ids);
    tok_buf_free(&back);
}

static void run_sizes(void) {
    timed("empty", "", 0);
    size_t n = 100000;
    char *s = malloc(1 << 20);
    if (!s) return;
    memset(s, 'a', n);
    timed("100000 x 'a'", s, n);
    memset(s, ' ', n);
    timed("100000 spaces", s, n);
    memset(s, '7', n);
    timed("100000 digits", s, n);
    for (size_t i = 0; i + 3 <= 99999; i += 3) memcpy(s + i, "\xE4\xB8\xAD", 3); /* 中 */
    timed("33333 x CJK", s, 99999);
    /* 1 MB of mixed text */
    static const char *words[] = {"the ",       "quick ",       "brown ",
                                  "fox ",       "\n",           "3.14 ",
                                  "<|im_end|>", "caf\xC3\xA9 ", "\xE5\xA4\xA7\xE8\xAF\xAD ",
                                  "don't ",     "  ",           "\t"};
    size_t at = 0;
    unsigned r = 1;
    while (at < (1u << 20) - 16) {
        r = r * 1103515245u + 12345u;
        const char *w = words[(r >> 16) % 12];
        size_t l = strlen(w);
        memcpy(s + at, w, l);
        at += l;
    }
    timed("1 MB mixed", s, at);
    free(s);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_tokenizer MODEL-STEM\n");
        return 2;
    }
    model_name = argv[1];
    const char *shared = tu_shared_dir();
    char file[512];
    snprintf(file, sizeof file, "%s.gguf", model_name);
    const char *path = tu_model_path(file);
    chatd_error err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    tu_case("%s load", model_name);
    TU_CHECK(f != NULL, "gguf_open(%s): %s", path, err.msg);
    if (!f) return tu_finish();
    vocab = tok_load(f, &err);
    gguf_close(f); /* the vocab keeps its own copy */
    TU_CHECK(vocab != NULL, "tok_load: %s", err.msg);
    if (!vocab) return tu_finish();

    run_vectors(shared);
    run_reference(shared);
    run_family();
    run_stream();
    run_sizes();
    tok_free(vocab);
    return tu_finish();
}
