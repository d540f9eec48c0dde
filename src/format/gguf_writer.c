/* GGUF writer: builds a file's header in memory and streams tensor data out. */
#include "llamad/format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_common.h"
#include "llamad/base/error.h"
#include "llamad/format/types.h"

/* ---- Writer ---- */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[LLAMAD_GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset; /* in the data section; set when the file is laid out */
    uint8_t *data;   /* owned copy, or NULL for a lazy tensor */
    llamad_gguf_fill_fn fill;
    void *ctx;
};

struct llamad_gguf_writer {
    uint32_t version;
    uint32_t alignment;
    bool alignment_key; /* general.alignment was added as a key */
    struct wbuf meta;   /* the serialised key/value pairs, in order */
    char **keys;
    size_t n_kv, keys_cap;
    struct wtensor *tensors;
    size_t n_tensors, tensors_cap;
};

static int wb_put(struct wbuf *b, const void *data, size_t n)
{
    if (n > SIZE_MAX - b->len)
        return LLAMAD_ENOMEM;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return LLAMAD_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return LLAMAD_OK;
}

static int wb_le(struct wbuf *b, uint64_t v, unsigned n)
{
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return wb_put(b, t, n);
}

static int wb_str(struct wbuf *b, const char *s, uint64_t len)
{
    if (len > SIZE_MAX || (len > 0 && !s))
        return LLAMAD_EINVAL;
    int rc = wb_le(b, len, 8);
    return rc ? rc : wb_put(b, s, (size_t)len);
}

/* Grows an array of elem-sized items so that one more fits. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return LLAMAD_OK;
    size_t c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / elem)
        return LLAMAD_ENOMEM;
    void *q = realloc(*arr, c * elem);
    if (!q)
        return LLAMAD_ENOMEM;
    *arr = q;
    *cap = c;
    return LLAMAD_OK;
}

struct llamad_gguf_writer *llamad_gguf_writer_new(void)
{
    struct llamad_gguf_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->version = 3;
        w->alignment = LLAMAD_GGUF_DEFAULT_ALIGNMENT;
    }
    return w;
}

void llamad_gguf_writer_free(struct llamad_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->tensors);
    free(w->meta.p);
    free(w);
}

int llamad_gguf_writer_set_version(struct llamad_gguf_writer *w, uint32_t version)
{
    if (version != 2 && version != 3)
        return LLAMAD_EINVAL;
    w->version = version;
    return LLAMAD_OK;
}

int llamad_gguf_writer_set_alignment(struct llamad_gguf_writer *w, uint32_t alignment)
{
    if (!llamad_gguf_valid_alignment(alignment))
        return LLAMAD_EINVAL;
    /* An explicit general.alignment key already fixed the layout. */
    if (w->alignment_key && alignment != w->alignment)
        return LLAMAD_EINVAL;
    w->alignment = alignment;
    return LLAMAD_OK;
}

/* Appends a fixed-size value, refusing one the type cannot hold. */
static int put_scalar(struct wbuf *b, enum llamad_gguf_type type, const struct llamad_gguf_value *v)
{
    unsigned n = llamad_gguf_value_size(type);
    switch (type) {
    case LLAMAD_GGUF_UINT8:
    case LLAMAD_GGUF_UINT16:
    case LLAMAD_GGUF_UINT32:
    case LLAMAD_GGUF_UINT64:
        if (n < 8 && (v->u64 >> (8 * n)) != 0)
            return LLAMAD_EINVAL;
        return wb_le(b, v->u64, n);
    case LLAMAD_GGUF_INT8:
    case LLAMAD_GGUF_INT16:
    case LLAMAD_GGUF_INT32:
    case LLAMAD_GGUF_INT64:
        if (n < 8 &&
            (v->i64 < -(INT64_C(1) << (8 * n - 1)) || v->i64 >= (INT64_C(1) << (8 * n - 1))))
            return LLAMAD_EINVAL;
        return wb_le(b, (uint64_t)v->i64, n);
    case LLAMAD_GGUF_FLOAT32: {
        float f = (float)v->f64;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return wb_le(b, u, 4);
    }
    case LLAMAD_GGUF_FLOAT64: {
        uint64_t u;
        memcpy(&u, &v->f64, sizeof u);
        return wb_le(b, u, 8);
    }
    case LLAMAD_GGUF_BOOL: return wb_le(b, v->b ? 1 : 0, 1);
    default: return LLAMAD_EINVAL;
    }
}

