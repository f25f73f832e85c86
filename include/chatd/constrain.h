/* constrain.h - constrained decoding: which tokens may come next so that the output
 * stays inside a grammar (a JSON Schema, a tool-call format, a thinking block).
 *
 * Three layers. A cons_grammar is a tree of nodes built by the caller (server/ turns a
 * JSON Schema or a tool list into one; this module knows no JSON library). A
 * cons_program compiles a grammar against a vocabulary (cons_vocab: the byte text of
 * every token, a byte trie over them and token classes, built once per model) and is
 * shared, read-only, by the matchers of one request's choices. A cons_matcher follows
 * one generation: a small set of deterministic stack machines (more than one only while
 * an anyOf or a choice of alternatives is undecided) fed one byte at a time.
 *
 * Each step cons_allowed() fills a bitmask of the tokens that keep the output on a path
 * to a complete match: a walk of the token trie that copies the matcher state down each
 * branch and prunes at the first impossible byte, with a precomputed class of tokens
 * ("plain" string or free-text bytes) admitted wholesale so that a string body does not
 * walk 150,000 tokens. It also keeps a budget: given how many tokens may still be
 * generated, a token is allowed only if the shortest completion after it still fits, so
 * that the output always closes (every byte is a token in byte-level vocabularies).
 *
 * JSON is matched in a bounded form: between tokens one space, or a newline and up to
 * CONS_MAX_WS spaces or tabs; numbers of at most CONS_MAX_DIGITS digits in each part;
 * free values nested to CONS_MAX_ANY_DEPTH; so a model with no sense of an ending still
 * ends. */
#ifndef CHATD_CONSTRAIN_H
#define CHATD_CONSTRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/error.h"
#include "chatd/tokenizer.h"

#define CONS_MAX_WS        16  /* indentation after a newline between two JSON tokens */
#define CONS_MAX_DIGITS    16  /* digits in the integer, fraction or exponent of a number */
#define CONS_MAX_ANY_DEPTH 8   /* nesting of free values ({"type":"object"} with no schema) */
#define CONS_MAX_PROPS     64  /* properties of one object node */
#define CONS_MAX_LITERALS  256 /* values of one enum */

typedef struct cons_grammar cons_grammar;
typedef int32_t cons_node; /* index of a node in its grammar; -1 means an error occurred */

/* String formats that can be enforced. */
typedef enum cons_format {
    CONS_FMT_NONE = 0,
    CONS_FMT_DATE,      /* 2024-01-31 */
    CONS_FMT_TIME,      /* 13:45:00, optional fraction, Z or +hh:mm */
    CONS_FMT_DATE_TIME, /* date "T" time */
    CONS_FMT_UUID,      /* 8-4-4-4-12 hex digits */
} cons_format;

/* ---- building a grammar ----
 * Every builder returns the new node's index, or -1 with the reason kept in the grammar
 * (cons_grammar_error); later calls given -1 return -1, so a caller may check once. */

/* A new, empty grammar; NULL with a message when memory runs out. */
cons_grammar *cons_grammar_new(chatd_error *err);
/* Frees a grammar; NULL is allowed. */
void cons_grammar_free(cons_grammar *g);
/* The first error met while building, or NULL. */
const char *cons_grammar_error(const cons_grammar *g);

/* Any JSON value (objects and arrays nested up to CONS_MAX_ANY_DEPTH). */
cons_node cons_any(cons_grammar *g);
/* null. */
cons_node cons_null(cons_grammar *g);
/* true or false. */
cons_node cons_boolean(cons_grammar *g);
/* A JSON string of min_len..max_len characters (max_len -1 = no limit) in format fmt. */
cons_node cons_string(cons_grammar *g, int64_t min_len, int64_t max_len, cons_format fmt);
/* A JSON number (integer or decimal, optional exponent). */
cons_node cons_number(cons_grammar *g);
/* A JSON integer, within [min, max] where has_min / has_max say. */
cons_node cons_integer(cons_grammar *g, bool has_min, int64_t min, bool has_max, int64_t max);
/* Exactly one of n JSON texts, given compact (enum and const: `"red"`, `3`, `null`). */
cons_node cons_literals(cons_grammar *g, const char *const *json_texts, size_t n);
/* An array of items, min_items..max_items long (max -1 = no limit). */
cons_node cons_array(cons_grammar *g, cons_node items, int64_t min_items, int64_t max_items);
/* An object; properties are added with cons_object_prop. Keys not declared are allowed
 * with values matching additional, or refused when additional is -1. */
