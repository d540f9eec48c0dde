/* GGUF (versions 2 and 3, little-endian) reader over mmap, and a writer.
 *
 * The reader validates the whole header, metadata and tensor table at open: every
 * count, length, offset, size and dimension is checked against the file size and
 * for arithmetic overflow, so code that uses an open `struct llamad_gguf` never
 * reads outside the mapping. A malformed file fails with a message that says what
 * is wrong and at which byte offset. */
#ifndef LLAMAD_GGUF_H
#define LLAMAD_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum llamad_gguf_type {
    LLAMAD_GGUF_UINT8 = 0,
    LLAMAD_GGUF_INT8 = 1,
    LLAMAD_GGUF_UINT16 = 2,
    LLAMAD_GGUF_INT16 = 3,
    LLAMAD_GGUF_UINT32 = 4,
    LLAMAD_GGUF_INT32 = 5,
    LLAMAD_GGUF_FLOAT32 = 6,
    LLAMAD_GGUF_BOOL = 7,
    LLAMAD_GGUF_STRING = 8,
    LLAMAD_GGUF_ARRAY = 9,
    LLAMAD_GGUF_UINT64 = 10,
    LLAMAD_GGUF_INT64 = 11,
    LLAMAD_GGUF_FLOAT64 = 12,
    LLAMAD_GGUF_TYPE_COUNT = 13
};

#define LLAMAD_GGUF_DEFAULT_ALIGNMENT 32
#define LLAMAD_GGUF_MAX_DIMS 4

const char *llamad_gguf_type_name(enum llamad_gguf_type t); /* "uint32", "string", ... */

/* A string inside the mapping: NOT NUL-terminated. */
struct llamad_gguf_str {
    const char *data;
    uint64_t len;
};

struct llamad_gguf_value {
    enum llamad_gguf_type type;
    union {
        uint64_t u64; /* UINT8, UINT16, UINT32, UINT64 */
        int64_t i64;  /* INT8, INT16, INT32, INT64 */
        double f64;   /* FLOAT32, FLOAT64 */
        bool b;       /* BOOL */
        struct llamad_gguf_str str;
        struct {
            enum llamad_gguf_type elem_type;
            uint64_t count;
            /* Elements of a fixed-size type, packed little-endian as in the file
             * (possibly unaligned): read them with llamad_gguf_array_get. */
            const uint8_t *raw;
            /* STRING and ARRAY elements: `count` parsed values; NULL otherwise. */
            struct llamad_gguf_value *items;
        } arr;
    };
};

struct llamad_gguf_kv {
    struct llamad_gguf_str key;
    struct llamad_gguf_value value;
};

struct llamad_gguf_tensor {
    struct llamad_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[LLAMAD_GGUF_MAX_DIMS]; /* ne[0] varies fastest (row length); unused dims are 1 */
    uint32_t type;                     /* enum llamad_type id */
    uint64_t offset;                   /* from the start of the data section */
    uint64_t nbytes;                   /* size of the data */
    const void *data;                  /* inside the mapping */
};

struct llamad_gguf {
    uint32_t version;
    uint64_t n_kv;
    struct llamad_gguf_kv *kv;
    uint64_t n_tensors;
    struct llamad_gguf_tensor *tensors;
    uint64_t alignment;   /* general.alignment, or 32 */
    uint64_t data_offset; /* file offset of the data section */
    const uint8_t *map;   /* the whole file, read-only */
    uint64_t size;        /* file size in bytes */
};

/* Opens and validates `path`. On success *out owns the mapping; free with llamad_gguf_close. */
int llamad_gguf_open(const char *path, struct llamad_gguf **out, char *err, size_t errsz);

/* Same over a caller-owned memory image (not copied; must outlive the handle).
 * `name` is used in error messages. */
int llamad_gguf_open_memory(const void *data, size_t size, const char *name,
                            struct llamad_gguf **out, char *err, size_t errsz);

void llamad_gguf_close(struct llamad_gguf *g);

/* Says that the n bytes at data, inside g's tensor data, will not be read again
 * soon: when g is mapped from its file, the whole pages among them leave memory
 * (and come back from the file if they are read after all). */
void llamad_gguf_release(const struct llamad_gguf *g, const void *data, size_t n);

/* Key lookup (exact match); NULL when absent. */
const struct llamad_gguf_kv *llamad_gguf_find(const struct llamad_gguf *g, const char *key);

/* Typed getters. They return LLAMAD_ENOTFOUND when the key is absent (err still says
 * which key), LLAMAD_EFORMAT when the stored type does not fit (err names the key, the
 * stored type and the wanted one) or an integer lies outside [min, max]. */