static int put_payload(struct wbuf *b, const struct llamad_gguf_value *v, unsigned depth);

/* An array's element type, count and elements; depth counts the arrays around it. */
static int put_array(struct wbuf *b, const struct llamad_gguf_value *v, unsigned depth)
{
    enum llamad_gguf_type et = v->arr.elem_type;
    uint64_t count = v->arr.count;
    if (depth >= LLAMAD_GGUF_MAX_ARRAY_DEPTH || (unsigned)et >= LLAMAD_GGUF_TYPE_COUNT)
        return LLAMAD_EINVAL;
    int rc = wb_le(b, et, 4);
    if (!rc)
        rc = wb_le(b, count, 8);
    if (rc)
        return rc;
    if (llamad_gguf_value_size(et) != 0) {
        if (count > SIZE_MAX / llamad_gguf_value_size(et) || (count > 0 && !v->arr.raw))
            return LLAMAD_EINVAL;
        for (uint64_t i = 0; et == LLAMAD_GGUF_BOOL && i < count; i++)
            if (v->arr.raw[i] > 1)
                return LLAMAD_EINVAL;
        return wb_put(b, v->arr.raw, (size_t)(count * llamad_gguf_value_size(et)));
    }
    if (count > 0 && !v->arr.items)
        return LLAMAD_EINVAL;
    for (uint64_t i = 0; i < count && !rc; i++) {
        if (v->arr.items[i].type != et)
            return LLAMAD_EINVAL;
        rc = put_payload(b, &v->arr.items[i], depth + 1);
    }
    return rc;
}

/* A value without its type tag, as array elements are stored. */
static int put_payload(struct wbuf *b, const struct llamad_gguf_value *v, unsigned depth)
{
    if (v->type == LLAMAD_GGUF_STRING)
        return wb_str(b, v->str.data, v->str.len);
    if (v->type == LLAMAD_GGUF_ARRAY)
        return put_array(b, v, depth);
    if ((unsigned)v->type >= LLAMAD_GGUF_TYPE_COUNT)
        return LLAMAD_EINVAL;
    return put_scalar(b, v->type, v);
}

static bool has_key(const struct llamad_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return true;
    return false;
}

/* Serialises one key/value pair; on failure the writer is left as it was. */
static int add_kv(struct llamad_gguf_writer *w, const char *key, const struct llamad_gguf_value *v)
{
    if (!key || !v)
        return LLAMAD_EINVAL;
    size_t klen = strlen(key);
    if (klen == 0 || klen > LLAMAD_GGUF_MAX_NAME_LEN || has_key(w, key))
        return LLAMAD_EINVAL;
    /* The key decides the layout, so it must be one a reader accepts and agree with
     * an alignment already set. */
    bool is_align = strcmp(key, LLAMAD_GGUF_ALIGNMENT_KEY) == 0;
    if (is_align && (v->type != LLAMAD_GGUF_UINT32 || !llamad_gguf_valid_alignment(v->u64) ||
                     (w->alignment != LLAMAD_GGUF_DEFAULT_ALIGNMENT && v->u64 != w->alignment)))
        return LLAMAD_EINVAL;
    int rc = grow((void **)&w->keys, &w->keys_cap, w->n_kv, sizeof *w->keys);
    if (rc)
        return rc;
    char *copy = strdup(key);
    if (!copy)
        return LLAMAD_ENOMEM;
    size_t start = w->meta.len;
    rc = wb_str(&w->meta, key, klen);
    if (!rc)
        rc = wb_le(&w->meta, (uint32_t)v->type, 4);
    if (!rc)
        rc = put_payload(&w->meta, v, 0);
    if (rc) {
        w->meta.len = start;
        free(copy);
        return rc;
    }
    w->keys[w->n_kv++] = copy;
    if (is_align) {
        w->alignment = (uint32_t)v->u64;
        w->alignment_key = true;
    }
    return LLAMAD_OK;
}

