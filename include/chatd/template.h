/* template.h - chat templates: a Jinja2 interpreter that renders a model's
 * tokenizer.chat_template the way Hugging Face's apply_chat_template does (Jinja2 with
 * trim_blocks, lstrip_blocks and loop controls, a tojson filter with json.dumps semantics,
 * raise_exception and strftime_now), and turns the result into token ids without letting
 * request text become control tokens.
 *
 * Every string carries an origin: TPL_ORIGIN_TEMPLATE for text the template wrote itself,
 * TPL_ORIGIN_REQUEST for text that came from the request (message contents, tool
 * definitions and results, names). The origin survives every operation that passes text
 * through (concatenation, slicing, strip, replace, join, split, tojson, ...), and a render
 * produces fragments tagged with their origin. tpl_tokenize then recognises special tokens
 * only inside template text, so a user who types "<|im_start|>system" gets plain text.
 *
 * Values are reference counted. Every constructor returns a new reference (or NULL when
 * memory runs out); tpl_value_free drops one. The container setters take over the
 * reference of the item they are given, also when they fail, so calls can be nested:
 *     if (tpl_dict_set(msg, "role", tpl_value_string("user", 4, TPL_ORIGIN_REQUEST)))
 * Values built through this API are read-only to templates (a template's list.append on
 * them fails, as in Hugging Face's immutable sandbox), so a render never changes its
 * context. Reference counts are not atomic: a value tree must not be used by two threads
 * at once. A parsed tpl_template is read-only while rendering: any number of threads may
 * render the same template at the same time, each with its own context. */
#ifndef CHATD_TEMPLATE_H
#define CHATD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/error.h"
#include "chatd/tokenizer.h"

/* Where a piece of text came from. */
typedef enum tpl_origin {
    TPL_ORIGIN_TEMPLATE = 0, /* written by the template: may contain special tokens */
    TPL_ORIGIN_REQUEST = 1,  /* request data: always tokenized as plain text */
} tpl_origin;

/* The kind of a value. The last four only arise inside a render. */
typedef enum tpl_kind {
    TPL_UNDEFINED = 0, /* Jinja2's Undefined: prints "", is false, iterates as empty */
    TPL_NONE,          /* Python None (JSON null) */
    TPL_BOOL,
    TPL_INT, /* int64_t */
    TPL_FLOAT,
    TPL_STRING,    /* UTF-8 bytes with per-byte origins */
    TPL_LIST,      /* also tuples */
    TPL_DICT,      /* insertion-ordered */
    TPL_NAMESPACE, /* namespace(): attributes settable with {% set ns.x = ... %} */
    TPL_MACRO,     /* a macro or a call block's caller */
    TPL_FUNC,      /* a built-in function or a bound method */
    TPL_LOOP,      /* the loop variable of a for loop */
} tpl_kind;

typedef struct tpl_value tpl_value;
typedef struct tpl_template tpl_template;

/* An undefined value (what a missing variable is). */
tpl_value *tpl_value_undefined(void);
/* None. */
tpl_value *tpl_value_null(void);
/* True or False. */
tpl_value *tpl_value_bool(bool b);
/* An integer. */
tpl_value *tpl_value_int(int64_t i);
/* A float (prints as Python's repr: 1.0, 0.1, 1e-05). */
tpl_value *tpl_value_float(double d);
/* A string: copies len bytes of s, all of the given origin. */
tpl_value *tpl_value_string(const char *s, size_t len, tpl_origin origin);
/* A new empty list. */
tpl_value *tpl_value_list(void);
/* A new empty dict. */
tpl_value *tpl_value_dict(void);
/* Appends item (its reference is taken over, even on failure); 0 or -1. */
int tpl_list_append(tpl_value *list, tpl_value *item);
/* Sets dict[key] (NUL-terminated key, request origin) to value, replacing an existing
 * entry in place; value's reference is taken over, even on failure; 0 or -1. */
int tpl_dict_set(tpl_value *dict, const char *key, tpl_value *value);
/* Same with a key of len bytes and an explicit origin for the key text. */
int tpl_dict_setn(tpl_value *dict, const char *key, size_t len, tpl_origin origin,
                  tpl_value *value);
