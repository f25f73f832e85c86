/* tok_load.c - building a tok_vocab from a GGUF file's tokenizer.ggml.* metadata, with
 * llama.cpp's load-time fix-ups (src/llama-vocab.cpp, llama_vocab::impl::load): default
 * and file-given special ids, "control-looking" tokens forced to CONTROL, the derived
 * end-of-generation set, and every token's piece precomputed so decoding is a copy. */
#include "tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OOM(err) chatd_errorf((err), "tokenizer: out of memory")

/* DeepSeek's fullwidth-bar token names: <｜end▁of▁sentence｜> and the FIM ones. */
#define FW_BAR             "\xEF\xBD\x9C"
#define SP_                "\xE2\x96\x81"
#define DS_END_OF_SENTENCE "<" FW_BAR "end" SP_ "of" SP_ "sentence" FW_BAR ">"

/* ---- GPT-2 byte <-> unicode mapping ---- */

/* Bytes that stand for themselves in GPT-2's byte-to-unicode table. */
static bool gpt2_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

static void gpt2_build(tok_vocab *v) {
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cpt = gpt2_printable(b) ? b : next++;
        v->byte_enc_len[b] = (unsigned char)tok_utf8_encode(cpt, v->byte_enc[b]);
    }
}

/* The byte a code point of GPT-2's table stands for, or -1. The 68 bytes that are not
 * printable are numbered 256.. in byte order: 0x00-0x20, 0x7F-0xA0, 0xAD. */
static int gpt2_byte(uint32_t cpt) {
    if (cpt < 256) return gpt2_printable(cpt) ? (int)cpt : -1;
    if (cpt < 256 + 33) return (int)(cpt - 256);
    if (cpt < 256 + 67) return (int)(cpt - 256 - 33 + 0x7F);
    if (cpt == 256 + 67) return 0xAD;
    return -1;
}

/* ---- loading ---- */

static bool str_is(gguf_str s, const char *c) {
    return gguf_str_eq(s, c);
}

static bool text_is(const tok_vocab *v, int32_t id, const char *c) {
    size_t n = strlen(c);
    return v->text_len[id] == n && memcmp(v->text_arena + v->text_off[id], c, n) == 0;
}

static int32_t find_cstr(const tok_vocab *v, const char *c) {
    return tok_lookup(v, c, strlen(c));
}

/* A pre-tokenizer llama.cpp knows, with the flags its load() sets for it. */
typedef struct pre_def {
    const char *name;
    enum tok_pre pre;
    bool ignore_merges, add_bos, clean_spaces;
} pre_def;

static const pre_def pre_defs[] = {
    {"llama3", TOK_PRE_LLAMA3, true, true, true},
    {"llama-v3", TOK_PRE_LLAMA3, true, true, true},
    {"llama-bpe", TOK_PRE_LLAMA3, true, true, true},
    {"falcon3", TOK_PRE_LLAMA3, true, true, true},
    {"falcon-h1", TOK_PRE_LLAMA3, true, true, true},
    {"pixtral", TOK_PRE_LLAMA3, true, true, true},
    {"midm-2.0", TOK_PRE_LLAMA3, true, true, true},
    {"lfm2", TOK_PRE_LLAMA3, true, true, true},
    {"jina-v5-nano", TOK_PRE_LLAMA3, true, true, true},
    {"dbrx", TOK_PRE_LLAMA3, false, false, true},
    {"smaug-bpe", TOK_PRE_LLAMA3, false, false, true},
    {"qwen2", TOK_PRE_QWEN2, false, false, false},
    {"deepseek-r1-qwen", TOK_PRE_QWEN2, false, false, false},
    {"kormo", TOK_PRE_QWEN2, false, false, false},
    {"f2llmv2", TOK_PRE_QWEN2, false, false, false},
    {"megrez", TOK_PRE_QWEN2, false, false, true},
    {"stablelm2", TOK_PRE_QWEN2, false, false, true},
    {"hunyuan", TOK_PRE_QWEN2, false, false, false},
    {"solar-open", TOK_PRE_QWEN2, false, false, false},
    {"grok-2", TOK_PRE_QWEN2, false, false, false},
};