int llamad_gguf_get_int(const struct llamad_gguf *g, const char *key, int64_t min, int64_t max,
                        int64_t *out, char *err, size_t errsz); /* any integer type */
int llamad_gguf_get_float(const struct llamad_gguf *g, const char *key, double *out, char *err,
                          size_t errsz); /* FLOAT32 or FLOAT64 */
int llamad_gguf_get_bool(const struct llamad_gguf *g, const char *key, bool *out, char *err,
                         size_t errsz);
int llamad_gguf_get_str(const struct llamad_gguf *g, const char *key, struct llamad_gguf_str *out,
                        char *err, size_t errsz);
/* An ARRAY whose elements are of elem_type (any element type when elem_type < 0). */
int llamad_gguf_get_array(const struct llamad_gguf *g, const char *key, int elem_type,
                          const struct llamad_gguf_value **out, char *err, size_t errsz);

/* Element i (< count) of an ARRAY value, as a scalar/string/array value. */
struct llamad_gguf_value llamad_gguf_array_get(const struct llamad_gguf_value *arr, uint64_t i);

/* Tensor lookup by name; NULL when absent. */
const struct llamad_gguf_tensor *llamad_gguf_find_tensor(const struct llamad_gguf *g,
                                                         const char *name);

/* True when s equals the NUL-terminated c string. */
bool llamad_gguf_str_eq(struct llamad_gguf_str s, const char *c);

/* ---- Writer ----
 * Builds a GGUF file in memory; keys and tensors are written in the order added.
 * Every add function copies what it is given. */
struct llamad_gguf_writer;

struct llamad_gguf_writer *llamad_gguf_writer_new(void);
void llamad_gguf_writer_free(struct llamad_gguf_writer *w);

int llamad_gguf_writer_set_version(struct llamad_gguf_writer *w,
                                   uint32_t version); /* 2 or 3 (default) */
/* Data-section alignment; also written as general.alignment when not 32. */
int llamad_gguf_writer_set_alignment(struct llamad_gguf_writer *w, uint32_t alignment);

int llamad_gguf_writer_add_u32(struct llamad_gguf_writer *w, const char *key, uint32_t v);
int llamad_gguf_writer_add_i32(struct llamad_gguf_writer *w, const char *key, int32_t v);
int llamad_gguf_writer_add_u64(struct llamad_gguf_writer *w, const char *key, uint64_t v);
int llamad_gguf_writer_add_f32(struct llamad_gguf_writer *w, const char *key, float v);
int llamad_gguf_writer_add_bool(struct llamad_gguf_writer *w, const char *key, bool v);
int llamad_gguf_writer_add_str(struct llamad_gguf_writer *w, const char *key, const char *v);
/* An array of fixed-size elements given packed in host (little-endian) order. */
int llamad_gguf_writer_add_array(struct llamad_gguf_writer *w, const char *key,
                                 enum llamad_gguf_type elem_type, const void *elems,
                                 uint64_t count);
int llamad_gguf_writer_add_str_array(struct llamad_gguf_writer *w, const char *key,
                                     const char *const *strs, uint64_t count);
/* Copies a metadata value as it is (any type, nested arrays included), e.g. from a donor file. */
int llamad_gguf_writer_add_value(struct llamad_gguf_writer *w, const char *key,
                                 const struct llamad_gguf_value *v);

/* A tensor: ne[0..n_dims-1] elements of `type`; data holds exactly the bytes that
 * size takes (llamad_type_bytes). */
int llamad_gguf_writer_add_tensor(struct llamad_gguf_writer *w, const char *name, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, const void *data);

/* A tensor whose bytes are produced only when the file is written: fill(ctx, dst,
 * nbytes) writes them into a scratch buffer (for files larger than memory wants). */
typedef int (*llamad_gguf_fill_fn)(void *ctx, void *dst, uint64_t nbytes);
int llamad_gguf_writer_add_tensor_lazy(struct llamad_gguf_writer *w, const char *name,
                                       uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                       llamad_gguf_fill_fn fill, void *ctx);

/* The whole file as bytes (malloc'd; the caller frees) or written to a path. */
int llamad_gguf_writer_to_memory(struct llamad_gguf_writer *w, uint8_t **out, size_t *size,
                                 char *err, size_t errsz);
int llamad_gguf_writer_write_file(struct llamad_gguf_writer *w, const char *path, char *err,
                                  size_t errsz);

#endif
