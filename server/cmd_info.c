/* cmd_info.c - `chatd info MODEL.gguf`: what a user wants to know about a model file,
 * as text or (--json) for scripts; --tensors lists the tensor directory. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/model.h"
#include "chatd/quant.h"
#include "cli.h"

static void info_usage(FILE *out) {
    fprintf(out, "usage: chatd info [--json] [--tensors] MODEL.gguf\n\n"
                 "Prints the architecture, parameter count, file size, tensor types, context\n"
                 "length, shape, tokenizer, special tokens and chat template of a model file.\n"
                 "  --json      machine-readable output\n"
                 "  --tensors   also list every tensor (name, type, shape, bytes)\n");
}

/* The text of token id in the file's vocabulary, or NULL. */
static gguf_str info_token_text(const gguf_file *f, int64_t id) {
    gguf_str none = {NULL, 0};
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING);
    if (!toks || id < 0 || (uint64_t)id >= toks->v.arr.n) return none;
    return toks->v.arr.items[id].v.str;
}

static cJSON *info_str(gguf_str s) {
    char *buf = malloc(s.len + 1);
    if (!buf) return cJSON_CreateNull();
    gguf_str_copy(s, buf, s.len + 1);
    cJSON *j = cJSON_CreateString(buf);
    free(buf);
    return j;
}

/* Adds tokenizer facts (kind, pre-tokenizer, size, special ids) to obj. */
static void info_tokenizer(const gguf_file *f, cJSON *obj) {
    gguf_str s;
    cJSON *tok = cJSON_AddObjectToObject(obj, "tokenizer");
    if (gguf_get_str(f, "tokenizer.ggml.model", &s, NULL) == 0)
        cJSON_AddItemToObject(tok, "model", info_str(s));
    if (gguf_get_str(f, "tokenizer.ggml.pre", &s, NULL) == 0)
        cJSON_AddItemToObject(tok, "pre", info_str(s));
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING);
    cJSON_AddNumberToObject(tok, "vocab_size", toks ? (double)toks->v.arr.n : 0);
    const gguf_value *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING);
    if (merges) cJSON_AddNumberToObject(tok, "merges", (double)merges->v.arr.n);
    static const char *ids[][2] = {{"bos", "tokenizer.ggml.bos_token_id"},
                                   {"eos", "tokenizer.ggml.eos_token_id"},
                                   {"eot", "tokenizer.ggml.eot_token_id"},
                                   {"unk", "tokenizer.ggml.unknown_token_id"},
                                   {"pad", "tokenizer.ggml.padding_token_id"}};
    cJSON *special = cJSON_AddObjectToObject(tok, "special");
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int64_t id;
        if (gguf_get_int(f, ids[i][1], &id, NULL) != 0) continue;
        cJSON *e = cJSON_AddObjectToObject(special, ids[i][0]);
        cJSON_AddNumberToObject(e, "id", (double)id);
        gguf_str t = info_token_text(f, id);
        if (t.ptr) cJSON_AddItemToObject(e, "text", info_str(t));
    }
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, NULL) == 0)
        cJSON_AddBoolToObject(tok, "add_bos", b);
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b, NULL) == 0)
        cJSON_AddBoolToObject(tok, "add_eos", b);
}

/* Counts tensors per type into a JSON object {"Q8_0": n, ...}. */
static cJSON *info_type_mix(const gguf_file *f) {
    cJSON *mix = cJSON_CreateObject();
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        char buf[32];
        const char *name = qtype_name(f->tensors[i].type, buf, sizeof buf);
        cJSON *n = cJSON_GetObjectItemCaseSensitive(mix, name);
        if (n)
            cJSON_SetNumberValue(n, n->valuedouble + 1);
        else
            cJSON_AddNumberToObject(mix, name, 1);
    }
    return mix;
}