/* Reads an optional token-id key into *id: absent or out of range keeps the default. */
static void read_special_id(const gguf_file *f, const char *key, int32_t n_tokens, int32_t *id) {
    if (*id >= n_tokens) *id = TOK_NULL;
    if (!gguf_find(f, key)) return;
    chatd_error e;
    int64_t x = 0;
    if (gguf_get_int(f, key, &x, &e) != 0) return;
    if (x >= 0 && x < n_tokens) *id = (int32_t)x;
}

static void read_bool(const gguf_file *f, const char *key, bool *out) {
    if (!gguf_find(f, key)) return;
    chatd_error e;
    bool b;
    if (gguf_get_bool(f, key, &b, &e) == 0) *out = b;
}

/* llama.cpp's token_to_byte: strtol of the two characters after "<0x". */
static unsigned char token_byte(const tok_vocab *v, int32_t id) {
    char hex[3] = {0, 0, 0};
    uint32_t len = v->text_len[id];
    for (uint32_t i = 3; i < 5 && i < len; i++) hex[i - 3] = v->text_arena[v->text_off[id] + i];
    return (unsigned char)strtol(hex, NULL, 16);
}

/* Appends llama_token_to_piece(id, special = true) to b. */
static int build_piece(const tok_vocab *v, int32_t id, tok_buf *b, chatd_error *err) {
    const char *t = v->text_arena + v->text_off[id];
    size_t n = v->text_len[id];
    uint32_t attr = v->attr[id];
    if (attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED))
        return tok_buf_append(b, t, n, err);
    if (attr & TOK_ATTR_NORMAL) {
        if (v->kind == TOK_KIND_SPM) {
            /* U+2581 (the escaped space) back to ' ' */
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && memcmp(t + i, "\xE2\x96\x81", 3) == 0) {
                    if (tok_buf_append(b, " ", 1, err) != 0) return -1;
                    i += 3;
                } else {
                    size_t j = i + 1;
                    while (j < n && t[j] != '\xE2') j++;
                    if (tok_buf_append(b, t + i, j - i, err) != 0) return -1;
                    i = j;
                }
            }
            return 0;
        }
        /* byte-level BPE: every code point stands for one byte */
        for (size_t i = 0; i < n;) {
            uint32_t cpt = tok_utf8_decode((const unsigned char *)t, n, &i);
            unsigned char u[4];
            size_t ul = tok_utf8_encode(cpt, u);
            int byte = gpt2_byte(cpt);
            if (byte >= 0) {
                unsigned char c = (unsigned char)byte;
                if (tok_buf_append(b, &c, 1, err) != 0) return -1;
            } else {
                /* llama.cpp's llama_decode_text writes this marker for a code point
                 * outside the byte table */
                char hx[16];
                if (tok_buf_append(b, "[UNK_BYTE_0x", 12, err) != 0) return -1;
                for (size_t k = 0; k < ul; k++) {
                    snprintf(hx, sizeof hx, "%02x", u[k]);
                    if (tok_buf_append(b, hx, 2, err) != 0) return -1;
                }
                if (tok_buf_append(b, t, n, err) != 0 || tok_buf_append(b, "]", 1, err) != 0)
                    return -1;
            }
        }
        return 0;
    }
    if (attr & TOK_ATTR_BYTE) {
        unsigned char c = token_byte(v, id);
        return tok_buf_append(b, &c, 1, err);
    }
    return 0;
}

/* Marks a token CONTROL, as llama.cpp does to "control-looking" tokens. */
static void force_control(tok_vocab *v, int32_t id) {
    if (id != TOK_NULL) v->attr[id] |= TOK_ATTR_CONTROL;
}

/* The first of names present in the vocab; for ids llama.cpp finds by text. Its scan
 * order is a hash map's, so where several names match (Qwen has both <|im_end|> and
 * <|endoftext|>) the list order decides here, which picks the turn-ending token. */
