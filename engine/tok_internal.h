/* tok_internal.h - what the tokenizer's source files share: the vocab layout, hash maps,
 * Unicode helpers and the per-algorithm entry points. Not a public header. */
#ifndef CHATD_TOK_INTERNAL_H
#define CHATD_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/tokenizer.h"

/* ---- Unicode (tok_unicode.c, tok_unicode_data.c) ---- */

/* Code point categories, numbered as llama.cpp's unicode_cpt_flags so the splitters can
 * be compared with it line by line. */
enum {
    TOK_CPT_UNDEFINED = 0x01,
    TOK_CPT_NUMBER = 0x02,
    TOK_CPT_LETTER = 0x04,
    TOK_CPT_SEPARATOR = 0x08,
    TOK_CPT_MARK = 0x10,
    TOK_CPT_PUNCT = 0x20,
    TOK_CPT_SYMBOL = 0x40,
    TOK_CPT_CONTROL = 0x80,
};

/* (start << 8 | flags) for every run of code points with equal flags, ascending; the last
 * entry is 0x110000 with no flags. */
extern const uint32_t tok_ucd_ranges[];
extern const size_t tok_ucd_n_ranges;

/* Category flags of cpt; *hint caches the last range (start it at 0). */
uint8_t tok_cpt_flags(uint32_t cpt, size_t *hint);
/* llama.cpp's whitespace set (Unicode White_Space). */
bool tok_cpt_is_space(uint32_t cpt);
/* Decodes one code point the way llama.cpp's unicode_cpts_from_utf8 does: lenient about
 * overlong forms and surrogates, and an invalid or truncated sequence yields U+FFFD for
 * its first byte only. Advances *i. */