int llamad_gguf_writer_add_u32(struct llamad_gguf_writer *w, const char *key, uint32_t v)
{
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_UINT32, .u64 = v};
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_i32(struct llamad_gguf_writer *w, const char *key, int32_t v)
{
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_INT32, .i64 = v};
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_u64(struct llamad_gguf_writer *w, const char *key, uint64_t v)
{
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_UINT64, .u64 = v};
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_f32(struct llamad_gguf_writer *w, const char *key, float v)
{
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_FLOAT32, .f64 = v};
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_bool(struct llamad_gguf_writer *w, const char *key, bool v)
{
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_BOOL, .b = v};
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_str(struct llamad_gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return LLAMAD_EINVAL;
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_STRING, .str = {v, strlen(v)}};
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_array(struct llamad_gguf_writer *w, const char *key,
                                 enum llamad_gguf_type elem_type, const void *elems, uint64_t count)
{
    if ((unsigned)elem_type >= LLAMAD_GGUF_TYPE_COUNT || llamad_gguf_value_size(elem_type) == 0)
        return LLAMAD_EINVAL;
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_ARRAY};
    val.arr.elem_type = elem_type;
    val.arr.count = count;
    val.arr.raw = elems;
    return add_kv(w, key, &val);
}

int llamad_gguf_writer_add_str_array(struct llamad_gguf_writer *w, const char *key,
                                     const char *const *strs, uint64_t count)
{
    if (count > SIZE_MAX / sizeof(struct llamad_gguf_value) || (count > 0 && !strs))
        return LLAMAD_EINVAL;
    struct llamad_gguf_value *items = NULL;
    if (count > 0) {
        items = calloc((size_t)count, sizeof *items);
        if (!items)
            return LLAMAD_ENOMEM;
    }
    for (uint64_t i = 0; i < count; i++) {
        if (!strs[i]) {
            free(items);
            return LLAMAD_EINVAL;
        }
        items[i].type = LLAMAD_GGUF_STRING;
        items[i].str = (struct llamad_gguf_str){strs[i], strlen(strs[i])};
    }
    struct llamad_gguf_value val = {.type = LLAMAD_GGUF_ARRAY};
    val.arr.elem_type = LLAMAD_GGUF_STRING;
    val.arr.count = count;
    val.arr.items = items;
    int rc = add_kv(w, key, &val);
    free(items);
    return rc;
}

int llamad_gguf_writer_add_value(struct llamad_gguf_writer *w, const char *key,
                                 const struct llamad_gguf_value *v)
{
    return add_kv(w, key, v);
}

/* Checks a tensor's name, shape and type and fills t's shape and size (not its name
 * or data). */
static int check_tensor(const struct llamad_gguf_writer *w, const char *name, uint32_t type,
                        uint32_t n_dims, const uint64_t *ne, struct wtensor *t)
{
    if (!name || !ne || n_dims == 0 || n_dims > LLAMAD_GGUF_MAX_DIMS)
        return LLAMAD_EINVAL;
    size_t len = strlen(name);
    if (len == 0 || len > LLAMAD_GGUF_MAX_NAME_LEN)
        return LLAMAD_EINVAL;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return LLAMAD_EINVAL;
    const struct llamad_type_info *ti = llamad_type_info(type);
    if (!ti || ne[0] % ti->block_elems != 0)
        return LLAMAD_EINVAL;
    uint64_t n_elems = 1;
    *t = (struct wtensor){.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > INT64_MAX / n_elems)
            return LLAMAD_EINVAL;
        n_elems *= ne[d];
        t->ne[d] = ne[d];
    }
    if (!llamad_type_bytes(type, n_elems, &t->nbytes) || t->nbytes > SIZE_MAX)
        return LLAMAD_EINVAL;
    return LLAMAD_OK;
}

/* Appends t under a copy of name; on failure the caller still owns t->data. */
static int append_tensor(struct llamad_gguf_writer *w, const char *name, struct wtensor *t)
{
    int rc = grow((void **)&w->tensors, &w->tensors_cap, w->n_tensors, sizeof *w->tensors);
    if (rc)
        return rc;
    t->name = strdup(name);
    if (!t->name)
        return LLAMAD_ENOMEM;
    w->tensors[w->n_tensors++] = *t;
    return LLAMAD_OK;
}