static int32_t find_first(const tok_vocab *v, const char *const *names) {
    for (; *names; names++) {
        int32_t id = find_cstr(v, *names);
        if (id != TOK_NULL) return id;
    }
    return TOK_NULL;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts ids by text length, longest first, then by id (a merge sort, because qsort has
 * no context argument to reach the lengths through). */
static void special_sort(const tok_vocab *v, int32_t *ids, size_t n, int32_t *tmp) {
    if (n < 2) return;
    size_t h = n / 2;
    special_sort(v, ids, h, tmp);
    special_sort(v, ids + h, n - h, tmp);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        uint32_t li = v->text_len[ids[i]], lj = v->text_len[ids[j]];
        bool take_right = lj > li || (lj == li && ids[j] < ids[i]);
        tmp[k++] = take_right ? ids[j++] : ids[i++];
    }
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, n * sizeof *ids);
}

static int build_special(tok_vocab *v, chatd_error *err) {
    size_t n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) n++;
    v->special_rank = malloc((size_t)v->n_tokens * sizeof *v->special_rank);
    v->special = malloc((n ? n : 1) * sizeof *v->special);
    int32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    size_t trie_cap = 1;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            trie_cap += v->text_len[id];
    v->trie = malloc(trie_cap * sizeof *v->trie);
    if (!v->special_rank || !v->special || !tmp || !v->trie) {
        free(tmp);
        return OOM(err);
    }
    n = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        v->special_rank[id] = -1;
        if (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            v->special[n++] = id;
    }
    special_sort(v, v->special, n, tmp);
    free(tmp);
    v->n_special = n;

    /* the trie: node 0 is the root */
    v->trie[0] = (tok_trie_node){-1, -1, TOK_NULL, 0};
    v->n_trie = 1;
    for (size_t r = 0; r < n; r++) {
        int32_t id = v->special[r];
        v->special_rank[id] = (int32_t)r;
        const unsigned char *t = (const unsigned char *)v->text_arena + v->text_off[id];
        uint32_t len = v->text_len[id];
        v->special_first[t[0]] = true;
        int32_t node = 0;
        for (uint32_t i = 0; i < len; i++) {
            int32_t c = v->trie[node].child;
            while (c >= 0 && v->trie[c].byte != t[i]) c = v->trie[c].sibling;
            if (c < 0) {
                c = (int32_t)v->n_trie++;
                v->trie[c] = (tok_trie_node){-1, v->trie[node].child, TOK_NULL, t[i]};
                v->trie[node].child = c;
            }
            node = c;
        }
        v->trie[node].id = id;
    }
    return 0;
}

