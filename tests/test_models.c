/* test_models.c - every model listed in ../shared/models/README.md loads, and what the
 * reader reports matches that README: architecture, pre-tokenizer, tensor-type mix, file
 * size (its "Files" table) and the hyperparameters of its "tiny presets" table. Then each
 * model is truncated at many offsets (densely through the header, sparsely through the
 * weights) and every truncated copy must be refused with a message. */
#include <stdlib.h>
#include <string.h>

#include "chatd/gguf.h"
#include "chatd/model.h"
#include "chatd/quant.h"
#include "testutil.h"

#define MAX_MODELS 16

/* One row of the README's "Files" table joined with its preset row. */
typedef struct readme_model {
    char file[128];
    char arch[32];
    char pre[32];    /* tokenizer.ggml.pre, or "" for none */
    char types[128]; /* e.g. "Q8_0 ×15, F32 ×11" */
    long long size;
    bool has_preset;
    long long vocab, ctx, bos, eos;
    double rope_base, rms_eps;
    bool tied;
} readme_model;

/* Splits a markdown table row into trimmed cells; returns the count. */
static int split_row(char *line, char **cells, int max) {
    int n = 0;
    char *p = line;
    if (*p != '|') return 0;
    p++;
    while (*p && n < max) {
        char *end = strchr(p, '|');
        /* a '|' escaped as "\|" stays inside the cell */
        while (end && end > p && end[-1] == '\\') end = strchr(end + 1, '|');
        if (!end) break;
        *end = 0;
        while (*p == ' ') p++;
        char *q = end - 1;
        while (q >= p && *q == ' ') *q-- = 0;
        cells[n++] = p;
        p = end + 1;
    }
    return n;
}

static void strip_ticks(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; *src && k + 1 < n; src++)
        if (*src != '`') dst[k++] = *src;
    dst[k] = 0;
}

static long long parse_count(const char *s) {
    long long v = 0;
    for (; *s; s++)
        if (*s >= '0' && *s <= '9')
            v = v * 10 + (*s - '0');
        else if (*s != ',')
            break;
    return v;
}

/* Reads both README tables; returns the number of models. */
static int read_readme(const char *path, readme_model *out) {
    char *text = tu_read_file(path, NULL);
    if (!text) tu_skip_or_fail("cannot read %s", path);
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c[12];
        int nc = split_row(line, c, 12);
        if (nc == 7 && strstr(c[0], ".gguf`") && n < MAX_MODELS) {
            readme_model *m = &out[n++];
            memset(m, 0, sizeof *m);
            strip_ticks(m->file, sizeof m->file, c[0]);
            strip_ticks(m->arch, sizeof m->arch, c[2]);
            char *q = strstr(c[3], "(`");
            if (q) {
                q += 2;
                char *e = strchr(q, '`');
                if (e) snprintf(m->pre, sizeof m->pre, "%.*s", (int)(e - q), q);
            }
            snprintf(m->types, sizeof m->types, "%s", c[4]);
            m->size = parse_count(c[5]);
        } else if (nc == 9 && strstr(c[0], "-tiny") && !strchr(c[0], '`')) {
            /* preset row: applies to every file whose name starts with "<preset>-";
             * "same as Qwen2.5" repeats the ids of the row before */
            static long long prev_bos = -1, prev_eos = -1;
            bool same = strncmp(c[7], "same as", 7) == 0;
            long long bos = same ? prev_bos : parse_count(c[7]);
            const char *slash = strchr(c[7], '/');
            long long eos = same ? prev_eos : slash ? parse_count(slash + 2) : -1;
            prev_bos = bos;
            prev_eos = eos;
            for (int i = 0; i < n; i++) {
                readme_model *m = &out[i];
                size_t len = strlen(c[0]);
                if (strncmp(m->file, c[0], len) != 0 || m->file[len] != '-') continue;
                m->has_preset = true;
                m->vocab = parse_count(c[2]);
                m->ctx = parse_count(c[3]);
                m->rope_base = strtod(c[4], NULL);
                m->rms_eps = strtod(c[5], NULL);
                m->tied = strncmp(c[6], "yes", 3) == 0;
                m->bos = bos;
                m->eos = eos;
            }
        }
    }
    free(text);
    return n;
}

/* Checks the README's tensor-type mix ("Q8_0 ×15, F32 ×11") against the file. */
static void check_types(const gguf_file *f, const char *types) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", types);
    int listed = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char name[16];
        int count = 0;
        const char *x = strstr(tok, "\xc3\x97"); /* U+00D7 multiplication sign */
        if (x) {
            snprintf(name, sizeof name, "%.*s", (int)(x - tok - 1), tok);
            count = atoi(x + 2);
        } else { /* a lone type name: every tensor has it */
            snprintf(name, sizeof name, "%s", tok);
            count = (int)f->n_tensors;
        }
        int have = 0;
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            char tb[32];
            if (strcmp(qtype_name(f->tensors[i].type, tb, sizeof tb), name) == 0) have++;
        }
        TU_CHECK(have == count, "type %s: %d tensors, README says %d", name, have, count);
        listed += count;
    }
    TU_CHECK((uint64_t)listed == f->n_tensors, "README lists %d tensors, file has %llu", listed,
             (unsigned long long)f->n_tensors);
}

