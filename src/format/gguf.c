#include "llamad/format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_common.h"
#include "llamad/base/error.h"
#include "llamad/format/types.h"

#define MIN_KV_BYTES 14     /* key length 8 + key >= 1 + value type 4 + value >= 1 */
#define MIN_TENSOR_BYTES 33 /* name length 8 + name >= 1 + n_dims 4 + ne 8 + type 4 + offset 8 */
#define ESC_SHOWN LLAMAD_GGUF_ESC_SHOWN
#define ESC_BUF LLAMAD_GGUF_ESC_BUF

/* Bytes a value of each type takes in the file; 0 for STRING and ARRAY, whose size varies. */
static const uint8_t type_size[LLAMAD_GGUF_TYPE_COUNT] = {
    [LLAMAD_GGUF_UINT8] = 1,   [LLAMAD_GGUF_INT8] = 1,   [LLAMAD_GGUF_UINT16] = 2,
    [LLAMAD_GGUF_INT16] = 2,   [LLAMAD_GGUF_UINT32] = 4, [LLAMAD_GGUF_INT32] = 4,
    [LLAMAD_GGUF_FLOAT32] = 4, [LLAMAD_GGUF_BOOL] = 1,   [LLAMAD_GGUF_STRING] = 0,
    [LLAMAD_GGUF_ARRAY] = 0,   [LLAMAD_GGUF_UINT64] = 8, [LLAMAD_GGUF_INT64] = 8,
    [LLAMAD_GGUF_FLOAT64] = 8,
};

static const char *const type_names[LLAMAD_GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",   "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64",
};

const char *llamad_gguf_type_name(enum llamad_gguf_type t)
{
    return (unsigned)t < LLAMAD_GGUF_TYPE_COUNT ? type_names[t] : "unknown";
}

/* "a" or "an" to go before a type name in a message. */
static const char *article(const char *word)
{
    return strchr("aeio", word[0]) ? "an" : "a";
}

unsigned llamad_gguf_value_size(enum llamad_gguf_type t)
{
    return (unsigned)t < LLAMAD_GGUF_TYPE_COUNT ? type_size[t] : 0;
}

const char *llamad_gguf_escape(char buf[ESC_BUF], const void *s, uint64_t len)
{
    const unsigned char *b = s;
    size_t o = 0;
    for (uint64_t i = 0; i < len && i < ESC_SHOWN; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\' && b[i] != '\'')
            buf[o++] = (char)b[i];
        else
            o += (size_t)snprintf(buf + o, 5, "\\x%02x", b[i]);
    }
    if (len > ESC_SHOWN) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static uint64_t le_load(const uint8_t *b, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static int str_cmp(const char *a, uint64_t alen, const char *b, uint64_t blen)
{
    uint64_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

bool llamad_gguf_str_eq(struct llamad_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.data, c, n) == 0);
}

/* Decodes one fixed-size value of `type` stored little-endian at b. */
static struct llamad_gguf_value decode_scalar(enum llamad_gguf_type type, const uint8_t *b)
{
    struct llamad_gguf_value v = {.type = type};
    uint64_t raw = le_load(b, type_size[type]);
    switch (type) {
    case LLAMAD_GGUF_INT8: v.i64 = (int8_t)raw; break;
    case LLAMAD_GGUF_INT16: v.i64 = (int16_t)raw; break;
    case LLAMAD_GGUF_INT32: v.i64 = (int32_t)raw; break;
    case LLAMAD_GGUF_INT64: v.i64 = (int64_t)raw; break;
    case LLAMAD_GGUF_FLOAT32: {
        uint32_t u = (uint32_t)raw;
        float f;
        memcpy(&f, &u, sizeof f);
        v.f64 = f;
        break;
    }
    case LLAMAD_GGUF_FLOAT64: memcpy(&v.f64, &raw, sizeof v.f64); break;
    case LLAMAD_GGUF_BOOL: v.b = raw != 0; break;
    default: v.u64 = raw; break;
    }
    return v;
}

struct llamad_gguf_value llamad_gguf_array_get(const struct llamad_gguf_value *arr, uint64_t i)
{
    enum llamad_gguf_type et = arr->arr.elem_type;
    if (arr->type != LLAMAD_GGUF_ARRAY || i >= arr->arr.count)
        return (struct llamad_gguf_value){.type = et};
    if (arr->arr.items)
        return arr->arr.items[i];
    return decode_scalar(et, arr->arr.raw + i * type_size[et]);
}