static int load_tokens(tok_vocab *v, const gguf_file *f, chatd_error *err) {
    const gguf_value *tokens = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING);
    if (!tokens)
        return chatd_errorf(err, "tokenizer: tokenizer.ggml.tokens missing or not strings");
    if (tokens->v.arr.n == 0 || tokens->v.arr.n >= INT32_MAX)
        return chatd_errorf(err, "tokenizer: vocabulary of %llu tokens",
                            (unsigned long long)tokens->v.arr.n);
    int32_t n = (int32_t)tokens->v.arr.n;
    v->n_tokens = n;

    const gguf_kv *skv = gguf_find(f, "tokenizer.ggml.scores");
    const gguf_value *scores = NULL;
    if (skv) {
        scores = &skv->value;
        if (scores->type != GGUF_TYPE_ARRAY || (scores->v.arr.elem_type != GGUF_TYPE_FLOAT32 &&
                                                scores->v.arr.elem_type != GGUF_TYPE_INT32))
            return chatd_errorf(err, "tokenizer: invalid gguf type for tokenizer.ggml.scores");
        if (scores->v.arr.n < (uint64_t)n)
            return chatd_errorf(err, "tokenizer: %llu scores for %d tokens",
                                (unsigned long long)scores->v.arr.n, n);
    }
    const gguf_kv *tkv = gguf_find(f, "tokenizer.ggml.token_type");
    const gguf_value *types = NULL;
    if (tkv) {
        types = &tkv->value;
        if (types->type != GGUF_TYPE_ARRAY || types->v.arr.elem_type != GGUF_TYPE_INT32)
            return chatd_errorf(err, "tokenizer: invalid gguf type for tokenizer.ggml.token_type");
        if (types->v.arr.n < (uint64_t)n)
            return chatd_errorf(err, "tokenizer: %llu token types for %d tokens",
                                (unsigned long long)types->v.arr.n, n);
    }

    /* texts; an empty one becomes "[EMPTY_i]" as in llama.cpp */
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        uint64_t l = tokens->v.arr.items[i].v.str.len;
        total += l ? l : 24;
    }
    if (total >= UINT32_MAX) return chatd_errorf(err, "tokenizer: token texts too large");
    v->text_arena = malloc(total + 1);
    v->text_off = malloc((size_t)n * sizeof *v->text_off);
    v->text_len = malloc((size_t)n * sizeof *v->text_len);
    v->score = malloc((size_t)n * sizeof *v->score);
    v->attr = malloc((size_t)n * sizeof *v->attr);
    if (!v->text_arena || !v->text_off || !v->text_len || !v->score || !v->attr) return OOM(err);
    uint32_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        gguf_str s = tokens->v.arr.items[i].v.str;
        v->text_off[i] = at;
        if (s.len == 0) {
            int k = snprintf(v->text_arena + at, 25, "[EMPTY_%d]", i);
            v->text_len[i] = (uint32_t)k;
        } else {
            memcpy(v->text_arena + at, s.ptr, s.len);
            v->text_len[i] = (uint32_t)s.len;
        }
        at += v->text_len[i];
        if ((int32_t)v->text_len[i] > v->max_token_len) v->max_token_len = (int32_t)v->text_len[i];

        if (!scores)
            v->score[i] = 0.0f;
        else if (scores->v.arr.elem_type == GGUF_TYPE_FLOAT32)
            v->score[i] = (float)gguf_arr_float(scores, (uint64_t)i);
        else
            v->score[i] = (float)gguf_arr_int(scores, (uint64_t)i);

        uint32_t attr = TOK_ATTR_NORMAL;
        if (types) {
            switch (gguf_arr_int(types, (uint64_t)i)) {
            case 2:
                attr = TOK_ATTR_UNKNOWN;
                break;
            case 5:
                attr = TOK_ATTR_UNUSED;
                break;
            case 1:
                attr = TOK_ATTR_NORMAL;
                break;
            case 3:
                attr = TOK_ATTR_CONTROL;
                break;
            case 4:
                attr = TOK_ATTR_USER_DEFINED;
                break;
            case 6:
                attr = TOK_ATTR_BYTE;
                break;
            default:
                attr = TOK_ATTR_UNDEFINED;
                break;
            }
        }
        v->attr[i] = attr;
    }

    if (tok_strmap_init(&v->text_map, (size_t)n, v->text_arena, v->text_off, v->text_len, err))
        return -1;
    for (int32_t i = 0; i < n; i++) {
        int32_t got = tok_strmap_insert(&v->text_map, i);
        if (got != i)
            return chatd_errorf(
                err, "tokenizer: duplicate token in vocabulary: '%.*s' has ids %d and %d",
                (int)(v->text_len[i] > 64 ? 64 : v->text_len[i]), v->text_arena + v->text_off[i],
                got, i);
    }
    return 0;
}

size_t tok_gpt2_unbyte(const tok_vocab *v, const char *text, size_t n, char *out) {
    const unsigned char *t = (const unsigned char *)text;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t from = i;
        uint32_t cpt = tok_utf8_decode(t, n, &i);
        int b = gpt2_byte(cpt);
        /* the text must be exactly the canonical encoding of those bytes */
        if (b < 0 || v->byte_enc_len[b] != i - from || memcmp(v->byte_enc[b], t + from, i - from))
            return SIZE_MAX;
        out[w++] = (char)b;
    }
    return w;
}

/* Byte-level BPE looks tokens up by the bytes they stand for: "Ġthe" is " the". */
static int load_raw(tok_vocab *v, chatd_error *err) {
    gpt2_build(v);
    size_t total = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) total += v->text_len[i];
    v->raw_arena = malloc(total + 1);
    v->raw_off = malloc((size_t)v->n_tokens * sizeof *v->raw_off);
    v->raw_len = malloc((size_t)v->n_tokens * sizeof *v->raw_len);
    if (!v->raw_arena || !v->raw_off || !v->raw_len) return OOM(err);
    uint32_t at = 0;
    size_t n_raw = 0;
    for (int32_t id = 0; id < v->n_tokens; id++) {
        size_t w =
            tok_gpt2_unbyte(v, v->text_arena + v->text_off[id], v->text_len[id], v->raw_arena + at);
        v->raw_off[id] = at;
        v->raw_len[id] = w == SIZE_MAX ? UINT32_MAX : (uint32_t)w;
        if (w != SIZE_MAX) {
            at += (uint32_t)w;
            n_raw++;
        }
    }
    /* tokens that are not byte-encodable get an impossible key length in the map */
    if (tok_strmap_init(&v->raw_map, n_raw, v->raw_arena, v->raw_off, v->raw_len, err)) return -1;
    for (int32_t id = 0; id < v->n_tokens; id++)
        if (v->raw_len[id] != UINT32_MAX) tok_strmap_insert(&v->raw_map, id);
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        v->byte_tok[b] = tok_strmap_find(&v->raw_map, &c, 1);
    }
    return 0;
}

