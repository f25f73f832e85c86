/* tokenizer.h - text to token ids and back, exactly as llama.cpp (src/llama-vocab.cpp) does.
 *
 * A tok_vocab is built once from a GGUF file's tokenizer.ggml.* metadata and is then
 * read-only: any number of threads may encode and decode with one vocab at the same time
 * (every call keeps its scratch state, including its merge cache, to itself).
 *
 * Supported: byte-level BPE (tokenizer.ggml.model "gpt2") with the qwen2 / deepseek-r1-qwen
 * and llama-bpe (Llama 3) pre-tokenizers and their aliases, and SentencePiece BPE
 * (tokenizer.ggml.model "llama") with scores, byte fallback and the leading-space rule.
 * Special and added tokens (CONTROL, USER_DEFINED) are recognised in text only when the
 * caller asks for it; the end-of-generation set is derived from the token texts as
 * llama.cpp derives it.
 *
 * Token ids are int32_t; TOK_NULL (-1) means "no such token". Output goes into growable
 * buffers that the caller owns (tok_ids, tok_buf); the functions append to them. */
#ifndef CHATD_TOKENIZER_H
#define CHATD_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/error.h"
#include "chatd/gguf.h"

#define TOK_NULL (-1)

typedef struct tok_vocab tok_vocab;

/* The tokenizer algorithm of a vocabulary. */
typedef enum tok_kind {
    TOK_KIND_SPM = 1, /* SentencePiece BPE with scores ("llama") */
    TOK_KIND_BPE = 2, /* byte-level BPE with merges ("gpt2") */
} tok_kind;

/* Token attributes, bit for bit as llama.cpp's llama_token_attr. */
enum {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_NORMALIZED = 1 << 6,
    TOK_ATTR_LSTRIP = 1 << 7,
    TOK_ATTR_RSTRIP = 1 << 8,
    TOK_ATTR_SINGLE_WORD = 1 << 9,
};

/* Flags for tok_decode. */
enum {
    TOK_DECODE_SPECIAL = 1 << 0,        /* render CONTROL/UNKNOWN tokens (otherwise hidden) */
    TOK_DECODE_REMOVE_SPECIAL = 1 << 1, /* drop a leading BOS / trailing EOS the model adds */
    TOK_DECODE_STRIP_PREFIX = 1 << 2,   /* drop the SentencePiece leading space of the text */
    TOK_DECODE_CLEAN_SPACES = 1 << 3,   /* " ," -> "," etc., if the vocab asks for it */
};
/* What llama_detokenize(..., remove_special=false, unparse_special) does, as one flag set. */
#define TOK_DECODE_LLAMA (TOK_DECODE_STRIP_PREFIX | TOK_DECODE_CLEAN_SPACES)

/* A growable array of token ids; zero-initialise, append with tok_encode, free with
 * tok_ids_free. */
typedef struct tok_ids {
    int32_t *v;
    size_t n;
    size_t cap;
} tok_ids;

/* A growable byte buffer (always NUL-terminated after a successful append). */
typedef struct tok_buf {
    char *data;
    size_t len;
    size_t cap;
} tok_buf;

/* Frees the array and zeroes it; NULL is allowed. */
void tok_ids_free(tok_ids *ids);
/* Appends one id; 0, or -1 when memory runs out. */
int tok_ids_push(tok_ids *ids, int32_t id, chatd_error *err);
/* Frees the buffer and zeroes it; NULL is allowed. */
void tok_buf_free(tok_buf *b);
/* Appends n bytes; 0, or -1 when memory runs out. */
int tok_buf_append(tok_buf *b, const void *data, size_t n, chatd_error *err);

/* Builds the tokenizer of a GGUF file; copies everything, so f may be closed afterwards.
 * NULL (with the reason in err) for a missing, malformed or unsupported tokenizer. */
tok_vocab *tok_load(const gguf_file *f, chatd_error *err);
/* Frees a vocab; NULL is allowed. */
void tok_free(tok_vocab *v);

/* Tokenizes text (len bytes, any bytes, invalid UTF-8 handled as llama.cpp does) and
 * appends the ids to out. add_special adds BOS/EOS as the model asks; parse_special turns
 * the text of CONTROL tokens into those tokens (USER_DEFINED tokens are always matched).
 * 0, or -1 on failure (out then holds what it held before the call). */
int tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
               bool parse_special, tok_ids *out, chatd_error *err);

/* The bytes of token id as llama_token_to_piece gives them (not NUL-terminated; may be
 * partial UTF-8): CONTROL/UNKNOWN tokens are empty unless special. NULL for a bad id. */
