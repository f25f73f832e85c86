/* cmd_tokenize.c - `chatd tokenize` and `chatd detokenize`: a model's tokenizer from the
 * command line, for checking what the model will see and for scripting.
 *
 *   chatd tokenize -m MODEL [--special] [--no-bos] [--pieces] TEXT|-
 *   chatd detokenize -m MODEL [--no-special] IDS...|-
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chatd/gguf.h"
#include "chatd/tokenizer.h"
#include "cli.h"

static void tokenize_usage(FILE *out) {
    fprintf(out,
            "usage: chatd tokenize -m MODEL [--special] [--no-bos] [--pieces] TEXT|-\n\n"
            "Prints the token ids of TEXT (or of standard input, for -) as a JSON array.\n\n"
            "  -m, --model MODEL  the GGUF model whose tokenizer to use\n"
            "  --special          read special-token text (e.g. <|im_end|>) as those tokens\n"
            "  --no-bos           do not add the BOS/EOS tokens the model adds by default\n"
            "  --pieces           print [{\"id\": N, \"piece\": TEXT}, ...] instead; a piece that\n"
            "                     is not valid UTF-8 is given as an array of byte values\n");
}

static void detokenize_usage(FILE *out) {
    fprintf(out,
            "usage: chatd detokenize -m MODEL [--no-special] IDS...|-\n\n"
            "Prints the text of token ids, given as arguments (\"1 2 3\", \"[1, 2, 3]\") or on\n"
            "standard input (-), followed by a newline.\n\n"
            "  -m, --model MODEL  the GGUF model whose tokenizer to use\n"
            "  --no-special       leave out control tokens (BOS, <|im_end|>, ...)\n");
}

/* Reads all of standard input; NULL on failure. */
static char *read_stdin(size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *p = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static tok_vocab *open_vocab(const char *cmd, const char *path) {
    chatd_error err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    if (!f) {
        fprintf(stderr, "chatd %s: %s: %s\n", cmd, path, err.msg);
        return NULL;
    }
    tok_vocab *v = tok_load(f, &err);
    gguf_close(f);
    if (!v) fprintf(stderr, "chatd %s: %s: %s\n", cmd, path, err.msg);
    return v;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t need = b < 0x80                   ? 1
                      : (b >= 0xC2 && b <= 0xDF) ? 2
                      : (b >= 0xE0 && b <= 0xEF) ? 3
                      : (b >= 0xF0 && b <= 0xF4) ? 4
                                                 : 0;
        if (need == 0 || i + need > n) return false;
        for (size_t k = 1; k < need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        if ((b == 0xE0 && s[i + 1] < 0xA0) || (b == 0xED && s[i + 1] > 0x9F) ||
            (b == 0xF0 && s[i + 1] < 0x90) || (b == 0xF4 && s[i + 1] > 0x8F))
            return false;
        i += need;
    }
    return true;
}

/* One piece as a JSON value: a string, or the byte values when it is not valid UTF-8
 * (as llama-server's /tokenize does). */
static cJSON *piece_json(const char *p, size_t n) {
    if (valid_utf8((const unsigned char *)p, n) && !memchr(p, '\0', n)) {
        char *s = malloc(n + 1);
        if (!s) return NULL;
        memcpy(s, p, n);
        s[n] = '\0';
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *b = cJSON_CreateNumber((unsigned char)p[i]);
        if (!b || !cJSON_AddItemToArray(arr, b)) {
            cJSON_Delete(b);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static char *ids_json(const tok_vocab *v, const tok_ids *ids, bool pieces) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < ids->n; i++) {
        cJSON *item;
        if (pieces) {
            size_t len;
            const char *p = tok_piece(v, ids->v[i], true, &len);
            cJSON *pj = piece_json(p, len);
            item = cJSON_CreateObject();
            if (!pj || !item || !cJSON_AddNumberToObject(item, "id", ids->v[i]) ||
                !cJSON_AddItemToObject(item, "piece", pj)) {
                cJSON_Delete(pj); /* not attached to item on any failure path */
                cJSON_Delete(item);
                item = NULL;
            }
        } else {
            item = cJSON_CreateNumber(ids->v[i]);
        }
        if (!item || !cJSON_AddItemToArray(arr, item)) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

int cmd_tokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        tokenize_usage(stdout);
        return 0;
    }
    const char *model = NULL, *text_arg = NULL;
    bool special = false, add_special = true, pieces = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(a, "--special") == 0) {
            special = true;
        } else if (strcmp(a, "--no-bos") == 0) {
            add_special = false;
        } else if (strcmp(a, "--pieces") == 0) {
            pieces = true;
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && !text_arg) {
            text_arg = argv[++i];
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && !text_arg) {
            text_arg = a;
        } else {
            fprintf(stderr, "chatd tokenize: unexpected argument '%s'\n\n", a);
            tokenize_usage(stderr);
            return 2;
        }
    }
    if (!model || !text_arg) {
        tokenize_usage(stderr);
        return 2;
    }

    size_t len;
    char *text;
    if (strcmp(text_arg, "-") == 0) {
        text = read_stdin(&len);
        if (!text) {
            fprintf(stderr, "chatd tokenize: cannot read standard input: %s\n", strerror(errno));
            return 1;
        }
    } else {
        len = strlen(text_arg);
        text = malloc(len + 1);
        if (!text) {
            fprintf(stderr, "chatd tokenize: out of memory\n");
            return 1;
        }
        memcpy(text, text_arg, len + 1);
    }

    tok_vocab *v = open_vocab("tokenize", model);
    if (!v) {
        free(text);
        return 1;
    }
    tok_ids ids = {0};
    chatd_error err = {{0}};
    int rc = 0;
    if (tok_encode(v, text, len, add_special, special, &ids, &err) != 0) {
        fprintf(stderr, "chatd tokenize: %s\n", err.msg);
        rc = 1;
    } else {
        char *out = ids_json(v, &ids, pieces);
        if (!out) {
            fprintf(stderr, "chatd tokenize: out of memory\n");
            rc = 1;
        } else {
            printf("%s\n", out);
            free(out);
        }
    }
    tok_ids_free(&ids);
    tok_free(v);
    free(text);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}