/* Token names llama.cpp recognises by text (llama_vocab::impl::load), in its order. */
// clang-format off
static const char *const eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", DS_END_OF_SENTENCE, "<end_of_utterance>", NULL};
static const char *const eom_names[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_names[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<" FW_BAR "fim" SP_ "begin" FW_BAR ">",
    "<PRE>", SP_ "<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf_names[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<" FW_BAR "fim" SP_ "hole" FW_BAR ">",
    "<SUF>", SP_ "<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid_names[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<" FW_BAR "fim" SP_ "end" FW_BAR ">",
    "<MID>", SP_ "<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]", NULL};
static const char *const fim_rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_names[] = {"<|file_sep|>", NULL};
static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    DS_END_OF_SENTENCE, "[e~[", NULL};
// clang-format on

/* Detects an id by text when the file did not set it, and makes it CONTROL. */
static void detect(tok_vocab *v, int32_t *id, const char *const *names) {
    if (*id != TOK_NULL) return;
    *id = find_first(v, names);
    force_control(v, *id);
}

static int eog_add(tok_vocab *v, int32_t id) {
    if (id == TOK_NULL) return 0;
    for (size_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return 0;
    v->eog[v->n_eog++] = id;
    return 1;
}

static void eog_remove(tok_vocab *v, int32_t id) {
    for (size_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) {
            v->eog[i] = v->eog[--v->n_eog];
            return;
        }
}

static int load_special(tok_vocab *v, const gguf_file *f, chatd_error *err) {
    int32_t n = v->n_tokens;
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(tok_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(tok_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(tok_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(tok_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(tok_vocab, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(tok_vocab, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(tok_vocab, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(tok_vocab, mask)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(tok_vocab, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(tok_vocab, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(tok_vocab, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(tok_vocab, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(tok_vocab, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(tok_vocab, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(tok_vocab, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(tok_vocab, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(tok_vocab, fim_mid)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        read_special_id(f, keys[i].key, n, (int32_t *)((char *)v + keys[i].off));

    read_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos);
    read_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos);
    read_bool(f, "tokenizer.ggml.add_sep_token", &v->add_sep);
    if (v->add_bos && v->bos == TOK_NULL)
        return chatd_errorf(err, "tokenizer: add_bos_token is true, but bos_token_id is not set");
    if (v->add_eos && v->eos == TOK_NULL)
        return chatd_errorf(err, "tokenizer: add_eos_token is true, but eos_token_id is not set");
    if (v->add_sep && v->sep == TOK_NULL)
        return chatd_errorf(err,
                            "tokenizer: add_sep_token is true, but seperator_token_id is not set");

    detect(v, &v->eot, eot_names);
    detect(v, &v->eom, eom_names);
    detect(v, &v->fim_pre, fim_pre_names);
    detect(v, &v->fim_suf, fim_suf_names);
    detect(v, &v->fim_mid, fim_mid_names);
    detect(v, &v->fim_pad, fim_pad_names);
    detect(v, &v->fim_rep, fim_rep_names);
    detect(v, &v->fim_sep, fim_sep_names);

    /* control tokens named "unused" are unused */
    for (int32_t id = 0; id < n; id++) {
        if (!(v->attr[id] & TOK_ATTR_CONTROL)) continue;
        const char *t = v->text_arena + v->text_off[id];
        uint32_t len = v->text_len[id];
        for (uint32_t i = 0; i + 6 <= len; i++)
            if (memcmp(t + i, "unused", 6) == 0) {
                v->attr[id] |= TOK_ATTR_UNUSED;
                break;
            }
    }

    /* the end-of-generation set; at most a handful of ids, so a small array */
    size_t n_names = 0;
    while (eog_names[n_names]) n_names++;
    v->eog = malloc((n_names + 6) * sizeof *v->eog);
    if (!v->eog) return OOM(err);
    v->n_eog = 0;
    eog_add(v, v->fim_pad);
    eog_add(v, v->fim_rep);
    eog_add(v, v->fim_sep);
    for (size_t i = 0; i < n_names; i++) {
        int32_t id = find_cstr(v, eog_names[i]);
        if (id == TOK_NULL) continue;
        eog_add(v, id);
        force_control(v, id);
    }
    /* llama.cpp's gpt-oss workaround: these are always rendered */
    static const char *const gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>",
                                          "<|constrain|>", NULL};
    for (size_t i = 0; gpt_oss[i]; i++) {
        int32_t id = find_cstr(v, gpt_oss[i]);
        if (id != TOK_NULL) v->attr[id] = TOK_ATTR_USER_DEFINED;
    }
    eog_add(v, v->eos);
    eog_add(v, v->eot);
    eog_add(v, v->eom);

    /* o200k_harmony / solar-open: <|end|> does not end generation there */
    bool has_return = false, has_call = false, has_flush = false, has_tool_response = false;
    int32_t end_id = TOK_NULL, s_id = TOK_NULL;
    for (size_t i = 0; i < v->n_eog; i++) {
        int32_t id = v->eog[i];
        if (text_is(v, id, "<|return|>"))
            has_return = true;
        else if (text_is(v, id, "<|call|>") || text_is(v, id, "<|calls|>"))
            has_call = true;
        else if (text_is(v, id, "<|flush|>"))
            has_flush = true;
        else if (text_is(v, id, "<|end|>"))
            end_id = id;
    }
    if (end_id != TOK_NULL && ((has_return && has_call) || (has_call && has_flush))) {
        eog_remove(v, end_id);
        v->attr[end_id] = TOK_ATTR_USER_DEFINED;
    }
    /* gemma4 / paddleocr: </s> is not an end there */
    for (size_t i = 0; i < v->n_eog; i++) {
        int32_t id = v->eog[i];
        if (text_is(v, id, "<|tool_response>"))
            has_tool_response = true;
        else if (text_is(v, id, "</s>"))
            s_id = id;
    }
    if (has_tool_response && s_id != TOK_NULL) {
        eog_remove(v, s_id);
        v->attr[s_id] = TOK_ATTR_NORMAL;
    }
    qsort(v->eog, v->n_eog, sizeof *v->eog, cmp_i32);
    return 0;
}

static int load_pieces(tok_vocab *v, chatd_error *err) {
    tok_buf b = {0};
    v->piece_off = malloc((size_t)v->n_tokens * sizeof *v->piece_off);
    v->piece_len = malloc((size_t)v->n_tokens * sizeof *v->piece_len);
    if (!v->piece_off || !v->piece_len) return OOM(err);
    for (int32_t id = 0; id < v->n_tokens; id++) {
        size_t at = b.len;
        if (build_piece(v, id, &b, err) != 0) {
            tok_buf_free(&b);
            return -1;
        }
        if (b.len >= UINT32_MAX) {
            tok_buf_free(&b);
            return chatd_errorf(err, "tokenizer: token pieces too large");
        }
        v->piece_off[id] = (uint32_t)at;
        v->piece_len[id] = (uint32_t)(b.len - at);
    }
    if (!b.data && tok_buf_append(&b, "", 0, err) != 0) return -1;
    v->piece_arena = b.data;
    return 0;
}

tok_vocab *tok_load(const gguf_file *f, chatd_error *err) {
    tok_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        OOM(err);
        return NULL;
    }
    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask = v->nl = TOK_NULL;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = TOK_NULL;

    gguf_str model, pre = {"", 0};
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, err) != 0) {
        chatd_error_prefix(err, "tokenizer");
        goto fail;
    }
    if (gguf_find(f, "tokenizer.ggml.pre")) {
        chatd_error e;
        if (gguf_get_str(f, "tokenizer.ggml.pre", &pre, &e) != 0) pre = (gguf_str){"", 0};
    }
    gguf_str_copy(model, v->model_name, sizeof v->model_name);
    gguf_str_copy(pre, v->pre_name, sizeof v->pre_name);

    if (str_is(model, "llama")) {
        v->kind = TOK_KIND_SPM;
        v->bos = 1;
        v->eos = 2;
        v->unk = 0;
        v->pre = TOK_PRE_NONE;
        v->add_space_prefix = true;
        v->clean_spaces = false;
        v->add_bos = true;
        v->add_eos = false;
    } else if (str_is(model, "gpt2")) {
        v->kind = TOK_KIND_BPE;
        v->bos = 11;
        v->eos = 11;
        v->add_space_prefix = false;
        v->clean_spaces = true;
        const pre_def *d = NULL;
        for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0]; i++)
            if (str_is(pre, pre_defs[i].name)) d = &pre_defs[i];
        if (!d) {
            chatd_errorf(err,
                         "tokenizer: unsupported BPE pre-tokenizer '%s' (supported: qwen2, "
                         "deepseek-r1-qwen, llama-bpe and their aliases)",
                         pre.len ? v->pre_name : "(none: llama.cpp's 'default')");
            goto fail;
        }
        v->pre = d->pre;
        v->ignore_merges = d->ignore_merges;
        v->add_bos = d->add_bos;
        v->clean_spaces = d->clean_spaces;
    } else {
        chatd_errorf(err, "tokenizer: unsupported tokenizer model '%s' (supported: llama, gpt2)",
                     v->model_name);
        goto fail;
    }
    read_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);

    if (load_tokens(v, f, err) != 0) goto fail;

    if (v->kind == TOK_KIND_BPE) {
        if (load_raw(v, err) != 0) goto fail;
        const gguf_value *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING);
        if (!merges) {
            chatd_errorf(err, "tokenizer: tokenizer.ggml.merges missing or not strings");
            goto fail;
        }
        if (tok_bpe_load_merges(v, merges, err) != 0) goto fail;
    } else {
        for (unsigned b = 0; b < 256; b++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            int32_t id = find_cstr(v, hex);
            if (id == TOK_NULL) {
                char c = (char)b;
                id = tok_lookup(v, &c, 1);
            }
            v->byte_tok[b] = id;
        }
        v->spm_word_cuts = true;
        for (int32_t id = 0; id < v->n_tokens && v->spm_word_cuts; id++) {
            const char *t = v->text_arena + v->text_off[id];
            uint32_t n = v->text_len[id];
            for (uint32_t i = 1; i + 3 <= n; i++)
                if (memcmp(t + i, "\xE2\x96\x81", 3) == 0 &&
                    !(i >= 3 && memcmp(t + i - 3, "\xE2\x96\x81", 3) == 0)) {
                    v->spm_word_cuts = false;
                    break;
                }
        }
    }

    /* the newline token: found before the special tokens are known, as in llama.cpp */
    if (v->kind == TOK_KIND_SPM) {
        v->nl = v->byte_tok['\n'] != TOK_NULL ? v->byte_tok['\n'] : v->pad;
    } else {
        tok_ids ids = {0};
        if (tok_encode(v, "\n", 1, false, false, &ids, err) != 0) goto fail;
        v->nl = ids.n ? ids.v[0] : v->pad;
        tok_ids_free(&ids);
    }

    if (load_special(v, f, err) != 0) goto fail;
    if (build_special(v, err) != 0) goto fail;
    if (load_pieces(v, err) != 0) goto fail;
    return v;

fail:
    tok_free(v);
    return NULL;
}

void tok_free(tok_vocab *v) {
    if (!v) return;
    free(v->text_arena);
    free(v->text_off);
    free(v->text_len);
    free(v->score);
    free(v->attr);
    free(v->piece_arena);
    free(v->piece_off);
    free(v->piece_len);
    tok_strmap_free(&v->text_map);
    free(v->raw_arena);
    free(v->raw_off);
    free(v->raw_len);
    tok_strmap_free(&v->raw_map);
    free(v->merges);
    free(v->merge_filter);
    free(v->merges_str);
    free(v->merges_str_index);
    free(v->merge_arena);
    free(v->special);
    free(v->special_rank);
    free(v->trie);
    free(v->eog);
    free(v);
}