/* ---- Reader ---- */

/* The open handle: the public part first, so a public pointer converts back. */
struct gguf_impl {
    struct llamad_gguf pub;
    bool mapped; /* pub.map came from mmap and is unmapped at close */
    /* Keys and tensor names sorted by content, for lookup. They point at kv[i].key and
     * tensors[i].name, which are the first members of their structs. */
    const struct llamad_gguf_str **kv_index;
    const struct llamad_gguf_str **tensor_index;
};

struct parser {
    const uint8_t *map;
    uint64_t size;
    uint64_t pos;
    const char *name;
    char where[ESC_BUF + 64]; /* the element being read, for messages */
    char *err;
    size_t errsz;
};

static void set_where(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_where(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->where, sizeof p->where, fmt, ap);
    va_end(ap);
}

/* Fails with "<file>: <where> at offset <off>: <detail>". */
static int bad(struct parser *p, uint64_t off, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(struct parser *p, uint64_t off, int code, const char *fmt, ...)
{
    char detail[LLAMAD_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return llamad_fail(p->err, p->errsz, code, "%s: %s at offset %" PRIu64 ": %s", p->name,
                       p->where, off, detail);
}

static int no_memory(struct parser *p, const char *what)
{
    return llamad_fail(p->err, p->errsz, LLAMAD_ENOMEM, "%s: out of memory for %s (%s)", p->name,
                       what, p->where);
}

/* Checks that n more bytes exist at the read position. */
static int need(struct parser *p, uint64_t n)
{
    if (n <= p->size - p->pos)
        return LLAMAD_OK;
    return llamad_fail(p->err, p->errsz, LLAMAD_EFORMAT,
                       "%s: truncated in %s at offset %" PRIu64 " (%" PRIu64
                       " bytes needed, %" PRIu64 " left)",
                       p->name, p->where, p->pos, n, p->size - p->pos);
}

static int read_u32(struct parser *p, uint32_t *v)
{
    int rc = need(p, 4);
    if (rc)
        return rc;
    *v = (uint32_t)le_load(p->map + p->pos, 4);
    p->pos += 4;
    return LLAMAD_OK;
}

static int read_u64(struct parser *p, uint64_t *v)
{
    int rc = need(p, 8);
    if (rc)
        return rc;
    *v = le_load(p->map + p->pos, 8);
    p->pos += 8;
    return LLAMAD_OK;
}

static int read_str(struct parser *p, struct llamad_gguf_str *s)
{
    uint64_t len;
    int rc = read_u64(p, &len);
    if (!rc)
        rc = need(p, len);
    if (rc)
        return rc;
    s->data = (const char *)p->map + p->pos;
    s->len = len;
    p->pos += len;
    return LLAMAD_OK;
}

/* A key or tensor name: a string of 1..LLAMAD_GGUF_MAX_NAME_LEN bytes. */
static int read_name(struct parser *p, struct llamad_gguf_str *s)
{
    uint64_t off = p->pos, len;
    int rc = read_u64(p, &len);
    if (rc)
        return rc;
    if (len == 0 || len > LLAMAD_GGUF_MAX_NAME_LEN)
        return bad(p, off, LLAMAD_EFORMAT, "name length %" PRIu64 " is invalid (must be 1..%d)",
                   len, LLAMAD_GGUF_MAX_NAME_LEN);
    p->pos = off;
    return read_str(p, s);
}

static int parse_value(struct parser *p, enum llamad_gguf_type type, struct llamad_gguf_value *v,
                       unsigned depth);

/* Fewest bytes one array element of type et takes (an empty string or array). */
static uint64_t min_elem_bytes(enum llamad_gguf_type et)
{
    if (et == LLAMAD_GGUF_STRING)
        return 8;
    if (et == LLAMAD_GGUF_ARRAY)
        return 12;
    return type_size[et];
}

/* An ARRAY value; `depth` is the number of arrays around it. The element count is
 * checked against the bytes left before anything is allocated for it. */
static int parse_array(struct parser *p, struct llamad_gguf_value *v, unsigned depth)
{
    uint64_t off = p->pos;
    if (depth >= LLAMAD_GGUF_MAX_ARRAY_DEPTH)
        return bad(p, off, LLAMAD_EFORMAT, "arrays nested more than %d deep",
                   LLAMAD_GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t count;
    int rc = read_u32(p, &et);
    if (rc)
        return rc;
    if (et >= LLAMAD_GGUF_TYPE_COUNT)
        return bad(p, off, LLAMAD_EFORMAT, "array of unknown value type %" PRIu32, et);
    rc = read_u64(p, &count);
    if (rc)
        return rc;
    uint64_t min = min_elem_bytes(et), left = p->size - p->pos;
    if (count > left / min)
        return bad(p, off, LLAMAD_EFORMAT,
                   "truncated or corrupt: array of %" PRIu64 " %s elements (at least %" PRIu64
                   " bytes each) does not fit in the %" PRIu64 " bytes left",
                   count, type_names[et], min, left);
    v->arr.elem_type = et;
    v->arr.count = count;
    if (type_size[et] != 0) {
        const uint8_t *raw = p->map + p->pos;
        for (uint64_t i = 0; et == LLAMAD_GGUF_BOOL && i < count; i++)
            if (raw[i] > 1)
                return bad(p, p->pos + i, LLAMAD_EFORMAT,
                           "array element %" PRIu64 " is a bool of value %u (must be 0 or 1)", i,
                           raw[i]);
        v->arr.raw = raw;
        p->pos += count * type_size[et];
        return LLAMAD_OK;
    }
    if (count == 0)
        return LLAMAD_OK;
    v->arr.items = calloc(count, sizeof *v->arr.items);
    if (!v->arr.items)
        return no_memory(p, "array elements");
    for (uint64_t i = 0; i < count; i++) {
        rc = parse_value(p, et, &v->arr.items[i], depth + 1);
        if (rc)
            return rc;
    }
    return LLAMAD_OK;
}

/* A value of `type` (already known to be < LLAMAD_GGUF_TYPE_COUNT). On failure, v may
 * hold allocations that free_value releases. */
static int parse_value(struct parser *p, enum llamad_gguf_type type, struct llamad_gguf_value *v,
                       unsigned depth)
{
    v->type = type;
    if (type == LLAMAD_GGUF_STRING)
        return read_str(p, &v->str);
    if (type == LLAMAD_GGUF_ARRAY)
        return parse_array(p, v, depth);
    int rc = need(p, type_size[type]);
    if (rc)
        return rc;
    const uint8_t *b = p->map + p->pos;
    if (type == LLAMAD_GGUF_BOOL && b[0] > 1)
        return bad(p, p->pos, LLAMAD_EFORMAT, "bool of value %u (must be 0 or 1)", b[0]);
    *v = decode_scalar(type, b);
    p->pos += type_size[type];
    return LLAMAD_OK;
}

static void free_value(struct llamad_gguf_value *v)
{
    if (v->type != LLAMAD_GGUF_ARRAY || !v->arr.items)
        return;
    if (v->arr.elem_type == LLAMAD_GGUF_ARRAY)
        for (uint64_t i = 0; i < v->arr.count; i++)
            free_value(&v->arr.items[i]);
    free(v->arr.items);
}

static int parse_header(struct parser *p, struct llamad_gguf *g)
{
    set_where(p, "header");
    int rc = need(p, 4);
    if (rc)
        return rc;
    if (memcmp(p->map, "GGUF", 4) != 0) {
        char m[ESC_BUF];
        return bad(p, 0, LLAMAD_EFORMAT, "bad magic '%s' (expected 'GGUF'): not a GGUF file",
                   llamad_gguf_escape(m, p->map, 4));
    }
    p->pos = 4;
    rc = read_u32(p, &g->version);
    if (rc)
        return rc;
    /* A big-endian writer stores small version numbers with the low half zero. */
    if (g->version != 0 && (g->version & 0xffff) == 0)
        return bad(p, 4, LLAMAD_EUNSUPPORTED,
                   "version field 0x%08" PRIx32 " is byte-swapped: big-endian GGUF files are not "
                   "supported",
                   g->version);
    if (g->version < 2 || g->version > 3)
        return bad(p, 4, LLAMAD_EUNSUPPORTED,
                   "GGUF version %" PRIu32 " is not supported (only versions 2 and 3)", g->version);
    rc = read_u64(p, &g->n_tensors);
    if (!rc)
        rc = read_u64(p, &g->n_kv);
    if (rc)
        return rc;
    /* Both counts size allocations: bound them by the bytes that could hold them. */
    uint64_t left = p->size - p->pos;
    if (g->n_kv > left / MIN_KV_BYTES)
        return bad(p, 16, LLAMAD_EFORMAT,
                   "truncated or corrupt: %" PRIu64 " metadata keys (at least %d bytes each) do "
                   "not fit in the %" PRIu64 " bytes left",
                   g->n_kv, MIN_KV_BYTES, left);
    if (g->n_tensors > left / MIN_TENSOR_BYTES)
        return bad(p, 8, LLAMAD_EFORMAT,
                   "truncated or corrupt: %" PRIu64 " tensors (at least %d bytes each) do not fit "
                   "in the %" PRIu64 " bytes left",
                   g->n_tensors, MIN_TENSOR_BYTES, left);
    return LLAMAD_OK;
}

static int parse_kv(struct parser *p, uint64_t i, struct llamad_gguf_kv *kv)
{
    char e[ESC_BUF];
    set_where(p, "key %" PRIu64 " name", i);
    int rc = read_name(p, &kv->key);
    if (rc)
        return rc;
    llamad_gguf_escape(e, kv->key.data, kv->key.len);
    set_where(p, "key %" PRIu64 " ('%s') type", i, e);
    uint64_t off = p->pos;
    uint32_t type;
    rc = read_u32(p, &type);
    if (rc)
        return rc;
    if (type >= LLAMAD_GGUF_TYPE_COUNT)
        return bad(p, off, LLAMAD_EFORMAT, "unknown value type %" PRIu32, type);
    set_where(p, "key %" PRIu64 " ('%s') value", i, e);
    return parse_value(p, type, &kv->value, 0);
}

/* Sort order for name indexes: by content, then by position so that of two equal
 * names the earlier one comes first. */
static int index_order(const void *a, const void *b)
{
    const struct llamad_gguf_str *x = *(const struct llamad_gguf_str *const *)a;
    const struct llamad_gguf_str *y = *(const struct llamad_gguf_str *const *)b;
    int c = str_cmp(x->data, x->len, y->data, y->len);
    if (c != 0)
        return c;
    return (x > y) - (x < y);
}

/* Builds a sorted index over n names spaced `stride` bytes apart starting at first;
 * on a duplicate, *dup_first / *dup_second get the two entries. */
static int build_index(const struct llamad_gguf_str ***out, const void *first, size_t stride,
                       uint64_t n, const struct llamad_gguf_str **dup_first,
                       const struct llamad_gguf_str **dup_second)
{
    *dup_first = *dup_second = NULL;
    if (n == 0)
        return LLAMAD_OK;
    const struct llamad_gguf_str **idx = malloc(n * sizeof *idx);
    if (!idx)
        return LLAMAD_ENOMEM;
    for (uint64_t i = 0; i < n; i++)
        idx[i] = (const struct llamad_gguf_str *)((const char *)first + i * stride);
    qsort(idx, n, sizeof *idx, index_order);
    *out = idx;
    for (uint64_t i = 1; i < n; i++) {
        if (str_cmp(idx[i - 1]->data, idx[i - 1]->len, idx[i]->data, idx[i]->len) == 0) {
            *dup_first = idx[i - 1];
            *dup_second = idx[i];
            return LLAMAD_EFORMAT;
        }
    }
    return LLAMAD_OK;
}

static const struct llamad_gguf_str *index_find(const struct llamad_gguf_str *const *idx,
                                                uint64_t n, const char *name)
{
    size_t len = strlen(name);
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(idx[mid]->data, idx[mid]->len, name, len);
        if (c == 0)
            return idx[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* File offset of a key or tensor name's length field. */
static uint64_t name_offset(const struct parser *p, const struct llamad_gguf_str *s)
{
    return (uint64_t)((const uint8_t *)s->data - p->map) - 8;
}

static int parse_metadata(struct parser *p, struct gguf_impl *impl)
{
    struct llamad_gguf *g = &impl->pub;
    uint64_t n = g->n_kv;
    if (n == 0)
        return LLAMAD_OK;
    g->kv = calloc(n, sizeof *g->kv);
    if (!g->kv)
        return no_memory(p, "metadata");
    for (uint64_t i = 0; i < n; i++) {
        int rc = parse_kv(p, i, &g->kv[i]);
        if (rc)
            return rc;
    }
    const struct llamad_gguf_str *a, *b;
    int rc = build_index(&impl->kv_index, g->kv, sizeof *g->kv, n, &a, &b);
    if (rc == LLAMAD_ENOMEM)
        return no_memory(p, "the key index");
    if (rc) {
        char e[ESC_BUF];
        set_where(p, "key %" PRIu64 " ('%s')", (uint64_t)((const struct llamad_gguf_kv *)b - g->kv),
                  llamad_gguf_escape(e, b->data, b->len));
        return bad(p, name_offset(p, b), LLAMAD_EFORMAT,
                   "duplicate key (first seen as key %" PRIu64 " at offset %" PRIu64 ")",
                   (uint64_t)((const struct llamad_gguf_kv *)a - g->kv), name_offset(p, a));
    }
    return LLAMAD_OK;
}

static int parse_alignment(struct parser *p, struct llamad_gguf *g)
{
    g->alignment = LLAMAD_GGUF_DEFAULT_ALIGNMENT;
    const struct llamad_gguf_kv *kv = llamad_gguf_find(g, LLAMAD_GGUF_ALIGNMENT_KEY);
    if (!kv)
        return LLAMAD_OK;
    set_where(p, "key %" PRIu64 " ('" LLAMAD_GGUF_ALIGNMENT_KEY "')", (uint64_t)(kv - g->kv));
    uint64_t off = name_offset(p, &kv->key);
    const char *tn = llamad_gguf_type_name(kv->value.type);
    if (kv->value.type != LLAMAD_GGUF_UINT32)
        return bad(p, off, LLAMAD_EFORMAT, LLAMAD_GGUF_ALIGNMENT_KEY " is %s %s, expected a uint32",
                   article(tn), tn);
    if (!llamad_gguf_valid_alignment(kv->value.u64))
        return bad(p, off, LLAMAD_EFORMAT,
                   LLAMAD_GGUF_ALIGNMENT_KEY " is %" PRIu64 ", expected a non-zero power of two",
                   kv->value.u64);
    g->alignment = kv->value.u64;
    return LLAMAD_OK;
}

/* Dimensions of one tensor: each non-zero, and their product within int64. */
static int parse_dims(struct parser *p, struct llamad_gguf_tensor *t, uint64_t *n_elems)
{
    uint64_t off = p->pos;
    int rc = read_u32(p, &t->n_dims);
    if (rc)
        return rc;
    if (t->n_dims == 0 || t->n_dims > LLAMAD_GGUF_MAX_DIMS)
        return bad(p, off, LLAMAD_EFORMAT, "n_dims is %" PRIu32 " (must be 1..%d)", t->n_dims,
                   LLAMAD_GGUF_MAX_DIMS);
    *n_elems = 1;
    for (uint32_t d = 0; d < LLAMAD_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        off = p->pos;
        rc = read_u64(p, &t->ne[d]);
        if (rc)
            return rc;
        if (t->ne[d] == 0)
            return bad(p, off, LLAMAD_EFORMAT, "ne[%" PRIu32 "] is 0", d);
        if (t->ne[d] > INT64_MAX / *n_elems)
            return bad(p, off, LLAMAD_EFORMAT,
                       "ne[%" PRIu32 "] = %" PRIu64 " makes the element count overflow int64", d,
                       t->ne[d]);
        *n_elems *= t->ne[d];
    }
    return LLAMAD_OK;
}

static int parse_tensor_info(struct parser *p, const struct llamad_gguf *g, uint64_t i,
                             struct llamad_gguf_tensor *t)
{
    set_where(p, "tensor %" PRIu64 " name", i);
    int rc = read_name(p, &t->name);
    if (rc)
        return rc;
    char e[ESC_BUF];
    set_where(p, "tensor %" PRIu64 " ('%s')", i, llamad_gguf_escape(e, t->name.data, t->name.len));
    uint64_t n_elems = 0;
    rc = parse_dims(p, t, &n_elems);
    if (rc)
        return rc;
    uint64_t off = p->pos;
    rc = read_u32(p, &t->type);
    if (rc)
        return rc;
    const struct llamad_type_info *ti = llamad_type_info(t->type);
    if (!ti)
        return bad(p, off, LLAMAD_EUNSUPPORTED, "unknown tensor type %" PRIu32, t->type);
    if (t->ne[0] % ti->block_elems != 0)
        return bad(p, off, LLAMAD_EFORMAT,
                   "row length ne[0] = %" PRIu64 " is not a multiple of the %s block size %" PRIu32,
                   t->ne[0], ti->name, ti->block_elems);
    if (!llamad_type_bytes(t->type, n_elems, &t->nbytes))
        return bad(p, off, LLAMAD_EFORMAT, "data size of %" PRIu64 " %s elements overflows",
                   n_elems, ti->name);
    off = p->pos;
    rc = read_u64(p, &t->offset);
    if (rc)
        return rc;
    if (t->offset % g->alignment != 0)
        return bad(p, off, LLAMAD_EFORMAT,
                   "data offset %" PRIu64 " is not aligned to %" PRIu64 " bytes", t->offset,
                   g->alignment);
    return LLAMAD_OK;
}

/* File offset of a tensor info's data offset field (the last field of the info). */
static uint64_t tensor_offset_field(const struct parser *p, const struct llamad_gguf_tensor *t)
{
    return name_offset(p, &t->name) + 8 + t->name.len + 4 + 8 * (uint64_t)t->n_dims + 4;
}

/* Places the data section after the tensor infos and checks each tensor's data lies
 * inside the file. */
static int place_tensors(struct parser *p, struct llamad_gguf *g)
{
    g->data_offset = llamad_gguf_align_up(p->pos, g->alignment);
    /* A file without tensors may end right after its metadata, before any padding. */
    if (g->n_tensors == 0 && g->data_offset > p->size)
        g->data_offset = p->size;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct llamad_gguf_tensor *t = &g->tensors[i];
        if (g->data_offset > p->size || t->offset > p->size - g->data_offset ||
            t->nbytes > p->size - g->data_offset - t->offset) {
            char e[ESC_BUF];
            set_where(p, "tensor %" PRIu64 " ('%s')", i,
                      llamad_gguf_escape(e, t->name.data, t->name.len));
            return bad(p, tensor_offset_field(p, t), LLAMAD_EFORMAT,
                       "%" PRIu64 " bytes of data at data offset %" PRIu64
                       " (data section at %" PRIu64 ") run past the end of the file (%" PRIu64
                       " bytes)",
                       t->nbytes, t->offset, g->data_offset, p->size);
        }
        t->data = p->map + g->data_offset + t->offset;
    }
    return LLAMAD_OK;
}

static int offset_order(const void *a, const void *b)
{
    const struct llamad_gguf_tensor *x = *(const struct llamad_gguf_tensor *const *)a;
    const struct llamad_gguf_tensor *y = *(const struct llamad_gguf_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int check_overlaps(struct parser *p, const struct llamad_gguf *g)
{
    if (g->n_tensors < 2)
        return LLAMAD_OK;
    const struct llamad_gguf_tensor **by_off = malloc(g->n_tensors * sizeof *by_off);
    if (!by_off)
        return no_memory(p, "the overlap check");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        by_off[i] = &g->tensors[i];
    qsort(by_off, g->n_tensors, sizeof *by_off, offset_order);
    int rc = LLAMAD_OK;
    for (uint64_t i = 1; i < g->n_tensors && !rc; i++) {
        const struct llamad_gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (a->offset + a->nbytes > b->offset) {
            char ea[ESC_BUF], eb[ESC_BUF];
            set_where(p, "tensor %" PRIu64 " ('%s')", (uint64_t)(b - g->tensors),
                      llamad_gguf_escape(eb, b->name.data, b->name.len));
            rc = bad(p, tensor_offset_field(p, b), LLAMAD_EFORMAT,
                     "data overlaps tensor %" PRIu64 " ('%s')", (uint64_t)(a - g->tensors),
                     llamad_gguf_escape(ea, a->name.data, a->name.len));
        }
    }
    free(by_off);
    return rc;
}

static int parse_tensors(struct parser *p, struct gguf_impl *impl)
{
    struct llamad_gguf *g = &impl->pub;
    uint64_t n = g->n_tensors;
    if (n > 0) {
        g->tensors = calloc(n, sizeof *g->tensors);
        if (!g->tensors)
            return no_memory(p, "tensor infos");
    }
    for (uint64_t i = 0; i < n; i++) {
        int rc = parse_tensor_info(p, g, i, &g->tensors[i]);
        if (rc)
            return rc;
    }
    const struct llamad_gguf_str *a, *b;
    int rc = build_index(&impl->tensor_index, g->tensors, sizeof *g->tensors, n, &a, &b);
    if (rc == LLAMAD_ENOMEM)
        return no_memory(p, "the tensor index");
    if (rc) {
        char e[ESC_BUF];
        set_where(p, "tensor %" PRIu64 " ('%s')",
                  (uint64_t)((const struct llamad_gguf_tensor *)b - g->tensors),
                  llamad_gguf_escape(e, b->data, b->len));
        return bad(p, name_offset(p, b), LLAMAD_EFORMAT,
                   "duplicate tensor name (first seen as tensor %" PRIu64 " at offset %" PRIu64 ")",
                   (uint64_t)((const struct llamad_gguf_tensor *)a - g->tensors),
                   name_offset(p, a));
    }
    rc = place_tensors(p, g);
    return rc ? rc : check_overlaps(p, g);
}

/* Frees everything but the mapping; works on a handle that failed part way, whose
 * counts may come from a header whose arrays were never allocated. */
static void free_impl(struct gguf_impl *impl)
{
    struct llamad_gguf *g = &impl->pub;
    for (uint64_t i = 0; g->kv && i < g->n_kv; i++)
        free_value(&g->kv[i].value);
    free(g->kv);
    free(g->tensors);
    free(impl->kv_index);
    free(impl->tensor_index);
    free(impl);
}

static int parse_image(const uint8_t *map, uint64_t size, const char *name, bool mapped,
                       struct llamad_gguf **out, char *err, size_t errsz)
{
    struct gguf_impl *impl = calloc(1, sizeof *impl);
    if (!impl)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "%s: out of memory", name);
    struct parser p = {.map = map, .size = size, .name = name, .err = err, .errsz = errsz};
    struct llamad_gguf *g = &impl->pub;
    g->map = map;
    g->size = size;
    int rc = parse_header(&p, g);
    if (!rc)
        rc = parse_metadata(&p, impl);
    if (!rc)
        rc = parse_alignment(&p, g);
    if (!rc)
        rc = parse_tensors(&p, impl);
    if (rc) {
        free_impl(impl);
        return rc;
    }
    impl->mapped = mapped;
    *out = g;
    return LLAMAD_OK;
}

int llamad_gguf_open_memory(const void *data, size_t size, const char *name,
                            struct llamad_gguf **out, char *err, size_t errsz)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (!data && size > 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "%s: no data", name);
    return parse_image(data, size, name, false, out, err, errsz);
}

int llamad_gguf_open(const char *path, struct llamad_gguf **out, char *err, size_t errsz)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return llamad_fail(err, errsz, LLAMAD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return llamad_fail(err, errsz, LLAMAD_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return llamad_fail(err, errsz, LLAMAD_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return llamad_fail(err, errsz, LLAMAD_EIO, "%s: too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return llamad_fail(err, errsz, LLAMAD_EIO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    int rc = parse_image(map, size, path, map != NULL, out, err, errsz);
    if (rc && map)
        munmap(map, size);
    return rc;
}

void llamad_gguf_close(struct llamad_gguf *g)
{
    if (!g)
        return;
    struct gguf_impl *impl = (struct gguf_impl *)g;
    if (impl->mapped)
        munmap((void *)g->map, g->size);
    free_impl(impl);
}

void llamad_gguf_release(const struct llamad_gguf *g, const void *data, size_t n)
{
    const struct gguf_impl *impl = (const struct gguf_impl *)g;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t begin = ((uintptr_t)data + page - 1) / page * page;
    const uintptr_t end = ((uintptr_t)data + n) / page * page;
    if (impl->mapped && end > begin)
        madvise((void *)begin, end - begin, MADV_DONTNEED);
}

const struct llamad_gguf_kv *llamad_gguf_find(const struct llamad_gguf *g, const char *key)
{
    const struct gguf_impl *impl = (const struct gguf_impl *)g;
    /* key is the first member of struct llamad_gguf_kv */
    return (const struct llamad_gguf_kv *)index_find(impl->kv_index, g->n_kv, key);
}

const struct llamad_gguf_tensor *llamad_gguf_find_tensor(const struct llamad_gguf *g,
                                                         const char *name)
{
    const struct gguf_impl *impl = (const struct gguf_impl *)g;
    /* name is the first member of struct llamad_gguf_tensor */
    return (const struct llamad_gguf_tensor *)index_find(impl->tensor_index, g->n_tensors, name);
}

/* ---- Typed getters ---- */

/* Finds key and checks its type is one that `accepts` allows; `wanted` names them. */
static int get_typed(const struct llamad_gguf *g, const char *key, bool (*accepts)(int type),
                     const char *wanted, const struct llamad_gguf_value **out, char *err,
                     size_t errsz)
{
    char e[ESC_BUF];
    const struct llamad_gguf_kv *kv = llamad_gguf_find(g, key);
    if (!kv)
        return llamad_fail(err, errsz, LLAMAD_ENOTFOUND, "metadata '%s' is missing",
                           llamad_gguf_escape(e, key, strlen(key)));
    if (!accepts(kv->value.type)) {
        const char *tn = llamad_gguf_type_name(kv->value.type);
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "metadata '%s' is %s %s, expected %s",
                           llamad_gguf_escape(e, key, strlen(key)), article(tn), tn, wanted);
    }
    *out = &kv->value;
    return LLAMAD_OK;
}

static bool is_int_type(int t)
{
    return t == LLAMAD_GGUF_UINT8 || t == LLAMAD_GGUF_INT8 || t == LLAMAD_GGUF_UINT16 ||
           t == LLAMAD_GGUF_INT16 || t == LLAMAD_GGUF_UINT32 || t == LLAMAD_GGUF_INT32 ||
           t == LLAMAD_GGUF_UINT64 || t == LLAMAD_GGUF_INT64;
}

static bool is_unsigned_type(int t)
{
    return t == LLAMAD_GGUF_UINT8 || t == LLAMAD_GGUF_UINT16 || t == LLAMAD_GGUF_UINT32 ||
           t == LLAMAD_GGUF_UINT64;
}

static bool is_float_type(int t)
{
    return t == LLAMAD_GGUF_FLOAT32 || t == LLAMAD_GGUF_FLOAT64;
}

static bool is_bool_type(int t)
{
    return t == LLAMAD_GGUF_BOOL;
}

static bool is_string_type(int t)
{
    return t == LLAMAD_GGUF_STRING;
}

static bool is_array_type(int t)
{
    return t == LLAMAD_GGUF_ARRAY;
}

int llamad_gguf_get_int(const struct llamad_gguf *g, const char *key, int64_t min, int64_t max,
                        int64_t *out, char *err, size_t errsz)
{
    const struct llamad_gguf_value *v = NULL;
    int rc = get_typed(g, key, is_int_type, "an integer", &v, err, errsz);
    if (rc)
        return rc;
    bool in_range;
    if (is_unsigned_type(v->type))
        in_range = max >= 0 && v->u64 <= (uint64_t)max && (min <= 0 || v->u64 >= (uint64_t)min);
    else
        in_range = v->i64 >= min && v->i64 <= max;
    if (!in_range) {
        char e[ESC_BUF], val[32];
        if (is_unsigned_type(v->type))
            snprintf(val, sizeof val, "%" PRIu64, v->u64);
        else
            snprintf(val, sizeof val, "%" PRId64, v->i64);
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "metadata '%s' = %s is out of range [%" PRId64 ", %" PRId64 "]",
                           llamad_gguf_escape(e, key, strlen(key)), val, min, max);
    }
    *out = is_unsigned_type(v->type) ? (int64_t)v->u64 : v->i64;
    return LLAMAD_OK;
}

int llamad_gguf_get_float(const struct llamad_gguf *g, const char *key, double *out, char *err,
                          size_t errsz)
{
    const struct llamad_gguf_value *v = NULL;
    int rc = get_typed(g, key, is_float_type, "a float", &v, err, errsz);
    if (!rc)
        *out = v->f64;
    return rc;
}

int llamad_gguf_get_bool(const struct llamad_gguf *g, const char *key, bool *out, char *err,
                         size_t errsz)
{
    const struct llamad_gguf_value *v = NULL;
    int rc = get_typed(g, key, is_bool_type, "a bool", &v, err, errsz);
    if (!rc)
        *out = v->b;
    return rc;
}

int llamad_gguf_get_str(const struct llamad_gguf *g, const char *key, struct llamad_gguf_str *out,
                        char *err, size_t errsz)
{
    const struct llamad_gguf_value *v = NULL;
    int rc = get_typed(g, key, is_string_type, "a string", &v, err, errsz);
    if (!rc)
        *out = v->str;
    return rc;
}

int llamad_gguf_get_array(const struct llamad_gguf *g, const char *key, int elem_type,
                          const struct llamad_gguf_value **out, char *err, size_t errsz)
{
    const struct llamad_gguf_value *v = NULL;
    int rc = get_typed(g, key, is_array_type, "an array", &v, err, errsz);
    if (rc)
        return rc;
    if (elem_type >= 0 && (int)v->arr.elem_type != elem_type) {
        char e[ESC_BUF];
        return llamad_fail(
            err, errsz, LLAMAD_EFORMAT, "metadata '%s' is an array of %s, expected an array of %s",
            llamad_gguf_escape(e, key, strlen(key)), llamad_gguf_type_name(v->arr.elem_type),
            llamad_gguf_type_name((enum llamad_gguf_type)elem_type));
    }
    *out = v;
    return LLAMAD_OK;
}