int llamad_gguf_writer_add_tensor(struct llamad_gguf_writer *w, const char *name, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, const void *data)
{
    struct wtensor t;
    int rc = check_tensor(w, name, type, n_dims, ne, &t);
    if (rc)
        return rc;
    if (!data)
        return LLAMAD_EINVAL;
    t.data = malloc((size_t)t.nbytes);
    if (!t.data)
        return LLAMAD_ENOMEM;
    memcpy(t.data, data, (size_t)t.nbytes);
    rc = append_tensor(w, name, &t);
    if (rc)
        free(t.data);
    return rc;
}

int llamad_gguf_writer_add_tensor_lazy(struct llamad_gguf_writer *w, const char *name,
                                       uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                       llamad_gguf_fill_fn fill, void *ctx)
{
    struct wtensor t;
    int rc = check_tensor(w, name, type, n_dims, ne, &t);
    if (rc)
        return rc;
    if (!fill)
        return LLAMAD_EINVAL;
    t.fill = fill;
    t.ctx = ctx;
    return append_tensor(w, name, &t);
}

/* Lays the tensors out (each at an aligned offset, each padded to the alignment as
 * ggml's writer does) and serialises everything before the data section into head.
 * The data section starts at *data_start; the file is *total bytes. */
static int build_head(struct llamad_gguf_writer *w, struct wbuf *head, uint64_t *data_start,
                      uint64_t *total, char *err, size_t errsz)
{
    uint64_t a = w->alignment, off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        struct wtensor *t = &w->tensors[i];
        t->offset = off;
        if (off > UINT64_MAX - a || t->nbytes > UINT64_MAX - a - off)
            return llamad_fail(err, errsz, LLAMAD_ERANGE, "GGUF writer: tensor data too large");
        off = llamad_gguf_align_up(off + t->nbytes, a);
    }
    bool auto_align = !w->alignment_key && a != LLAMAD_GGUF_DEFAULT_ALIGNMENT;
    int rc = wb_put(head, "GGUF", 4);
    if (!rc)
        rc = wb_le(head, w->version, 4);
    if (!rc)
        rc = wb_le(head, w->n_tensors, 8);
    if (!rc)
        rc = wb_le(head, w->n_kv + auto_align, 8);
    if (!rc)
        rc = wb_put(head, w->meta.p, w->meta.len);
    if (!rc && auto_align) {
        rc = wb_str(head, LLAMAD_GGUF_ALIGNMENT_KEY, strlen(LLAMAD_GGUF_ALIGNMENT_KEY));
        if (!rc)
            rc = wb_le(head, LLAMAD_GGUF_UINT32, 4);
        if (!rc)
            rc = wb_le(head, a, 4);
    }
    for (size_t i = 0; i < w->n_tensors && !rc; i++) {
        const struct wtensor *t = &w->tensors[i];
        rc = wb_str(head, t->name, strlen(t->name));
        if (!rc)
            rc = wb_le(head, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims && !rc; d++)
            rc = wb_le(head, t->ne[d], 8);
        if (!rc)
            rc = wb_le(head, t->type, 4);
        if (!rc)
            rc = wb_le(head, t->offset, 8);
    }
    if (rc)
        return llamad_fail(err, errsz, rc, "GGUF writer: out of memory for the header");
    /* Without tensors there is no data section to align (as in vocab-only files). */
    *data_start = w->n_tensors ? llamad_gguf_align_up(head->len, a) : head->len;
    if (off > UINT64_MAX - *data_start)
        return llamad_fail(err, errsz, LLAMAD_ERANGE, "GGUF writer: file too large");
    *total = *data_start + off;
    return LLAMAD_OK;
}

/* Where the bytes go: a file descriptor, or a memory buffer when fd < 0. */
struct sink {
    int fd;
    uint8_t *mem;
    uint64_t pos;
    const char *path;
    char *err;
    size_t errsz;
};

static int sink_write(struct sink *s, const void *data, uint64_t n)
{
    if (s->fd < 0) {
        memcpy(s->mem + s->pos, data, (size_t)n);
        s->pos += n;
        return LLAMAD_OK;
    }
    const uint8_t *b = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(s->fd, b, chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return llamad_fail(s->err, s->errsz, LLAMAD_EIO, "%s: write failed: %s", s->path,
                               k < 0 ? strerror(errno) : "no progress");
        b += k;
        n -= (uint64_t)k;
        s->pos += (uint64_t)k;
    }
    return LLAMAD_OK;
}