static cJSON *info_tensors(const gguf_file *f) {
    cJSON *arr = cJSON_CreateArray();
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char buf[32];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "name", info_str(t->name));
        cJSON_AddStringToObject(e, "type", qtype_name(t->type, buf, sizeof buf));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (uint32_t d = 0; d < t->n_dims; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[d]));
        cJSON_AddNumberToObject(e, "offset", (double)(f->data_offset + t->offset));
        cJSON_AddNumberToObject(e, "bytes", (double)t->nbytes);
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

/* Everything `chatd info` reports, as one JSON object (text output is printed from it). */
static cJSON *info_build(const char *path, const model *m, bool tensors) {
    const gguf_file *f = m->file;
    const model_hparams *hp = &m->hp;
    cJSON *o = cJSON_CreateObject();
    gguf_str s;
    cJSON_AddStringToObject(o, "path", path);
    if (gguf_get_str(f, "general.name", &s, NULL) == 0)
        cJSON_AddItemToObject(o, "name", info_str(s));
    cJSON_AddStringToObject(o, "architecture", hp->arch_name);
    cJSON_AddNumberToObject(o, "gguf_version", f->version);
    cJSON_AddNumberToObject(o, "parameters", (double)m->n_params);
    cJSON_AddNumberToObject(o, "file_size", (double)f->size);
    cJSON_AddItemToObject(o, "tensor_types", info_type_mix(f));
    cJSON_AddNumberToObject(o, "context_length", (double)hp->n_ctx_train);
    cJSON_AddNumberToObject(o, "layers", (double)hp->n_layer);
    cJSON_AddNumberToObject(o, "embedding_length", (double)hp->n_embd);
    cJSON_AddNumberToObject(o, "feed_forward_length", (double)hp->n_ff);
    cJSON_AddNumberToObject(o, "heads", (double)hp->n_head);
    cJSON_AddNumberToObject(o, "kv_heads", (double)hp->n_head_kv);
    cJSON_AddNumberToObject(o, "key_length", (double)hp->head_dim_k);
    cJSON_AddNumberToObject(o, "value_length", (double)hp->head_dim_v);
    cJSON_AddNumberToObject(o, "rope_dimensions", (double)hp->n_rot);
    cJSON_AddStringToObject(o, "rope_style", hp->rope_style == MODEL_ROPE_NEOX ? "neox" : "norm");
    cJSON_AddNumberToObject(o, "rope_freq_base", hp->rope_freq_base);
    cJSON_AddBoolToObject(o, "rope_freqs", hp->has_rope_freqs);
    cJSON_AddNumberToObject(o, "rms_epsilon", hp->rms_eps);
    cJSON_AddBoolToObject(o, "tied_output", hp->tied_output);
    cJSON_AddBoolToObject(o, "qkv_bias", hp->has_qkv_bias);
    cJSON_AddBoolToObject(o, "qk_norm", hp->has_qk_norm);
    cJSON_AddNumberToObject(o, "vocab_size", (double)hp->n_vocab);
    info_tokenizer(f, o);
    bool tpl = gguf_get_str(f, "tokenizer.chat_template", &s, NULL) == 0;
    cJSON_AddBoolToObject(o, "chat_template", tpl);
    if (tensors) cJSON_AddItemToObject(o, "tensors", info_tensors(f));
    return o;
}