cons_node cons_object(cons_grammar *g, cons_node additional);
/* Declares a property of an object node (any order in the output; each at most once). */
int cons_object_prop(cons_grammar *g, cons_node object, const char *name, cons_node value,
                     bool required);
/* One of n alternatives (JSON Schema anyOf / oneOf, or alternative tool calls). */
cons_node cons_any_of(cons_grammar *g, const cons_node *alts, size_t n);
/* Exactly these bytes (not JSON: a tag such as "<tool_call>\n"). */
cons_node cons_text(cons_grammar *g, const char *text, size_t len);
/* Any text that does not contain end, followed by end (a thinking block's body). */
cons_node cons_until(cons_grammar *g, const char *end);
/* The items one after another. */
cons_node cons_seq(cons_grammar *g, const cons_node *items, size_t n);
/* item repeated min..max times (max -1 = no limit), with sep (or -1) between. */
cons_node cons_repeat(cons_grammar *g, cons_node item, cons_node sep, int64_t min, int64_t max);
/* Optional whitespace (up to CONS_MAX_WS bytes), e.g. between a tag and a JSON value. */
cons_node cons_ws(cons_grammar *g);

/* ---- vocabulary ---- */

typedef struct cons_vocab cons_vocab;

/* Precomputes the byte text of every token, a trie over them and the token classes.
 * Once per model; read-only afterwards (any number of threads). NULL with a message. */
cons_vocab *cons_vocab_new(const tok_vocab *v, chatd_error *err);
/* Frees it; NULL is allowed. */
void cons_vocab_free(cons_vocab *cv);

/* ---- programs and matchers ---- */

typedef struct cons_program cons_program;
typedef struct cons_matcher cons_matcher;

/* Compiles the grammar whose top node is root for vocabulary cv (which must outlive the
 * program). The grammar may be freed afterwards. NULL with a message. */
cons_program *cons_compile(const cons_grammar *g, cons_node root, const cons_vocab *cv,
                           chatd_error *err);
/* Drops a reference to a program (the creator holds one; each matcher holds one). */
void cons_program_release(cons_program *p);

/* A matcher at the start of the program's grammar; NULL with a message. */
cons_matcher *cons_matcher_new(cons_program *p, chatd_error *err);
/* Frees a matcher; NULL is allowed. */
void cons_matcher_free(cons_matcher *m);

/* Words of the mask cons_allowed fills: one bit per token. */
size_t cons_mask_words(const cons_matcher *m);
/* Sets bit id of mask[cons_mask_words] for every token that may come next, given that
 * at most budget tokens (this one included; < 0 = no limit) may still be generated.
 * End-of-generation tokens are allowed when the output is complete. Returns how many
 * tokens are allowed (0 only if the budget cannot be met at all). */
int64_t cons_allowed(cons_matcher *m, int64_t budget, uint32_t *mask);
/* The id of the k-th allowed token (counting from 0 in id order) of a mask of words
 * words, or -1 when fewer are allowed. */
int32_t cons_mask_nth(const uint32_t *mask, size_t words, int64_t k);
/* Advances over token id (an end-of-generation token is accepted when complete); 0, or
 * -1 when the token is not allowed (the matcher is then unchanged). */
int cons_advance(cons_matcher *m, int32_t id);
/* Advances over raw bytes (for tests and for text forced into the output); 0, or -1
 * when they cannot continue the output (the matcher is then unchanged). */
int cons_advance_bytes(cons_matcher *m, const char *bytes, size_t len);
/* Shortest number of bytes that completes the output from here (0 when complete; -1
 * when the matcher is dead). */
int64_t cons_remaining(const cons_matcher *m);
/* True when the output so far is a complete match. */
bool cons_complete(const cons_matcher *m);
/* True when the output is complete and nothing may follow: generation should end. */
bool cons_finished(const cons_matcher *m);

#endif
