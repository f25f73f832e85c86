/* gguf.h - read-only view of a GGUF model file (the format of llama.cpp and Ollama).
 *
 * gguf_open() maps the file, validates everything a hostile file could lie about
 * (magic, version, counts, string lengths, tensor shapes, offsets, alignment, overlap)
 * and builds a sorted key index. All strings and tensor data point into the mapping:
 * they stay valid until gguf_close(). Strings in GGUF are not NUL-terminated, so they
 * are passed around as gguf_str (pointer + length). */
#ifndef CHATD_GGUF_H
#define CHATD_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/error.h"

#define GGUF_MAX_DIMS          4
#define GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

/* A length-delimited string inside the mapped file (not NUL-terminated). */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* One metadata value. Scalars are decoded; arrays keep their element type and count.
 * Arrays of fixed-size scalars point at the raw little-endian elements in the file
 * (read them with gguf_arr_*); arrays of strings and of arrays are decoded into items. */
typedef struct gguf_value {
    gguf_type type;
    union {
        uint64_t u64; /* UINT8..UINT64 and BOOL, zero-extended */
        int64_t i64;  /* INT8..INT64, sign-extended */
        double f64;   /* FLOAT32, FLOAT64 */
        gguf_str str; /* STRING */
        struct {
            gguf_type elem_type;
            uint64_t n;
            const uint8_t *data;      /* scalar element types: n * elem_size raw bytes */
            struct gguf_value *items; /* STRING or ARRAY element types: n decoded values */
        } arr;
    } v;
} gguf_value;

typedef struct gguf_kv {
    gguf_str key;
    gguf_value value;
} gguf_kv;

/* One entry of the tensor directory. ne[0] is the contiguous row length. */
typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    uint32_t type;             /* a ggml type id (see quant.h) */
    uint64_t offset;           /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data; /* inside the mapping */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *map; /* the whole file, read-only */
    size_t size;        /* bytes */
    uint32_t version;   /* 2 or 3 */
    uint64_t n_kv;
    gguf_kv *kv;         /* [n_kv], in file order */
    uint64_t *kv_sorted; /* [n_kv] indices into kv, sorted by key for binary search */
    uint64_t n_tensors;
    gguf_tensor *tensors;     /* [n_tensors], in file order */
    uint64_t *tensors_sorted; /* [n_tensors] indices sorted by name */
    uint64_t alignment;
    uint64_t data_offset; /* file offset of the tensor data section */
    bool owns_map;        /* gguf_close unmaps the file */
} gguf_file;

/* Maps and validates a GGUF file; on failure returns NULL and explains why in err. */
gguf_file *gguf_open(const char *path, chatd_error *err);

/* Validates a GGUF image already in memory (not copied; must outlive the result). */
gguf_file *gguf_open_memory(const void *data, size_t size, chatd_error *err);

/* Unmaps the file and frees the index; NULL is allowed. */
void gguf_close(gguf_file *f);

/* Name of a metadata value type, e.g. "uint32". */
const char *gguf_type_name(gguf_type t);

/* Finds a metadata entry by key in O(log n); NULL when absent. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);

/* Finds a tensor by name in O(log n); NULL when absent. */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* True when s equals the NUL-terminated string c. */
bool gguf_str_eq(gguf_str s, const char *c);

/* Copies s into buf (truncating, always NUL-terminated); returns buf. */
char *gguf_str_copy(gguf_str s, char *buf, size_t bufsize);

/* Reads an integer-valued key (any integer type or bool) into *out; 0, or -1 when absent
 * or of another type (message in err). */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out, chatd_error *err);

/* Reads a float-valued key (float32/64 or any integer) into *out; 0 or -1 as above. */
int gguf_get_float(const gguf_file *f, const char *key, double *out, chatd_error *err);

/* Reads a string key; 0 or -1 as above. */
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, chatd_error *err);

/* Reads a bool key (or an integer, nonzero = true); 0 or -1 as above. */
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, chatd_error *err);

/* Finds an array key whose elements are of elem_type; NULL when absent or mistyped. */
const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem_type);

/* Element i of a scalar array as an integer / a double (the array's type must be scalar). */
int64_t gguf_arr_int(const gguf_value *arr, uint64_t i);
double gguf_arr_float(const gguf_value *arr, uint64_t i);

#endif