const char *tok_piece(const tok_vocab *v, int32_t id, bool special, size_t *len);
/* Appends the text of ids to out (TOK_DECODE_* flags); -1 for an id outside the vocab. */
int tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags, tok_buf *out,
               chatd_error *err);

/* A streaming decoder: feed ids one at a time, get only complete UTF-8 back. An incomplete
 * multi-byte sequence is held until its last byte arrives; bytes that can never form a
 * character come out as U+FFFD, so the output is always valid UTF-8. Plain struct:
 * initialise with tok_stream_init, no cleanup needed. */
typedef struct tok_stream {
    const tok_vocab *v;
    bool special;          /* render CONTROL tokens */
    unsigned char held[4]; /* the incomplete sequence being held back */
    size_t n_held;
} tok_stream;

/* Starts a stream over v; special renders CONTROL/UNKNOWN tokens' text. */
void tok_stream_init(tok_stream *s, const tok_vocab *v, bool special);
/* Appends what token id completes to out; -1 for a bad id or out of memory. */
int tok_stream_push(tok_stream *s, int32_t id, tok_buf *out, chatd_error *err);
/* Same for raw bytes (e.g. text not produced by a token). */
int tok_stream_push_bytes(tok_stream *s, const void *bytes, size_t n, tok_buf *out,
                          chatd_error *err);
/* Ends the stream: a still-incomplete sequence becomes U+FFFD. */
int tok_stream_flush(tok_stream *s, tok_buf *out, chatd_error *err);
/* Number of bytes currently held back. */
size_t tok_stream_pending(const tok_stream *s);

/* An occurrence of a special token in a text, for tok_select_specials. */
typedef struct tok_match {
    size_t rank; /* the token's priority: lower ranks are cut first */
    size_t pos, len;
} tok_match;

/* Keeps the occurrences llama.cpp cuts out of a text of len bytes: token by token in rank
 * order, the leftmost non-overlapping ones in text not yet taken. The kept ones end up
 * first in m, by position. Returns how many, or -1 when memory runs out. */
long tok_select_specials(tok_match *m, size_t n, size_t len, chatd_error *err);

/* Number of tokens in the vocabulary. */
int32_t tok_n_vocab(const tok_vocab *v);
/* SPM or BPE. */
tok_kind tok_vocab_kind(const tok_vocab *v);
/* tokenizer.ggml.model, e.g. "gpt2". */
const char *tok_model_name(const tok_vocab *v);
/* tokenizer.ggml.pre, e.g. "qwen2" ("" when absent). */
const char *tok_pre_name(const tok_vocab *v);
/* The stored text of a token (not NUL-terminated); NULL for a bad id. */
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len);
/* The id whose stored text is exactly text[0..len), or TOK_NULL. */
int32_t tok_find(const tok_vocab *v, const char *text, size_t len);
/* TOK_ATTR_* bits of a token after llama.cpp's load-time fix-ups (0 for a bad id). */
uint32_t tok_attr(const tok_vocab *v, int32_t id);
/* SentencePiece score of a token (0 when the file has none or the id is bad). */
float tok_score(const tok_vocab *v, int32_t id);
/* True when id is a CONTROL token. */
bool tok_is_control(const tok_vocab *v, int32_t id);
/* True when generating id ends the reply (EOS, EOT, <|im_end|>, <|eot_id|>, ...). */
bool tok_is_eog(const tok_vocab *v, int32_t id);
/* The end-of-generation ids, ascending; returns how many. */
size_t tok_eog_ids(const tok_vocab *v, const int32_t **ids);
/* Beginning-of-sequence id, or TOK_NULL. */
int32_t tok_bos(const tok_vocab *v);
/* End-of-sequence id, or TOK_NULL. */
int32_t tok_eos(const tok_vocab *v);
/* End-of-turn id (from the file, else found by text as llama.cpp does), or TOK_NULL. */
int32_t tok_eot(const tok_vocab *v);
/* End-of-message id (<|eom_id|>), or TOK_NULL. */
int32_t tok_eom(const tok_vocab *v);
/* Padding id, or TOK_NULL. */
int32_t tok_pad(const tok_vocab *v);
/* Unknown-token id, or TOK_NULL. */
int32_t tok_unk(const tok_vocab *v);
/* Newline token id, or TOK_NULL. */
int32_t tok_nl(const tok_vocab *v);
/* True when encoding with add_special prepends BOS. */
bool tok_add_bos(const tok_vocab *v);
/* True when encoding with add_special appends EOS. */
bool tok_add_eos(const tok_vocab *v);
/* True when the SentencePiece leading-space rule applies. */
bool tok_add_space_prefix(const tok_vocab *v);

#endif