static double info_num(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

static const char *info_text(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : "-";
}

static void info_print_text(const cJSON *o) {
    printf("model:          %s\n", info_text(o, "path"));
    printf("name:           %s\n", info_text(o, "name"));
    printf("architecture:   %s (GGUF v%.0f)\n", info_text(o, "architecture"),
           info_num(o, "gguf_version"));
    printf("parameters:     %.2f M\n", info_num(o, "parameters") / 1e6);
    printf("file size:      %.2f MB\n", info_num(o, "file_size") / 1e6);
    printf("tensor types:  ");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "tensor_types"))
        printf(" %s x%.0f", e->string, e->valuedouble);
    printf("\ncontext length: %.0f\n", info_num(o, "context_length"));
    printf("shape:          %.0f layers, embedding %.0f, feed-forward %.0f, vocabulary %.0f\n",
           info_num(o, "layers"), info_num(o, "embedding_length"),
           info_num(o, "feed_forward_length"), info_num(o, "vocab_size"));
    printf("attention:      %.0f heads, %.0f KV heads, key/value length %.0f/%.0f\n",
           info_num(o, "heads"), info_num(o, "kv_heads"), info_num(o, "key_length"),
           info_num(o, "value_length"));
    printf("rope:           %s, %.0f dimensions, base %g%s\n", info_text(o, "rope_style"),
           info_num(o, "rope_dimensions"), info_num(o, "rope_freq_base"),
           cJSON_IsTrue(cJSON_GetObjectItem(o, "rope_freqs")) ? ", llama3 frequency factors" : "");
    printf("norm epsilon:   %g%s%s\n", info_num(o, "rms_epsilon"),
           cJSON_IsTrue(cJSON_GetObjectItem(o, "qkv_bias")) ? ", Q/K/V biases" : "",
           cJSON_IsTrue(cJSON_GetObjectItem(o, "qk_norm")) ? ", Q/K norms" : "");
    printf("output:         %s\n", cJSON_IsTrue(cJSON_GetObjectItem(o, "tied_output"))
                                       ? "tied to the token embeddings"
                                       : "separate output.weight");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(o, "tokenizer");
    printf("tokenizer:      %s", info_text(tok, "model"));
    if (cJSON_GetObjectItem(tok, "pre")) printf(" (pre-tokenizer %s)", info_text(tok, "pre"));
    printf(", %.0f tokens", info_num(tok, "vocab_size"));
    if (cJSON_GetObjectItem(tok, "merges")) printf(", %.0f merges", info_num(tok, "merges"));
    printf("\nspecial tokens:");
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tok, "special"))
        printf(" %s=%.0f %s", e->string, info_num(e, "id"), info_text(e, "text"));
    printf("\nadd BOS/EOS:    %s/%s\n",
           cJSON_IsTrue(cJSON_GetObjectItem(tok, "add_bos")) ? "yes" : "no",
           cJSON_IsTrue(cJSON_GetObjectItem(tok, "add_eos")) ? "yes" : "no");
    printf("chat template:  %s\n",
           cJSON_IsTrue(cJSON_GetObjectItem(o, "chat_template")) ? "yes" : "no (ChatML is used)");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(o, "tensors");
    if (tensors) {
        printf("\n%-36s %-6s %-22s %12s\n", "tensor", "type", "shape", "bytes");
        cJSON_ArrayForEach(e, tensors) {
            char shape[64] = "";
            const cJSON *d;
            cJSON_ArrayForEach(d, cJSON_GetObjectItem(e, "shape")) {
                size_t n = strlen(shape);
                snprintf(shape + n, sizeof shape - n, "%s%.0f", n ? " x " : "", d->valuedouble);
            }
            printf("%-36s %-6s %-22s %12.0f\n", info_text(e, "name"), info_text(e, "type"), shape,
                   info_num(e, "bytes"));
        }
    }
}

int cmd_info(int argc, char **argv) {
    bool json = false, tensors = false;
    const char *path = NULL;
    if (cli_wants_help(argc, argv)) {
        info_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--tensors") == 0)
            tensors = true;
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "chatd info: unexpected argument '%s'\n", argv[i]);
            info_usage(stderr);
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        info_usage(stderr);
        return 2;
    }
    chatd_error err = {{0}};
    model *m = model_open(path, &err);
    if (!m) {
        fprintf(stderr, "chatd info: %s\n", err.msg);
        return 1;
    }
    cJSON *o = info_build(path, m, tensors);
    if (json) {
        char *text = cJSON_Print(o);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        info_print_text(o);
    }
    cJSON_Delete(o);
    model_close(m);
    return 0;
}