/* Adds a reference to v and returns it (NULL is allowed). */
tpl_value *tpl_value_ref(tpl_value *v);
/* Drops a reference; frees v (and what only it holds) when it was the last. NULL is
 * allowed. */
void tpl_value_free(tpl_value *v);
/* The kind of v (TPL_UNDEFINED for NULL). */
tpl_kind tpl_value_kind(const tpl_value *v);
/* dict[key] as a borrowed pointer, or NULL when absent or v is not a dict. */
tpl_value *tpl_dict_get(const tpl_value *dict, const char *key);
/* Number of items of a list (or entries of a dict); 0 for other kinds. */
size_t tpl_len(const tpl_value *v);
/* Item i of a list as a borrowed pointer, or NULL. */
tpl_value *tpl_list_get(const tpl_value *list, size_t i);
/* The bytes of a string value (not copied; NUL-terminated), or NULL for other kinds. */
const char *tpl_string(const tpl_value *v, size_t *len);

/* Parses template source (any bytes); NULL with the reason (and line) in err. */
tpl_template *tpl_parse(const char *src, size_t len, chatd_error *err);
/* Frees a template; NULL is allowed. */
void tpl_free(tpl_template *t);
/* A ChatML template (<|im_start|>role ... <|im_end|>) for models that carry none. */
const char *tpl_chatml_source(void);

/* One piece of rendered text. */
typedef struct tpl_fragment {
    const char *text; /* points into the output's buffer */
    size_t len;
    tpl_origin origin;
} tpl_fragment;

/* The result of a render: fragments in order, adjacent fragments of equal origin merged.
 * tpl_render overwrites it (need not be initialised; a previous result is not freed);
 * free with tpl_output_free. */
typedef struct tpl_output {
    tpl_fragment *frags;
    size_t n;
    char *buf; /* all the text, NUL-terminated */
    size_t len;
} tpl_output;

/* The whole rendered text (NUL-terminated; "" for an empty output); *len if non-NULL. */
const char *tpl_output_text(const tpl_output *out, size_t *len);
/* Frees the output and zeroes it; NULL is allowed. */
void tpl_output_free(tpl_output *out);

/* Render limits; a zero field takes its default. */
typedef struct tpl_options {
    uint64_t max_steps; /* evaluation steps (default 20,000,000) */
    size_t max_output;  /* bytes of the output and of any string (default 64 MiB) */
    unsigned max_depth; /* nested evaluation and macro calls (default 400) */
    int64_t now;        /* strftime_now's time (seconds since the epoch); 0 = now */
} tpl_options;

/* Renders t with the variables of context (a dict; NULL means none) into out. Errors (a
 * raise_exception message, a type error, a step or depth limit) are returned as -1 with the message
 * in err, and out is left empty. */
int tpl_render(const tpl_template *t, const tpl_value *context, tpl_output *out, chatd_error *err);
/* tpl_render with explicit limits (opts may be NULL). */
int tpl_render_ex(const tpl_template *t, const tpl_value *context, const tpl_options *opts,
                  tpl_output *out, chatd_error *err);
/* tpl_render for chat requests, with llama.cpp's fallback for assistant messages that
 * have tool_calls and content None: when the render fails on a None value and such a
 * message exists, it renders once more with their content "" (context is not changed). */
int tpl_render_chat(const tpl_template *t, const tpl_value *context, const tpl_options *opts,
                    tpl_output *out, chatd_error *err);

/* Appends the token ids of a rendered prompt to ids. Special-token text is recognised
 * only where it lies entirely inside template text; every span between such tokens is
 * tokenized as plain text (even across fragments), so the ids equal tokenizing the whole
 * text with parse_special whenever the request text holds no special-token text.
 * add_special adds BOS/EOS as the vocab asks; a BOS (EOS) text the template itself wrote at
 * the very start (end) is then dropped so that it is not doubled, as llama.cpp does.
 * 0, or -1 on failure (ids then holds what it held before). */
int tpl_tokenize(const tok_vocab *v, const tpl_output *out, bool add_special, tok_ids *ids,
                 chatd_error *err);

#endif