static void check_model(const readme_model *r) {
    tu_case("%s/readme", r->file);
    chatd_error err = {{0}};
    model *m = model_open(tu_model_path(r->file), &err);
    TU_CHECK(m != NULL, "refused: %s", err.msg);
    if (!m) return;
    const model_hparams *hp = &m->hp;
    const gguf_file *f = m->file;
    TU_CHECK(strcmp(hp->arch_name, r->arch) == 0, "arch %s, README %s", hp->arch_name, r->arch);
    TU_CHECK((long long)f->size == r->size, "size %zu, README %lld", f->size, r->size);
    gguf_str pre;
    if (r->pre[0] && strcmp(r->pre, "llama") != 0)
        TU_CHECK(gguf_get_str(f, "tokenizer.ggml.pre", &pre, &err) == 0 && gguf_str_eq(pre, r->pre),
                 "pre-tokenizer is not %s", r->pre);
    check_types(f, r->types);
    if (r->has_preset) {
        /* "All have n_embd 256, 2 layers, 4 query heads / 2 KV heads (head_dim 64) and n_ff 512" */
        TU_CHECK(hp->n_embd == 256 && hp->n_layer == 2 && hp->n_head == 4 && hp->n_head_kv == 2 &&
                     hp->head_dim_k == 64 && hp->head_dim_v == 64 && hp->n_ff == 512,
                 "tiny shape");
        TU_CHECK(hp->n_vocab == r->vocab, "vocab %lld, README %lld", (long long)hp->n_vocab,
                 r->vocab);
        TU_CHECK(hp->n_ctx_train == r->ctx, "ctx %lld, README %lld", (long long)hp->n_ctx_train,
                 r->ctx);
        TU_CHECK(hp->rope_freq_base == r->rope_base, "rope base %g, README %g", hp->rope_freq_base,
                 r->rope_base);
        TU_CHECK((float)hp->rms_eps == (float)r->rms_eps, "rms eps %g, README %g", hp->rms_eps,
                 r->rms_eps);
        TU_CHECK(hp->tied_output == r->tied, "tied %d, README %d", hp->tied_output, r->tied);
        int64_t bos = -1, eos = -1;
        gguf_get_int(f, "tokenizer.ggml.bos_token_id", &bos, NULL);
        gguf_get_int(f, "tokenizer.ggml.eos_token_id", &eos, NULL);
        TU_CHECK(bos == r->bos && eos == r->eos, "bos/eos %lld/%lld, README %lld/%lld",
                 (long long)bos, (long long)eos, r->bos, r->eos);
        bool neox = strstr(r->file, "qwen") != NULL;
        TU_CHECK((hp->rope_style == MODEL_ROPE_NEOX) == neox, "rope style");
        TU_CHECK(hp->has_qkv_bias == (hp->arch == MODEL_ARCH_QWEN2), "qkv bias");
        TU_CHECK(hp->has_rope_freqs == (strstr(r->file, "llama3") != NULL), "rope_freqs");
        if (hp->has_qk_norm)
            TU_CHECK(m->layers[0].q_norm->ne[0] == 64 && m->layers[1].k_norm->ne[0] == 64,
                     "q/k norm length");
    }
    model_close(m);
}

/* Truncated copies of a real model, each in an exact-size allocation. */
static void check_truncation(const readme_model *r) {
    tu_case("%s/truncated", r->file);
    size_t len = 0;
    char *data = tu_read_file(tu_model_path(r->file), &len);
    TU_CHECK(data != NULL, "cannot read");
    if (!data) return;
    chatd_error err = {{0}};
    gguf_file *f = gguf_open_memory(data, len, &err);
    TU_CHECK(f != NULL, "full file refused: %s", err.msg);
    size_t header = f ? (size_t)f->data_offset : len;
    uint64_t data_end = 0;
    for (uint64_t i = 0; f && i < f->n_tensors; i++) {
        uint64_t e = f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes;
        if (e > data_end) data_end = e;
    }
    gguf_close(f);
    /* 48 offsets spread through the header (where parsing happens), the first 64 bytes
     * one by one, 16 through the tensor data, and the last byte */
    size_t offsets[140];
    int n = 0;
    for (size_t i = 0; i < 64 && i < header; i++) offsets[n++] = i;
    for (int i = 0; i < 48; i++) offsets[n++] = header / 48 * (size_t)i + 64 + (size_t)i * 7;
    for (int i = 0; i < 16; i++) offsets[n++] = header + (len - header) / 16 * (size_t)i;
    offsets[n++] = header - 1;
    offsets[n++] = (size_t)data_end - 1;
    for (int i = 0; i < n; i++) {
        size_t cut = offsets[i];
        if (cut >= data_end) continue;
        char *copy = malloc(cut ? cut : 1);
        if (!copy) break;
        memcpy(copy, data, cut);
        err.msg[0] = 0;
        gguf_file *t = gguf_open_memory(copy, cut, &err);
        model *m = t ? model_from_gguf(t, &err) : NULL;
        TU_CHECK(m == NULL, "accepted a copy truncated to %zu of %zu bytes", cut, len);
        TU_CHECK(err.msg[0] != 0, "truncation to %zu refused without a message", cut);
        model_close(m);
        free(copy);
    }
    free(data);
}

int main(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/README.md", tu_shared_dir());
    readme_model models[MAX_MODELS];
    int n = read_readme(path, models);
    tu_case("readme/lists-models");
    TU_CHECK(n >= 9, "README lists only %d models", n);
    int presets = 0;
    for (int i = 0; i < n; i++) presets += models[i].has_preset;
    TU_CHECK(presets == n - 1, "%d of %d models matched a preset row", presets, n);
    for (int i = 0; i < n; i++) {
        check_model(&models[i]);
        check_truncation(&models[i]);
    }
    return tu_finish();
}