/* Appends every integer in s (separated by anything that is not a digit or '-'). */
static int parse_ids(const char *s, tok_ids *ids) {
    const char *p = s;
    while (*p) {
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            char *end;
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || errno || x < INT32_MIN || x > INT32_MAX) {
                fprintf(stderr, "chatd detokenize: not a token id: '%.20s'\n", p);
                return -1;
            }
            if (tok_ids_push(ids, (int32_t)x, NULL) != 0) {
                fprintf(stderr, "chatd detokenize: out of memory\n");
                return -1;
            }
            p = end;
        } else if (*p == ' ' || *p == ',' || *p == '[' || *p == ']' || *p == '\n' || *p == '\t' ||
                   *p == '\r') {
            p++;
        } else {
            fprintf(stderr, "chatd detokenize: not a token id: '%.20s'\n", p);
            return -1;
        }
    }
    return 0;
}

int cmd_detokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        detokenize_usage(stdout);
        return 0;
    }
    const char *model = NULL;
    bool special = true, from_stdin = false;
    tok_ids ids = {0};
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(a, "--no-special") == 0) {
            special = false;
        } else if (strcmp(a, "-") == 0) {
            from_stdin = true;
        } else if (a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) {
            fprintf(stderr, "chatd detokenize: unexpected argument '%s'\n\n", a);
            detokenize_usage(stderr);
            rc = 2;
        } else if (parse_ids(a, &ids) != 0) {
            rc = 2;
        }
    }
    if (rc == 0 && from_stdin) {
        size_t len;
        char *in = read_stdin(&len);
        if (!in) {
            fprintf(stderr, "chatd detokenize: cannot read standard input\n");
            rc = 1;
        } else {
            char *z = realloc(in, len + 1);
            if (!z) {
                free(in);
                fprintf(stderr, "chatd detokenize: out of memory\n");
                rc = 1;
            } else {
                z[len] = '\0';
                if (strlen(z) != len || parse_ids(z, &ids) != 0) rc = 2;
                free(z);
            }
        }
    }
    if (rc == 0 && !model) {
        detokenize_usage(stderr);
        rc = 2;
    }
    if (rc != 0) {
        tok_ids_free(&ids);
        return rc;
    }

    tok_vocab *v = open_vocab("detokenize", model);
    if (!v) {
        tok_ids_free(&ids);
        return 1;
    }
    tok_buf text = {0};
    chatd_error err = {{0}};
    if (tok_decode(v, ids.v, ids.n, special ? TOK_DECODE_SPECIAL : 0, &text, &err) != 0) {
        fprintf(stderr, "chatd detokenize: %s\n", err.msg);
        rc = 1;
    } else {
        fwrite(text.data, 1, text.len, stdout);
        fputc('\n', stdout);
        if (fflush(stdout) != 0) rc = 1;
    }
    tok_buf_free(&text);
    tok_ids_free(&ids);
    tok_free(v);
    return rc;
}
