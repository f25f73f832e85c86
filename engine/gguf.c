/* gguf.c - the GGUF reader: maps a model file and validates every number in it.
 *
 * A model file comes from users, so it is treated as hostile: every count, length and
 * offset is checked against the bytes that remain before it is used, and no allocation
 * is sized by a number the file has not backed with bytes. Metadata and tensor names
 * are indexed by sorted arrays so lookups are O(log n). */
#include "chatd/gguf.h"
#include "chatd/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC        0x46554747u /* "GGUF" read as little-endian uint32 */
#define GGUF_MAX_KEY_LEN  65535
#define GGUF_MAX_NAME_LEN 256
#define GGUF_MAX_NESTING  8
/* A cap on decoded array items (strings and sub-arrays) over the whole file: real
 * vocabularies hold a few hundred thousand; this stops a file of empty strings from
 * costing many times its size in memory. */
#define GGUF_MAX_ITEMS (1u << 24)

/* A bounds-checked reader over the mapped bytes. */
typedef struct gguf_cursor {
    const uint8_t *p;
    size_t size;
    size_t pos;
    uint64_t items; /* decoded array items so far */
    chatd_error *err;
} gguf_cursor;

static size_t cur_left(const gguf_cursor *c) {
    return c->size - c->pos;
}

static int cur_read(gguf_cursor *c, void *dst, size_t n, const char *what) {
    if (n > cur_left(c))
        return chatd_errorf(c->err, "file truncated at offset %zu while reading %s", c->pos, what);
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return 0;
}

static int cur_u32(gguf_cursor *c, uint32_t *v, const char *what) {
    return cur_read(c, v, 4, what);
}

static int cur_u64(gguf_cursor *c, uint64_t *v, const char *what) {
    return cur_read(c, v, 8, what);
}

static int cur_str(gguf_cursor *c, gguf_str *s, uint64_t max_len, const char *what) {
    uint64_t len = 0;
    if (cur_u64(c, &len, what) != 0) return -1;
    if (len > max_len)
        return chatd_errorf(c->err, "%s at offset %zu has length %llu (limit %llu)", what,
                            c->pos - 8, (unsigned long long)len, (unsigned long long)max_len);
    if (len > cur_left(c))
        return chatd_errorf(c->err, "%s at offset %zu claims %llu bytes but only %zu remain", what,
                            c->pos - 8, (unsigned long long)len, cur_left(c));
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

static size_t gguf_scalar_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

const char *gguf_type_name(gguf_type t) {
    static const char *names[GGUF_TYPE_COUNT] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                 "int32",  "float32", "bool",   "string", "array",
                                                 "uint64", "int64",   "float64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "invalid";
}

/* Decodes one scalar from raw little-endian bytes into v. */
static void gguf_decode_scalar(gguf_type t, const uint8_t *raw, gguf_value *v) {
    v->type = t;
    switch (t) {
    case GGUF_TYPE_UINT8:
        v->v.u64 = raw[0];
        break;
    case GGUF_TYPE_BOOL:
        v->v.u64 = raw[0] != 0;
        break;
    case GGUF_TYPE_INT8:
        v->v.i64 = (int8_t)raw[0];
        break;
    case GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, raw, 2);
        v->v.u64 = x;
        break;
    }
    case GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, raw, 2);
        v->v.i64 = x;
        break;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, raw, 4);
        v->v.u64 = x;
        break;
    }
    case GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, raw, 4);
        v->v.i64 = x;
        break;
    }
    case GGUF_TYPE_FLOAT32: {
        float x;
        memcpy(&x, raw, 4);
        v->v.f64 = x;
        break;
    }
    case GGUF_TYPE_UINT64:
        memcpy(&v->v.u64, raw, 8);
        break;
    case GGUF_TYPE_INT64:
        memcpy(&v->v.i64, raw, 8);
        break;
    case GGUF_TYPE_FLOAT64:
        memcpy(&v->v.f64, raw, 8);
        break;
    default:
        break;
    }
}