uint32_t tok_utf8_decode(const unsigned char *s, size_t n, size_t *i);
/* Writes the UTF-8 form of cpt (<= 0x10FFFF) into out; returns its length (1..4). */
size_t tok_utf8_encode(uint32_t cpt, unsigned char *out);
/* Length of the UTF-8 sequence a lead byte announces, llama.cpp's unicode_len_utf8. */
static inline size_t tok_utf8_len(unsigned char lead) {
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

/* ---- hashing and maps (tokenizer.c) ---- */

uint64_t tok_hash(const void *data, size_t len);

/* An open-addressing map from byte strings to ids. The keys live outside the map: key i
 * is arena[off[i] .. off[i] + len[i]). */
typedef struct tok_strmap {
    uint32_t *hash; /* [cap] low hash bits, for quick rejection */
    int32_t *id;    /* [cap] TOK_NULL when empty */
    uint32_t mask;
    const char *arena;
    const uint32_t *off;
    const uint32_t *len;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t n_keys, const char *arena, const uint32_t *off,
                    const uint32_t *len, chatd_error *err);
void tok_strmap_free(tok_strmap *m);
/* Inserts key id unless an equal key is present; returns the id already stored, or id. */
int32_t tok_strmap_insert(tok_strmap *m, int32_t id);
int32_t tok_strmap_find(const tok_strmap *m, const void *key, size_t len);

/* One BPE merge: the pair (left, right) of token ids merges into result at rank. */
typedef struct tok_merge {
    uint64_t key; /* left << 32 | right; UINT64_MAX when empty */
    int32_t rank;
    int32_t result; /* id of the merged text, TOK_NULL when it is not a token */
} tok_merge;

/* A merge whose halves are not both tokens: matched by bytes (rarely used). */
typedef struct tok_merge_str {
    uint32_t loff, llen, roff, rlen; /* into vocab->merge_arena, raw bytes */
    int32_t rank;
} tok_merge_str;

/* The special-token matcher: a byte trie over the texts of CONTROL, USER_DEFINED and
 * UNKNOWN tokens. */
typedef struct tok_trie_node {
    int32_t child;   /* first child, -1 if none */
    int32_t sibling; /* next sibling, -1 if none */
    int32_t id;      /* token ending here, TOK_NULL if none */
    unsigned char byte;
} tok_trie_node;

enum tok_pre {
    TOK_PRE_NONE = 0, /* SPM: no pre-tokenizer */
    TOK_PRE_LLAMA3,   /* llama.cpp's custom splitter for the Llama 3 regex (digits 1..3) */
    TOK_PRE_QWEN2,    /* the Qwen2 regex as llama.cpp runs it (single digits) */
};

struct tok_vocab {
    tok_kind kind;
    enum tok_pre pre;
    char model_name[32];
    char pre_name[64];
    int32_t n_tokens;

    /* token texts as stored in the file */
    char *text_arena;
    uint32_t *text_off, *text_len;
    float *score;
    uint32_t *attr;
    int32_t max_token_len;

    /* what llama_token_to_piece(special = true) gives, for every token */
    char *piece_arena;
    uint32_t *piece_off, *piece_len;

    tok_strmap text_map; /* stored text -> id */

    /* byte-level BPE: tokens are looked up by the raw bytes their text stands for */
    char *raw_arena;
    uint32_t *raw_off, *raw_len; /* raw_len UINT32_MAX: text is not byte-encodable */
    tok_strmap raw_map;
    unsigned char byte_enc[256][2]; /* GPT-2 bytes_to_unicode, as UTF-8 */
    unsigned char byte_enc_len[256];
    int32_t byte_tok[256]; /* BPE: token of a single raw byte; SPM: <0xXX> token */

    tok_merge *merges; /* open-addressing table */
    uint32_t merges_mask;
    uint64_t *merge_filter; /* Bloom filter over the table's keys */
    size_t merge_filter_mask;
    tok_merge_str *merges_str;
    size_t n_merges_str;
    uint32_t *merges_str_index; /* open addressing: merges_str index + 1, 0 when empty */
    size_t merges_str_mask;
    char *merge_arena;
    bool ignore_merges;
    bool spm_word_cuts; /* SPM: no token has "x▁" inside, so words merge independently */

    /* special tokens, sorted by text length (longest first) then id */
    int32_t *special;
    size_t n_special;
    int32_t *special_rank; /* [n_tokens] position in special[], -1 if not special */
    tok_trie_node *trie;
    size_t n_trie;
    bool special_first[256]; /* bytes a special token can start with */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_sep, add_space_prefix, clean_spaces;

    int32_t *eog;
    size_t n_eog;
};

/* ---- algorithms ---- */

/* Output of one call, shared by the algorithms. */
typedef struct tok_out {
    tok_ids *ids;
    chatd_error *err;
} tok_out;

/* The per-call cache of words already tokenized (and of merge lookups), private to one
 * tok_encode call so that calls on one vocab never share mutable state. Sized for a text
 * of text_len bytes; NULL when memory runs out. */
typedef struct tok_wcache tok_wcache;
tok_wcache *tok_wcache_new(size_t text_len);
void tok_wcache_free(tok_wcache *c);
/* Appends the cached ids of word w: 1 when found, 0 when not (*hash is then set for
 * tok_wcache_put), -1 when memory runs out. */
int tok_wcache_get(const tok_wcache *c, const char *w, size_t n, uint64_t *hash, tok_out *o);
/* Remembers w -> ids; a full cache or a failed allocation just skips (it only saves time). */
void tok_wcache_put(tok_wcache *c, const char *w, size_t n, uint64_t hash, const int32_t *ids,
                    size_t n_ids);

/* Byte-level BPE of one raw-text fragment (pre-tokenize, merge, append). */
int tok_bpe_fragment(const tok_vocab *v, const char *text, size_t len, tok_wcache *cache,
                     tok_out *out);
/* Writes the raw bytes a GPT-2 byte-encoded text stands for into out (room for n bytes);
 * their count, or SIZE_MAX when text is not such an encoding. */
size_t tok_gpt2_unbyte(const tok_vocab *v, const char *text, size_t n, char *out);
/* Builds the merge tables from tokenizer.ggml.merges. */
int tok_bpe_load_merges(tok_vocab *v, const gguf_value *merges, chatd_error *err);

/* SentencePiece of one fragment: text already carries its prefix space and "▁" escapes. */
int tok_spm_fragment(const tok_vocab *v, const char *text, size_t len, tok_wcache *cache,
                     tok_out *out);

/* Looks up a stored token text. */
static inline int32_t tok_lookup(const tok_vocab *v, const void *text, size_t len) {
    return tok_strmap_find(&v->text_map, text, len);
}

#endif