static int sink_zeros(struct sink *s, uint64_t n)
{
    static const uint8_t zeros[4096];
    while (n > 0) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = sink_write(s, zeros, k);
        if (rc)
            return rc;
        n -= k;
    }
    return LLAMAD_OK;
}

/* Produces a lazy tensor's bytes in a scratch buffer and writes them out. */
static int write_lazy(struct sink *s, const struct wtensor *t)
{
    char e[LLAMAD_GGUF_ESC_BUF];
    void *scratch = malloc((size_t)t->nbytes);
    if (!scratch)
        return llamad_fail(s->err, s->errsz, LLAMAD_ENOMEM,
                           "%s: out of memory for tensor '%s' (%" PRIu64 " bytes)", s->path,
                           llamad_gguf_escape(e, t->name, strlen(t->name)), t->nbytes);
    int rc = t->fill(t->ctx, scratch, t->nbytes);
    if (rc) {
        free(scratch);
        /* The callback reports a negative LLAMAD_E* code; anything else counts as I/O. */
        return llamad_fail(s->err, s->errsz, rc < 0 ? rc : LLAMAD_EIO,
                           "%s: producing the data of tensor '%s' failed (%d)", s->path,
                           llamad_gguf_escape(e, t->name, strlen(t->name)), rc);
    }
    rc = sink_write(s, scratch, t->nbytes);
    free(scratch);
    return rc;
}

/* Writes the head, then each tensor's data in turn with zero padding. */
static int emit(const struct llamad_gguf_writer *w, const struct wbuf *head, uint64_t data_start,
                struct sink *s)
{
    int rc = sink_write(s, head->p, head->len);
    if (!rc)
        rc = sink_zeros(s, data_start - head->len);
    for (size_t i = 0; i < w->n_tensors && !rc; i++) {
        const struct wtensor *t = &w->tensors[i];
        rc = t->data ? sink_write(s, t->data, t->nbytes) : write_lazy(s, t);
        if (!rc)
            rc = sink_zeros(s, llamad_gguf_align_up(t->nbytes, w->alignment) - t->nbytes);
    }
    return rc;
}

int llamad_gguf_writer_to_memory(struct llamad_gguf_writer *w, uint8_t **out, size_t *size,
                                 char *err, size_t errsz)
{
    *out = NULL;
    *size = 0;
    struct wbuf head = {0};
    uint64_t data_start, total;
    int rc = build_head(w, &head, &data_start, &total, err, errsz);
    if (!rc && total > SIZE_MAX)
        rc = llamad_fail(err, errsz, LLAMAD_ERANGE, "GGUF writer: file too large for memory");
    struct sink s = {.fd = -1, .path = "<memory>", .err = err, .errsz = errsz};
    if (!rc) {
        s.mem = malloc((size_t)total);
        if (!s.mem)
            rc = llamad_fail(err, errsz, LLAMAD_ENOMEM,
                             "GGUF writer: out of memory for %" PRIu64 " bytes", total);
    }
    if (!rc)
        rc = emit(w, &head, data_start, &s);
    free(head.p);
    if (rc) {
        free(s.mem);
        return rc;
    }
    *out = s.mem;
    *size = (size_t)total;
    return LLAMAD_OK;
}

int llamad_gguf_writer_write_file(struct llamad_gguf_writer *w, const char *path, char *err,
                                  size_t errsz)
{
    struct wbuf head = {0};
    uint64_t data_start, total;
    int rc = build_head(w, &head, &data_start, &total, err, errsz);
    if (rc)
        return rc;
    static const char suffix[] = ".tmp.XXXXXX";
    char *tmp = malloc(strlen(path) + sizeof suffix);
    if (!tmp) {
        free(head.p);
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "%s: out of memory", path);
    }
    strcpy(tmp, path);
    strcat(tmp, suffix);
    /* The file appears under its name only once complete, so a reader never sees half of it. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "%s: cannot create a temporary file: %s", path,
                         strerror(errno));
        free(tmp);
        free(head.p);
        return rc;
    }
    struct sink s = {.fd = fd, .path = path, .err = err, .errsz = errsz};
    if (fchmod(fd, 0644) != 0)
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "%s: chmod failed: %s", path, strerror(errno));
    if (!rc)
        rc = emit(w, &head, data_start, &s);
    if (!rc && fsync(fd) != 0)
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc)
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "%s: close failed: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "%s: rename failed: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    free(head.p);
    return rc;
}