static void gguf_value_free(gguf_value *v) {
    if (v->type == GGUF_TYPE_ARRAY && v->v.arr.items) {
        if (v->v.arr.elem_type == GGUF_TYPE_ARRAY)
            for (uint64_t i = 0; i < v->v.arr.n; i++) gguf_value_free(&v->v.arr.items[i]);
        free(v->v.arr.items);
        v->v.arr.items = NULL;
    }
}

static int gguf_read_value(gguf_cursor *c, gguf_type t, gguf_value *v, int depth);

static int gguf_read_array(gguf_cursor *c, gguf_value *v, int depth) {
    uint32_t et = 0;
    uint64_t n = 0;
    if (depth >= GGUF_MAX_NESTING)
        return chatd_errorf(c->err, "arrays nested deeper than %d at offset %zu", GGUF_MAX_NESTING,
                            c->pos);
    if (cur_u32(c, &et, "array element type") != 0) return -1;
    if (et >= GGUF_TYPE_COUNT)
        return chatd_errorf(c->err, "invalid array element type %u at offset %zu", et, c->pos - 4);
    if (cur_u64(c, &n, "array length") != 0) return -1;
    v->type = GGUF_TYPE_ARRAY;
    v->v.arr.elem_type = (gguf_type)et;
    v->v.arr.n = n;
    v->v.arr.data = NULL;
    v->v.arr.items = NULL;
    size_t es = gguf_scalar_size((gguf_type)et);
    if (es) {
        if (n > cur_left(c) / es)
            return chatd_errorf(c->err,
                                "array of %llu %s at offset %zu runs past the end of the file",
                                (unsigned long long)n, gguf_type_name((gguf_type)et), c->pos);
        v->v.arr.data = c->p + c->pos;
        c->pos += n * es;
        return 0;
    }
    /* strings need at least 8 bytes each, nested arrays at least 12 */
    size_t min_size = et == GGUF_TYPE_STRING ? 8 : 12;
    if (n > cur_left(c) / min_size)
        return chatd_errorf(c->err, "array of %llu %s at offset %zu runs past the end of the file",
                            (unsigned long long)n, gguf_type_name((gguf_type)et), c->pos);
    if (c->items + n > GGUF_MAX_ITEMS)
        return chatd_errorf(c->err, "more than %u array items in the metadata", GGUF_MAX_ITEMS);
    c->items += n;
    if (n == 0) return 0;
    v->v.arr.items = calloc(n, sizeof(gguf_value));
    if (!v->v.arr.items)
        return chatd_errorf(c->err, "out of memory for an array of %llu items",
                            (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        if (gguf_read_value(c, (gguf_type)et, &v->v.arr.items[i], depth + 1) != 0) {
            v->v.arr.n = i + 1; /* free what was decoded */
            return -1;
        }
    }
    return 0;
}

static int gguf_read_value(gguf_cursor *c, gguf_type t, gguf_value *v, int depth) {
    memset(v, 0, sizeof *v);
    v->type = t;
    if (t == GGUF_TYPE_STRING) return cur_str(c, &v->v.str, UINT64_MAX, "string value");
    if (t == GGUF_TYPE_ARRAY) return gguf_read_array(c, v, depth);
    size_t es = gguf_scalar_size(t);
    if (!es)
        return chatd_errorf(c->err, "invalid value type %u at offset %zu", (unsigned)t, c->pos);
    uint8_t raw[8] = {0};
    if (cur_read(c, raw, es, "scalar value") != 0) return -1;
    gguf_decode_scalar(t, raw, v);
    return 0;
}

static int gguf_str_cmp(gguf_str a, gguf_str b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int r = memcmp(a.ptr, b.ptr, n);
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* qsort has no context argument in C11, so sorting uses a small merge sort over indices. */
typedef gguf_str (*gguf_key_fn)(const gguf_file *f, uint64_t i);

static gguf_str gguf_kv_key(const gguf_file *f, uint64_t i) {
    return f->kv[i].key;
}

static gguf_str gguf_tensor_key(const gguf_file *f, uint64_t i) {
    return f->tensors[i].name;
}

static void gguf_merge_sort(const gguf_file *f, gguf_key_fn key, uint64_t *idx, uint64_t *tmp,
                            uint64_t n) {
    if (n < 2) return;
    uint64_t h = n / 2;
    gguf_merge_sort(f, key, idx, tmp, h);
    gguf_merge_sort(f, key, idx + h, tmp, n - h);
    uint64_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = gguf_str_cmp(key(f, idx[i]), key(f, idx[j])) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* Builds a sorted index over n entries; refuses duplicates (what names the kind). */
static int gguf_build_index(const gguf_file *f, gguf_key_fn key, uint64_t n, uint64_t **out,
                            const char *what, chatd_error *err) {
    uint64_t *idx = malloc((n ? n : 1) * sizeof *idx);
    uint64_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!idx || !tmp) {
        free(idx);
        free(tmp);
        return chatd_errorf(err, "out of memory for the %s index", what);
    }
    for (uint64_t i = 0; i < n; i++) idx[i] = i;
    gguf_merge_sort(f, key, idx, tmp, n);
    free(tmp);
    for (uint64_t i = 1; i < n; i++) {
        gguf_str a = key(f, idx[i - 1]);
        if (gguf_str_cmp(a, key(f, idx[i])) == 0) {
            char name[128];
            chatd_errorf(err, "duplicate %s '%s'", what, gguf_str_copy(a, name, sizeof name));
            free(idx);
            return -1;
        }
    }
    *out = idx;
    return 0;
}

static int64_t gguf_search(const gguf_file *f, gguf_key_fn key, const uint64_t *idx, uint64_t n,
                           const char *name) {
    gguf_str want = {name, strlen(name)};
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int r = gguf_str_cmp(key(f, idx[mid]), want);
        if (r == 0) return (int64_t)idx[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int gguf_read_tensor_info(gguf_cursor *c, gguf_tensor *t) {
    char name[GGUF_MAX_NAME_LEN + 1];
    if (cur_str(c, &t->name, GGUF_MAX_NAME_LEN, "tensor name") != 0) return -1;
    gguf_str_copy(t->name, name, sizeof name);
    if (cur_u32(c, &t->n_dims, "tensor dimension count") != 0) return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return chatd_errorf(c->err, "tensor '%s' has %u dimensions (1 to %d allowed)", name,
                            t->n_dims, GGUF_MAX_DIMS);
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && cur_u64(c, &ne, "tensor shape") != 0) return -1;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return chatd_errorf(c->err, "tensor '%s' has invalid dimension %u of size %llu", name,
                                d, (unsigned long long)ne);
        if ((int64_t)ne > INT64_MAX / n_elements)
            return chatd_errorf(c->err, "tensor '%s' shape overflows 64 bits", name);
        n_elements *= (int64_t)ne;
        t->ne[d] = (int64_t)ne;
    }
    if (cur_u32(c, &t->type, "tensor type") != 0) return -1;
    if (cur_u64(c, &t->offset, "tensor offset") != 0) return -1;
    const qtype_traits *tr = qtype_get(t->type);
    char tbuf[32];
    if (!tr || !tr->block_bytes)
        return chatd_errorf(c->err, "tensor '%s' has type %s, which chatd does not support", name,
                            qtype_name(t->type, tbuf, sizeof tbuf));
    if (t->ne[0] % tr->block_elems != 0)
        return chatd_errorf(c->err,
                            "tensor '%s' of type %s has rows of %lld elements, not a "
                            "multiple of its block size %u",
                            name, tr->name, (long long)t->ne[0], tr->block_elems);
    uint64_t row_bytes = (uint64_t)(t->ne[0] / tr->block_elems) * tr->block_bytes;
    uint64_t rows = (uint64_t)(n_elements / t->ne[0]);
    if (rows && row_bytes > UINT64_MAX / rows)
        return chatd_errorf(c->err, "tensor '%s' byte size overflows 64 bits", name);
    t->nbytes = row_bytes * rows;
    return 0;
}

static int gguf_cmp_u64_by_offset(const void *a, const void *b, const gguf_tensor *t) {
    uint64_t x = t[*(const uint64_t *)a].offset, y = t[*(const uint64_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Checks that tensors lie inside the data section, aligned and without overlap. */
static int gguf_check_layout(gguf_file *f, chatd_error *err) {
    uint64_t data_size = f->size - f->data_offset;
    char name[GGUF_MAX_NAME_LEN + 1];
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        gguf_str_copy(t->name, name, sizeof name);
        if (t->offset % f->alignment != 0)
            return chatd_errorf(err, "tensor '%s' offset %llu is not aligned to %llu", name,
                                (unsigned long long)t->offset, (unsigned long long)f->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return chatd_errorf(err,
                                "tensor '%s' (%llu bytes at data offset %llu) runs past the end "
                                "of the file (file truncated?)",
                                name, (unsigned long long)t->nbytes, (unsigned long long)t->offset);
        t->data = f->map + f->data_offset + t->offset;
    }
    /* overlap: sort by offset (insertion into a temporary order via the tensors_sorted buffer) */
    uint64_t n = f->n_tensors;
    if (n < 2) return 0;
    uint64_t *order = malloc(n * sizeof *order);
    uint64_t *tmp = malloc(n * sizeof *tmp);
    if (!order || !tmp) {
        free(order);
        free(tmp);
        return chatd_errorf(err, "out of memory checking tensor layout");
    }
    for (uint64_t i = 0; i < n; i++) order[i] = i;
    /* bottom-up merge sort by offset */
    for (uint64_t w = 1; w < n; w *= 2) {
        for (uint64_t lo = 0; lo < n; lo += 2 * w) {
            uint64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            uint64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = gguf_cmp_u64_by_offset(&order[i], &order[j], f->tensors) <= 0
                               ? order[i++]
                               : order[j++];
            while (i < mid) tmp[k++] = order[i++];
            while (j < hi) tmp[k++] = order[j++];
        }
        memcpy(order, tmp, n * sizeof *order);
    }
    int rc = 0;
    for (uint64_t i = 1; i < n; i++) {
        const gguf_tensor *a = &f->tensors[order[i - 1]], *b = &f->tensors[order[i]];
        if (a->offset + a->nbytes > b->offset) {
            char bname[GGUF_MAX_NAME_LEN + 1];
            gguf_str_copy(a->name, name, sizeof name);
            gguf_str_copy(b->name, bname, sizeof bname);
            rc = chatd_errorf(err, "tensors '%s' and '%s' overlap", name, bname);
            break;
        }
    }
    free(order);
    free(tmp);
    return rc;
}

static void gguf_free_index(gguf_file *f) {
    if (f->kv) {
        for (uint64_t i = 0; i < f->n_kv; i++) gguf_value_free(&f->kv[i].value);
        free(f->kv);
    }
    free(f->kv_sorted);
    free(f->tensors);
    free(f->tensors_sorted);
}

static int gguf_parse(gguf_file *f, chatd_error *err) {
    gguf_cursor c = {.p = f->map, .size = f->size, .pos = 0, .items = 0, .err = err};
    uint32_t magic = 0;
    if (cur_u32(&c, &magic, "magic") != 0) return -1;
    if (magic != GGUF_MAGIC) return chatd_errorf(err, "not a GGUF file (bad magic)");
    if (cur_u32(&c, &f->version, "version") != 0) return -1;
    if (f->version == 1)
        return chatd_errorf(err, "GGUF version 1 is not supported (re-convert the model to v3)");
    if (f->version >= 0x01000000u)
        return chatd_errorf(err, "big-endian GGUF files are not supported");
    if (f->version != 2 && f->version != 3)
        return chatd_errorf(err, "unsupported GGUF version %u (2 and 3 are supported)", f->version);
    if (cur_u64(&c, &f->n_tensors, "tensor count") != 0) return -1;
    if (cur_u64(&c, &f->n_kv, "metadata count") != 0) return -1;
    /* smallest possible entries: key-value 13 bytes, tensor info 32 bytes */
    if (f->n_kv > cur_left(&c) / 13)
        return chatd_errorf(err, "metadata count %llu is larger than the file can hold",
                            (unsigned long long)f->n_kv);
    if (f->n_tensors > cur_left(&c) / 32)
        return chatd_errorf(err, "tensor count %llu is larger than the file can hold",
                            (unsigned long long)f->n_tensors);

    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    if (!f->kv)
        return chatd_errorf(err, "out of memory for %llu metadata entries",
                            (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        uint32_t t = 0;
        if (cur_str(&c, &kv->key, GGUF_MAX_KEY_LEN, "metadata key") != 0) goto kv_fail;
        if (kv->key.len == 0) {
            chatd_errorf(err, "metadata entry %llu has an empty key", (unsigned long long)i);
            goto kv_fail;
        }
        if (cur_u32(&c, &t, "metadata value type") != 0) goto kv_fail;
        if (t >= GGUF_TYPE_COUNT) {
            chatd_errorf(err, "invalid value type %u", t);
            goto kv_fail;
        }
        if (gguf_read_value(&c, (gguf_type)t, &kv->value, 0) != 0) goto kv_fail;
        continue;
    kv_fail:
        f->n_kv = i + 1; /* free only what was decoded */
        char key[96];
        return chatd_error_prefix(err, "metadata entry %llu ('%s')", (unsigned long long)i,
                                  gguf_str_copy(kv->key, key, sizeof key));
    }
    if (gguf_build_index(f, gguf_kv_key, f->n_kv, &f->kv_sorted, "metadata key", err) != 0)
        return -1;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        if (al->value.type != GGUF_TYPE_UINT32)
            return chatd_errorf(err, "general.alignment has type %s (uint32 expected)",
                                gguf_type_name(al->value.type));
        uint64_t a = al->value.v.u64;
        if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 20))
            return chatd_errorf(err, "general.alignment %llu is not a power of two up to 1 MiB",
                                (unsigned long long)a);
        f->alignment = a;
    }

    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->tensors)
        return chatd_errorf(err, "out of memory for %llu tensors",
                            (unsigned long long)f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (gguf_read_tensor_info(&c, &f->tensors[i]) != 0)
            return chatd_error_prefix(err, "tensor %llu", (unsigned long long)i);
    }
    if (gguf_build_index(f, gguf_tensor_key, f->n_tensors, &f->tensors_sorted, "tensor name",
                         err) != 0)
        return -1;

    uint64_t off = c.pos;
    uint64_t pad = (f->alignment - off % f->alignment) % f->alignment;
    if (f->n_tensors > 0 && pad > f->size - off)
        return chatd_errorf(err, "file truncated before the tensor data section");
    f->data_offset = off + pad > f->size ? f->size : off + pad;
    return gguf_check_layout(f, err);
}

gguf_file *gguf_open_memory(const void *data, size_t size, chatd_error *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    f->map = data;
    f->size = size;
    if (gguf_parse(f, err) != 0) {
        gguf_free_index(f);
        free(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open(const char *path, chatd_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        chatd_errorf(err, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        chatd_errorf(err, "%s is not a readable regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 24) {
        chatd_errorf(err, "%s: file too small to be a GGUF model (%lld bytes)", path,
                     (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        chatd_errorf(err, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    gguf_file *f = gguf_open_memory(map, size, err);
    if (!f) {
        chatd_error_prefix(err, "%s", path);
        munmap(map, size);
        return NULL;
    }
    f->owns_map = true;
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    gguf_free_index(f);
    if (f->owns_map) munmap((void *)f->map, f->size);
    free(f);
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    int64_t i = gguf_search(f, gguf_kv_key, f->kv_sorted, f->n_kv, key);
    return i < 0 ? NULL : &f->kv[i];
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = gguf_search(f, gguf_tensor_key, f->tensors_sorted, f->n_tensors, name);
    return i < 0 ? NULL : &f->tensors[i];
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

char *gguf_str_copy(gguf_str s, char *buf, size_t bufsize) {
    if (!bufsize) return buf;
    size_t n = s.len < bufsize - 1 ? (size_t)s.len : bufsize - 1;
    if (n) memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return buf;
}

static const gguf_kv *gguf_need(const gguf_file *f, const char *key, chatd_error *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) chatd_errorf(err, "metadata key %s is missing", key);
    return kv;
}

static bool gguf_is_unsigned(gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
           t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_BOOL;
}

static bool gguf_is_signed(gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out, chatd_error *err) {
    const gguf_kv *kv = gguf_need(f, key, err);
    if (!kv) return -1;
    gguf_type t = kv->value.type;
    if (gguf_is_unsigned(t)) {
        if (kv->value.v.u64 > (uint64_t)INT64_MAX)
            return chatd_errorf(err, "metadata key %s is out of range", key);
        *out = (int64_t)kv->value.v.u64;
        return 0;
    }
    if (gguf_is_signed(t)) {
        *out = kv->value.v.i64;
        return 0;
    }
    return chatd_errorf(err, "metadata key %s has type %s (an integer expected)", key,
                        gguf_type_name(t));
}

int gguf_get_float(const gguf_file *f, const char *key, double *out, chatd_error *err) {
    const gguf_kv *kv = gguf_need(f, key, err);
    if (!kv) return -1;
    gguf_type t = kv->value.type;
    if (t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64)
        *out = kv->value.v.f64;
    else if (gguf_is_unsigned(t))
        *out = (double)kv->value.v.u64;
    else if (gguf_is_signed(t))
        *out = (double)kv->value.v.i64;
    else
        return chatd_errorf(err, "metadata key %s has type %s (a number expected)", key,
                            gguf_type_name(t));
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, chatd_error *err) {
    const gguf_kv *kv = gguf_need(f, key, err);
    if (!kv) return -1;
    if (kv->value.type != GGUF_TYPE_STRING)
        return chatd_errorf(err, "metadata key %s has type %s (string expected)", key,
                            gguf_type_name(kv->value.type));
    *out = kv->value.v.str;
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, chatd_error *err) {
    int64_t v = 0;
    if (gguf_get_int(f, key, &v, err) != 0) return -1;
    *out = v != 0;
    return 0;
}

const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem_type) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->value.type != GGUF_TYPE_ARRAY || kv->value.v.arr.elem_type != elem_type)
        return NULL;
    return &kv->value;
}

int64_t gguf_arr_int(const gguf_value *arr, uint64_t i) {
    gguf_value v = {0};
    size_t es = gguf_scalar_size(arr->v.arr.elem_type);
    if (!es || i >= arr->v.arr.n) return 0;
    gguf_decode_scalar(arr->v.arr.elem_type, arr->v.arr.data + i * es, &v);
    if (gguf_is_signed(v.type)) return v.v.i64;
    if (v.type == GGUF_TYPE_FLOAT32 || v.type == GGUF_TYPE_FLOAT64) return (int64_t)v.v.f64;
    return (int64_t)v.v.u64;
}

double gguf_arr_float(const gguf_value *arr, uint64_t i) {
    gguf_value v = {0};
    size_t es = gguf_scalar_size(arr->v.arr.elem_type);
    if (!es || i >= arr->v.arr.n) return 0;
    gguf_decode_scalar(arr->v.arr.elem_type, arr->v.arr.data + i * es, &v);
    if (gguf_is_signed(v.type)) return (double)v.v.i64;
    if (v.type == GGUF_TYPE_FLOAT32 || v.type == GGUF_TYPE_FLOAT64) return v.v.f64;
    return (double)v.v.u64;
}
