/* fuzz_gguf.c - libFuzzer harness for the GGUF reader and model loader: any byte
 * string must be accepted or refused with a message, never crash or read out of
 * bounds. Built as a fuzzer with -DCHATD_FUZZ=ON, and always as a replay program that
 * runs the seed corpus (tests/fuzz/corpus/fuzz_gguf). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/gguf.h"
#include "chatd/model.h"
#include "chatd/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    chatd_error err = {{0}};
    gguf_file *f = gguf_open_memory(data, size, &err);
    if (!f) {
        if (!err.msg[0]) abort(); /* every refusal must say why */
        return 0;
    }
    /* touch what a loader would: every key, every string of every array, a row of every
     * tensor */
    for (uint64_t i = 0; i < f->n_kv; i++) {
        /* a key with a NUL byte cannot be named by a C string; every other must be found */
        gguf_str k = f->kv[i].key;
        char key[64];
        if (k.len >= sizeof key || memchr(k.ptr, 0, k.len)) continue;
        gguf_str_copy(k, key, sizeof key);
        if (gguf_find(f, key) != &f->kv[i]) abort();
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        float row[512];
        if (t->ne[0] <= 512 && qtype_row_bytes(t->type, t->ne[0]) <= t->nbytes)
            dequantize_row(t->type, t->data, row, t->ne[0]);
    }
    model *m = model_from_gguf(f, &err);
    if (!m && !err.msg[0]) abort();
    model_close(m);
    return 0;
}
