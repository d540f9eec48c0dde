/* Tests of the GGUF reader and writer: round trips through memory and files, and
 * hostile files that must be refused with a clear message and no crash or leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamad/base/error.h"
#include "llamad/format/gguf.h"
#include "llamad/format/types.h"

#ifndef LLAMAD_TEST_DATA_DIR
#error "LLAMAD_TEST_DATA_DIR must name the directory of test data files"
#endif

/* ---- A byte builder for hand-made files ---- */

struct bb {
    uint8_t *p;
    size_t len, cap;
};

static void bb_put(struct bb *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void bb_le(struct bb *b, uint64_t v, unsigned n)
{
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, t, n);
}

static void bb_u8(struct bb *b, uint8_t v)
{
    bb_le(b, v, 1);
}
static void bb_u32(struct bb *b, uint32_t v)
{
    bb_le(b, v, 4);
}
static void bb_u64(struct bb *b, uint64_t v)
{
    bb_le(b, v, 8);
}

static void bb_str(struct bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}

static void bb_zeros(struct bb *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bb_u8(b, 0);
}

static void bb_pad(struct bb *b, size_t align)
{
    bb_zeros(b, (align - b->len % align) % align);
}

static void hdr(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void kv_u32(struct bb *b, const char *key, uint32_t v)
{
    bb_str(b, key);
    bb_u32(b, LLAMAD_GGUF_UINT32);
    bb_u32(b, v);
}

static void tensor_info(struct bb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                        uint32_t type, uint64_t offset)
{
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, offset);
}

/* A file with one tensor "t" and no metadata, then data_bytes bytes of data. */
static void one_tensor_file(struct bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                            uint64_t offset, size_t data_bytes)
{
    hdr(b, 3, 1, 0);
    tensor_info(b, "t", n_dims, ne, type, offset);
    bb_pad(b, 32);
    bb_zeros(b, data_bytes);
}

/* ---- Opening helpers ---- */

/* Opens a copy of n bytes held in a buffer of exactly that size, so that the sanitizer
 * catches any read past the end; the copy is freed after the failure checks. */
static void expect_fail_at(const uint8_t *bytes, size_t n, int code, const char *needle,
                           const char *file, int line)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, bytes, n);
    struct llamad_gguf *g = (struct llamad_gguf *)&g;
    char err[LLAMAD_ERR_MAX] = "";
    int rc = llamad_gguf_open_memory(copy, n, "hostile.gguf", &g, err, sizeof err);
    if (rc != code || !strstr(err, needle) || !strstr(err, "hostile.gguf") ||
        !strstr(err, "offset"))
        print_message("%s:%d: got %d (%s), wanted %d with '%s'\n", file, line, rc, err, code,
                      needle);
    assert_int_equal(rc, code);
    assert_null(g);
    assert_non_null(strstr(err, needle));
    assert_non_null(strstr(err, "hostile.gguf"));
    assert_non_null(strstr(err, "offset"));
    free(copy);
}
#define expect_fail(b, code, needle)                                                               \
    expect_fail_at((b)->p, (b)->len, code, needle, __FILE__, __LINE__)

static struct llamad_gguf *open_ok(const uint8_t *bytes, size_t n)
{
    struct llamad_gguf *g = NULL;
    char err[LLAMAD_ERR_MAX] = "";
    int rc = llamad_gguf_open_memory(bytes, n, "test.gguf", &g, err, sizeof err);
    if (rc)
        print_message("open failed: %s\n", err);
    assert_int_equal(rc, LLAMAD_OK);
    assert_non_null(g);
    return g;
}

/* ---- The round-trip file ---- */

static const uint8_t u8s[] = {0, 1, 255};
static const int8_t i8s[] = {-128, 0, 127};
static const uint16_t u16s[] = {0, 65535};
static const int16_t i16s[] = {-32768, 32767};
static const uint32_t u32s[] = {0, 4000000000u};
static const int32_t i32s[] = {INT32_MIN, 7, INT32_MAX};
static const float f32s[] = {1.5f, -0.25f};
static const uint8_t bools[] = {1, 0, 1};
static const uint64_t u64s[] = {UINT64_MAX, 1};
static const int64_t i64s[] = {INT64_MIN, INT64_MAX};
static const double f64s[] = {3.25, -1e300};
static const char *const strs[] = {"alpha", "", "gamma \xe2\x96\x81"};
static const int32_t row0[] = {1, 2}, row1[] = {3};

static float f32_data[12];
static uint8_t q8_data[2 * 2 * 34]; /* Q8_0 [64, 2]: 4 blocks of 34 bytes */

static void fill_tensor_data(void)
{
    for (int i = 0; i < 12; i++)
        f32_data[i] = (float)i * 0.5f - 1.0f;
    for (size_t i = 0; i < sizeof q8_data; i++)
        q8_data[i] = (uint8_t)(i * 7 + 3);
}

static void add_scalar(struct llamad_gguf_writer *w, const char *key, struct llamad_gguf_value v)
{
    assert_int_equal(llamad_gguf_writer_add_value(w, key, &v), LLAMAD_OK);
}

static void add_all_metadata(struct llamad_gguf_writer *w)
{
    assert_int_equal(llamad_gguf_writer_add_u32(w, "t.u32", 4000000000u), 0);
    assert_int_equal(llamad_gguf_writer_add_i32(w, "t.i32", -123456), 0);
    assert_int_equal(llamad_gguf_writer_add_u64(w, "t.u64", UINT64_MAX), 0);
    assert_int_equal(llamad_gguf_writer_add_f32(w, "t.f32", 0.125f), 0);
    assert_int_equal(llamad_gguf_writer_add_bool(w, "t.bool", true), 0);
    assert_int_equal(llamad_gguf_writer_add_str(w, "t.str", "hello \xe2\x96\x81 world"), 0);
    add_scalar(w, "t.u8", (struct llamad_gguf_value){.type = LLAMAD_GGUF_UINT8, .u64 = 250});
    add_scalar(w, "t.i8", (struct llamad_gguf_value){.type = LLAMAD_GGUF_INT8, .i64 = -100});
    add_scalar(w, "t.u16", (struct llamad_gguf_value){.type = LLAMAD_GGUF_UINT16, .u64 = 65000});
    add_scalar(w, "t.i16", (struct llamad_gguf_value){.type = LLAMAD_GGUF_INT16, .i64 = -30000});
    add_scalar(w, "t.i64", (struct llamad_gguf_value){.type = LLAMAD_GGUF_INT64, .i64 = INT64_MIN});
    add_scalar(w, "t.f64",
               (struct llamad_gguf_value){.type = LLAMAD_GGUF_FLOAT64, .f64 = -2.5e-300});

    assert_int_equal(llamad_gguf_writer_add_array(w, "a.u8", LLAMAD_GGUF_UINT8, u8s, 3), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.i8", LLAMAD_GGUF_INT8, i8s, 3), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.u16", LLAMAD_GGUF_UINT16, u16s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.i16", LLAMAD_GGUF_INT16, i16s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.u32", LLAMAD_GGUF_UINT32, u32s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.i32", LLAMAD_GGUF_INT32, i32s, 3), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.f32", LLAMAD_GGUF_FLOAT32, f32s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.bool", LLAMAD_GGUF_BOOL, bools, 3), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.u64", LLAMAD_GGUF_UINT64, u64s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.i64", LLAMAD_GGUF_INT64, i64s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.f64", LLAMAD_GGUF_FLOAT64, f64s, 2), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a.empty", LLAMAD_GGUF_UINT32, NULL, 0), 0);
    assert_int_equal(llamad_gguf_writer_add_str_array(w, "a.str", strs, 3), 0);

    /* [[1, 2], [3]] */
    struct llamad_gguf_value rows[2] = {{.type = LLAMAD_GGUF_ARRAY}, {.type = LLAMAD_GGUF_ARRAY}};
    rows[0].arr.elem_type = LLAMAD_GGUF_INT32;
    rows[0].arr.count = 2;
    rows[0].arr.raw = (const uint8_t *)row0;
    rows[1].arr.elem_type = LLAMAD_GGUF_INT32;
    rows[1].arr.count = 1;
    rows[1].arr.raw = (const uint8_t *)row1;
    struct llamad_gguf_value nested = {.type = LLAMAD_GGUF_ARRAY};
    nested.arr.elem_type = LLAMAD_GGUF_ARRAY;
    nested.arr.count = 2;
    nested.arr.items = rows;
    assert_int_equal(llamad_gguf_writer_add_value(w, "a.nested", &nested), 0);

    /* [["x", "yz"]] */
    struct llamad_gguf_value words[2] = {
        {.type = LLAMAD_GGUF_STRING, .str = {"x", 1}},
        {.type = LLAMAD_GGUF_STRING, .str = {"yz", 2}},
    };
    struct llamad_gguf_value inner = {.type = LLAMAD_GGUF_ARRAY};
    inner.arr.elem_type = LLAMAD_GGUF_STRING;
    inner.arr.count = 2;
    inner.arr.items = words;
    struct llamad_gguf_value outer = {.type = LLAMAD_GGUF_ARRAY};
    outer.arr.elem_type = LLAMAD_GGUF_ARRAY;
    outer.arr.count = 1;
    outer.arr.items = &inner;
    assert_int_equal(llamad_gguf_writer_add_value(w, "a.nested_str", &outer), 0);
}

static void add_tensors(struct llamad_gguf_writer *w)
{
    const uint64_t ne_f32[] = {4, 3}, ne_q8[] = {64, 2};
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "f32", LLAMAD_TYPE_F32, 2, ne_f32, f32_data),
                     0);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "q8", LLAMAD_TYPE_Q8_0, 2, ne_q8, q8_data),
                     0);
}

static struct llamad_gguf_writer *full_writer(void)
{
    fill_tensor_data();
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    add_all_metadata(w);
    add_tensors(w);
    return w;
}

static const struct llamad_gguf_value *value_of(const struct llamad_gguf *g, const char *key,
                                                enum llamad_gguf_type type)
{
    const struct llamad_gguf_kv *kv = llamad_gguf_find(g, key);
    if (!kv)
        print_message("key %s missing\n", key);
    assert_non_null(kv);
    assert_int_equal(kv->value.type, type);
    return &kv->value;
}

static int64_t elem_i(const struct llamad_gguf_value *arr, uint64_t i)
{
    return llamad_gguf_array_get(arr, i).i64;
}

static uint64_t elem_u(const struct llamad_gguf_value *arr, uint64_t i)
{
    return llamad_gguf_array_get(arr, i).u64;
}

static void check_array(const struct llamad_gguf *g, const char *key, enum llamad_gguf_type et,
                        uint64_t count, const struct llamad_gguf_value **out)
{
    *out = value_of(g, key, LLAMAD_GGUF_ARRAY);
    assert_int_equal((*out)->arr.elem_type, et);
    assert_int_equal((*out)->arr.count, count);
    for (uint64_t i = 0; i < count; i++)
        assert_int_equal(llamad_gguf_array_get(*out, i).type, et);
}

static void check_all_metadata(const struct llamad_gguf *g)
{
    assert_int_equal(value_of(g, "t.u32", LLAMAD_GGUF_UINT32)->u64, 4000000000u);
    assert_int_equal(value_of(g, "t.i32", LLAMAD_GGUF_INT32)->i64, -123456);
    assert_true(value_of(g, "t.u64", LLAMAD_GGUF_UINT64)->u64 == UINT64_MAX);
    assert_true(value_of(g, "t.f32", LLAMAD_GGUF_FLOAT32)->f64 == 0.125);
    assert_true(value_of(g, "t.bool", LLAMAD_GGUF_BOOL)->b);
    assert_true(llamad_gguf_str_eq(value_of(g, "t.str", LLAMAD_GGUF_STRING)->str,
                                   "hello \xe2\x96\x81 world"));
    assert_int_equal(value_of(g, "t.u8", LLAMAD_GGUF_UINT8)->u64, 250);
    assert_int_equal(value_of(g, "t.i8", LLAMAD_GGUF_INT8)->i64, -100);
    assert_int_equal(value_of(g, "t.u16", LLAMAD_GGUF_UINT16)->u64, 65000);
    assert_int_equal(value_of(g, "t.i16", LLAMAD_GGUF_INT16)->i64, -30000);
    assert_true(value_of(g, "t.i64", LLAMAD_GGUF_INT64)->i64 == INT64_MIN);
    assert_true(value_of(g, "t.f64", LLAMAD_GGUF_FLOAT64)->f64 == -2.5e-300);

    const struct llamad_gguf_value *a;
    check_array(g, "a.u8", LLAMAD_GGUF_UINT8, 3, &a);
    assert_int_equal(elem_u(a, 2), 255);
    check_array(g, "a.i8", LLAMAD_GGUF_INT8, 3, &a);
    assert_int_equal(elem_i(a, 0), -128);
    assert_int_equal(elem_i(a, 2), 127);
    check_array(g, "a.u16", LLAMAD_GGUF_UINT16, 2, &a);
    assert_int_equal(elem_u(a, 1), 65535);
    check_array(g, "a.i16", LLAMAD_GGUF_INT16, 2, &a);
    assert_int_equal(elem_i(a, 0), -32768);
    check_array(g, "a.u32", LLAMAD_GGUF_UINT32, 2, &a);
    assert_int_equal(elem_u(a, 1), 4000000000u);
    check_array(g, "a.i32", LLAMAD_GGUF_INT32, 3, &a);
    assert_int_equal(elem_i(a, 0), INT32_MIN);
    assert_int_equal(elem_i(a, 1), 7);
    check_array(g, "a.f32", LLAMAD_GGUF_FLOAT32, 2, &a);
    assert_true(llamad_gguf_array_get(a, 1).f64 == -0.25);
    check_array(g, "a.bool", LLAMAD_GGUF_BOOL, 3, &a);
    assert_true(llamad_gguf_array_get(a, 0).b);
    assert_false(llamad_gguf_array_get(a, 1).b);
    check_array(g, "a.u64", LLAMAD_GGUF_UINT64, 2, &a);
    assert_true(elem_u(a, 0) == UINT64_MAX);
    check_array(g, "a.i64", LLAMAD_GGUF_INT64, 2, &a);
    assert_true(elem_i(a, 0) == INT64_MIN);
    assert_true(elem_i(a, 1) == INT64_MAX);
    check_array(g, "a.f64", LLAMAD_GGUF_FLOAT64, 2, &a);
    assert_true(llamad_gguf_array_get(a, 1).f64 == -1e300);
    check_array(g, "a.empty", LLAMAD_GGUF_UINT32, 0, &a);

    check_array(g, "a.str", LLAMAD_GGUF_STRING, 3, &a);
    for (int i = 0; i < 3; i++)
        assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(a, (uint64_t)i).str, strs[i]));

    check_array(g, "a.nested", LLAMAD_GGUF_ARRAY, 2, &a);
    struct llamad_gguf_value r0 = llamad_gguf_array_get(a, 0), r1 = llamad_gguf_array_get(a, 1);
    assert_int_equal(r0.arr.elem_type, LLAMAD_GGUF_INT32);
    assert_int_equal(r0.arr.count, 2);
    assert_int_equal(elem_i(&r0, 0), 1);
    assert_int_equal(elem_i(&r0, 1), 2);
    assert_int_equal(r1.arr.count, 1);
    assert_int_equal(elem_i(&r1, 0), 3);

    check_array(g, "a.nested_str", LLAMAD_GGUF_ARRAY, 1, &a);
    struct llamad_gguf_value in = llamad_gguf_array_get(a, 0);
    assert_int_equal(in.arr.elem_type, LLAMAD_GGUF_STRING);
    assert_int_equal(in.arr.count, 2);
    assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(&in, 0).str, "x"));
    assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(&in, 1).str, "yz"));

    /* Default alignment: no general.alignment key written. */
    assert_null(llamad_gguf_find(g, "general.alignment"));
    assert_null(llamad_gguf_find(g, "t.missing"));
    assert_null(llamad_gguf_find(g, "t"));
}

/* Bytes in [from, to) of the image are all zero. */
static void assert_zero_range(const struct llamad_gguf *g, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        assert_int_equal(g->map[i], 0);
}

/* File offset just past a tensor's info record. */
static uint64_t info_end(const struct llamad_gguf *g, const struct llamad_gguf_tensor *t)
{
    return (uint64_t)((const uint8_t *)t->name.data - g->map) + t->name.len + 4 + 8 * t->n_dims +
           4 + 8;
}

static void check_tensors(const struct llamad_gguf *g)
{
    assert_int_equal(g->n_tensors, 2);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset % 32, 0);
    const struct llamad_gguf_tensor *f = llamad_gguf_find_tensor(g, "f32");
    const struct llamad_gguf_tensor *q = llamad_gguf_find_tensor(g, "q8");
    assert_non_null(f);
    assert_non_null(q);
    assert_null(llamad_gguf_find_tensor(g, "q"));
    assert_ptr_equal(f, &g->tensors[0]);
    assert_int_equal(f->type, LLAMAD_TYPE_F32);
    assert_int_equal(f->n_dims, 2);
    assert_int_equal(f->ne[0], 4);
    assert_int_equal(f->ne[1], 3);
    assert_int_equal(f->ne[2], 1);
    assert_int_equal(f->ne[3], 1);
    assert_int_equal(f->nbytes, sizeof f32_data);
    assert_int_equal(f->offset, 0);
    assert_memory_equal(f->data, f32_data, sizeof f32_data);
    assert_int_equal(q->type, LLAMAD_TYPE_Q8_0);
    assert_int_equal(q->nbytes, sizeof q8_data);
    assert_int_equal(q->offset, 64); /* 48 bytes of F32 padded to 64 */
    assert_ptr_equal(q->data, g->map + g->data_offset + 64);
    assert_memory_equal(q->data, q8_data, sizeof q8_data);
    /* Padding before the data section, between tensors and after the last is zero. */
    assert_zero_range(g, info_end(g, q), g->data_offset);
    assert_zero_range(g, g->data_offset + f->nbytes, g->data_offset + q->offset);
    assert_int_equal(g->size, g->data_offset + 64 + 160);
    assert_zero_range(g, g->data_offset + q->offset + q->nbytes, g->size);
}

static void test_roundtrip_memory(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = full_writer();
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    struct llamad_gguf *g = open_ok(bytes, size);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 27);
    assert_true(llamad_gguf_str_eq(g->kv[0].key, "t.u32")); /* keys keep their order */
    assert_true(llamad_gguf_str_eq(g->kv[26].key, "a.nested_str"));
    check_all_metadata(g);
    check_tensors(g);
    llamad_gguf_close(g);

    /* Writing again gives the same bytes. */
    uint8_t *again;
    size_t again_size;
    assert_int_equal(llamad_gguf_writer_to_memory(w, &again, &again_size, err, sizeof err), 0);
    assert_int_equal(again_size, size);
    assert_memory_equal(again, bytes, size);
    free(again);
    free(bytes);
    llamad_gguf_writer_free(w);
}

/* ---- Files ---- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_gguf.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d)
        return -1;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(tmpdir);
}

static int dir_entries(void)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

struct fill_ctx {
    int calls;
    uint64_t nbytes;
    int fail_with;
};

static int fill_pattern(void *ctx, void *dst, uint64_t nbytes)
{
    struct fill_ctx *c = ctx;
    c->calls++;
    c->nbytes = nbytes;
    if (c->fail_with)
        return c->fail_with;
    for (uint64_t i = 0; i < nbytes; i++)
        ((uint8_t *)dst)[i] = (uint8_t)(i * 13 + 1);
    return 0;
}

static void test_roundtrip_file(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = full_writer();
    char path[128], err[LLAMAD_ERR_MAX];
    snprintf(path, sizeof path, "%s/model.gguf", tmpdir);
    assert_int_equal(llamad_gguf_writer_write_file(w, path, err, sizeof err), 0);
    assert_int_equal(dir_entries(), 1); /* no temporary left behind */

    struct llamad_gguf *g = NULL;
    int rc = llamad_gguf_open(path, &g, err, sizeof err);
    if (rc)
        print_message("%s\n", err);
    assert_int_equal(rc, 0);
    check_all_metadata(g);
    check_tensors(g);

    /* The file holds exactly what to_memory produces. */
    uint8_t *bytes;
    size_t size;
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    assert_int_equal(g->size, size);
    assert_memory_equal(g->map, bytes, size);
    free(bytes);
    llamad_gguf_close(g);
    llamad_gguf_writer_free(w);
    unlink(path);
}

static void test_lazy_tensor(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    struct fill_ctx ctx = {0};
    const uint64_t ne[] = {256, 3};
    assert_int_equal(
        llamad_gguf_writer_add_tensor_lazy(w, "lazy", LLAMAD_TYPE_Q4_K, 2, ne, fill_pattern, &ctx),
        0);
    assert_int_equal(ctx.calls, 0); /* nothing is produced before writing */
    char path[128], err[LLAMAD_ERR_MAX];
    snprintf(path, sizeof path, "%s/lazy.gguf", tmpdir);
    assert_int_equal(llamad_gguf_writer_write_file(w, path, err, sizeof err), 0);
    assert_int_equal(ctx.calls, 1);
    assert_int_equal(ctx.nbytes, 3 * 144);

    struct llamad_gguf *g = NULL;
    assert_int_equal(llamad_gguf_open(path, &g, err, sizeof err), 0);
    const struct llamad_gguf_tensor *t = llamad_gguf_find_tensor(g, "lazy");
    assert_non_null(t);
    assert_int_equal(t->nbytes, 3 * 144);
    const uint8_t *d = t->data;
    for (uint64_t i = 0; i < t->nbytes; i++)
        assert_int_equal(d[i], (uint8_t)(i * 13 + 1));
    llamad_gguf_close(g);
    unlink(path);

    /* A failing callback fails the write, its code comes back, and no file is left. */
    ctx.fail_with = LLAMAD_ERANGE;
    assert_int_equal(llamad_gguf_writer_write_file(w, path, err, sizeof err), LLAMAD_ERANGE);
    assert_non_null(strstr(err, "lazy"));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(dir_entries(), 0);
    uint8_t *bytes = NULL;
    size_t size = 1;
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err),
                     LLAMAD_ERANGE);
    assert_null(bytes);
    assert_int_equal(size, 0);
    llamad_gguf_writer_free(w);
}

static void test_open_missing_file(void **state)
{
    (void)state;
    struct llamad_gguf *g = NULL;
    char err[LLAMAD_ERR_MAX] = "";
    char path[128];
    snprintf(path, sizeof path, "%s/absent.gguf", tmpdir);
    assert_int_equal(llamad_gguf_open(path, &g, err, sizeof err), LLAMAD_EIO);
    assert_null(g);
    assert_non_null(strstr(err, "absent.gguf"));
    /* An empty file is truncated, not a crash in mmap. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(llamad_gguf_open(path, &g, err, sizeof err), LLAMAD_EFORMAT);
    assert_non_null(strstr(err, "truncated"));
    unlink(path);
}

/* ---- Versions and alignment ---- */

static void test_version2(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = full_writer();
    assert_int_equal(llamad_gguf_writer_set_version(w, 2), 0);
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    assert_int_equal(bytes[4], 2);
    struct llamad_gguf *g = open_ok(bytes, size);
    assert_int_equal(g->version, 2);
    check_all_metadata(g);
    check_tensors(g);
    llamad_gguf_close(g);
    free(bytes);
    llamad_gguf_writer_free(w);
}

static void test_custom_alignment(void **state)
{
    (void)state;
    fill_tensor_data();
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_set_alignment(w, 64), 0);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "x", 1), 0);
    add_tensors(w);
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    struct llamad_gguf *g = open_ok(bytes, size);
    int64_t a;
    assert_int_equal(llamad_gguf_get_int(g, "general.alignment", 0, INT64_MAX, &a, err, sizeof err),
                     0);
    assert_int_equal(a, 64);
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->data_offset % 64, 0);
    const struct llamad_gguf_tensor *q = llamad_gguf_find_tensor(g, "q8");
    assert_non_null(q);
    assert_int_equal(q->offset, 64);
    assert_memory_equal(q->data, q8_data, sizeof q8_data);
    assert_int_equal(g->size, g->data_offset + 64 + 192);
    llamad_gguf_close(g);
    free(bytes);
    llamad_gguf_writer_free(w);
}

static void test_explicit_alignment_key(void **state)
{
    (void)state;
    fill_tensor_data();
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    /* Added by hand, the key is written even at the default value... */
    assert_int_equal(llamad_gguf_writer_add_u32(w, "general.alignment", 32), 0);
    /* ...and then fixes the alignment. */
    assert_int_equal(llamad_gguf_writer_set_alignment(w, 64), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_set_alignment(w, 32), 0);
    add_tensors(w);
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    struct llamad_gguf *g = open_ok(bytes, size);
    assert_int_equal(g->n_kv, 1);
    assert_int_equal(value_of(g, "general.alignment", LLAMAD_GGUF_UINT32)->u64, 32);
    llamad_gguf_close(g);
    free(bytes);
    llamad_gguf_writer_free(w);

    /* A key of 128 sets a 128-byte layout. */
    w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "general.alignment", 128), 0);
    add_tensors(w);
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    g = open_ok(bytes, size);
    assert_int_equal(g->n_kv, 1);
    assert_int_equal(g->alignment, 128);
    assert_int_equal(g->data_offset % 128, 0);
    assert_int_equal(llamad_gguf_find_tensor(g, "q8")->offset, 128);
    llamad_gguf_close(g);
    free(bytes);
    llamad_gguf_writer_free(w);
}

static void test_zero_tensors_no_padding(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_add_str(w, "k", "abc"), 0);
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    assert_int_equal(size, 24 + 8 + 1 + 4 + 8 + 3); /* header, key, type, string: no padding */
    struct llamad_gguf *g = open_ok(bytes, size);
    assert_int_equal(g->n_tensors, 0);
    assert_int_equal(g->data_offset, size);
    llamad_gguf_close(g);
    free(bytes);
    llamad_gguf_writer_free(w);
}

/* ---- Truncation ---- */

static void test_truncated_every_length(void **state)
{
    (void)state;
    fill_tensor_data();
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_add_str(w, "general.name", "tiny"), 0);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "n", 7), 0);
    assert_int_equal(llamad_gguf_writer_add_bool(w, "b", false), 0);
    assert_int_equal(llamad_gguf_writer_add_str_array(w, "tokens", strs, 3), 0);
    assert_int_equal(llamad_gguf_writer_add_array(w, "scores", LLAMAD_GGUF_FLOAT32, f32s, 2), 0);
    add_tensors(w);
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    llamad_gguf_writer_free(w);

    /* The file is valid up to the last byte of tensor data (the padding after it may go). */
    struct llamad_gguf *g = open_ok(bytes, size);
    uint64_t needed = g->data_offset + g->tensors[1].offset + g->tensors[1].nbytes;
    llamad_gguf_close(g);
    assert_true(needed < size);

    for (size_t len = 0; len < size; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, bytes, len);
        g = (struct llamad_gguf *)&g;
        err[0] = '\0';
        int rc = llamad_gguf_open_memory(copy, len, "cut.gguf", &g, err, sizeof err);
        if (len < needed) {
            if (rc != LLAMAD_EFORMAT || (!strstr(err, "truncated") && !strstr(err, "past the end")))
                print_message("length %zu: %d %s\n", len, rc, err);
            assert_int_equal(rc, LLAMAD_EFORMAT);
            assert_null(g);
            assert_true(strstr(err, "truncated") || strstr(err, "past the end"));
            assert_non_null(strstr(err, "cut.gguf"));
        } else {
            assert_int_equal(rc, LLAMAD_OK);
            llamad_gguf_close(g);
        }
        free(copy);
    }
    free(bytes);
}

static void test_truncated_message_names_key(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 2);
    kv_u32(&b, "first", 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, LLAMAD_GGUF_ARRAY);
    bb_u32(&b, LLAMAD_GGUF_STRING);
    bb_u64(&b, 2);
    bb_str(&b, "a");
    bb_u64(&b, 10); /* the second string claims 10 bytes; 3 follow */
    bb_put(&b, "bcd", 3);
    char want[96];
    snprintf(want, sizeof want, "truncated in key 1 ('tokenizer.ggml.tokens') value at offset %zu",
             b.len - 3);
    expect_fail(&b, LLAMAD_EFORMAT, want);
    free(b.p);
}

/* Files with bytes overwritten at random (fixed seed) open or fail cleanly, never crash. */
static void test_mutated_bytes(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = full_writer();
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    llamad_gguf_writer_free(w);
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int failures = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, bytes, size);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            copy[(seed >> 33) % size] = (uint8_t)(seed >> 17);
        }
        struct llamad_gguf *g = NULL;
        err[0] = '\0';
        int rc = llamad_gguf_open_memory(copy, size, "mutated.gguf", &g, err, sizeof err);
        if (rc == LLAMAD_OK) {
            llamad_gguf_close(g);
        } else {
            assert_true(rc == LLAMAD_EFORMAT || rc == LLAMAD_EUNSUPPORTED);
            assert_null(g);
            assert_non_null(strstr(err, "mutated.gguf"));
            failures++;
        }
    }
    assert_true(failures > 100); /* the mutations did reach the checks */
    free(copy);
    free(bytes);
}

/* ---- Header ---- */

static void test_bad_magic(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 0);
    b.p[3] = 'X';
    expect_fail(&b, LLAMAD_EFORMAT, "magic");
    free(b.p);
}

static void test_bad_versions(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 1, 0, 0);
    expect_fail(&b, LLAMAD_EUNSUPPORTED, "version 1 is not supported");
    b.len = 0;
    hdr(&b, 4, 0, 0);
    expect_fail(&b, LLAMAD_EUNSUPPORTED, "version 4 is not supported");
    b.len = 0;
    hdr(&b, 0, 0, 0);
    expect_fail(&b, LLAMAD_EUNSUPPORTED, "version 0 is not supported");
    b.len = 0;
    hdr(&b, 0x03000000, 0, 0);
    expect_fail(&b, LLAMAD_EUNSUPPORTED, "big-endian");
    free(b.p);
}

static void test_huge_kv_count(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, UINT64_C(1) << 60);
    kv_u32(&b, "k", 1);
    expect_fail(&b, LLAMAD_EFORMAT, "1152921504606846976 metadata keys");
    b.len = 0;
    hdr(&b, 3, 0, UINT64_MAX);
    expect_fail(&b, LLAMAD_EFORMAT, "metadata keys");
    free(b.p);
}

static void test_huge_tensor_count(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, UINT64_C(1) << 60, 0);
    bb_zeros(&b, 1000);
    expect_fail(&b, LLAMAD_EFORMAT, "1152921504606846976 tensors");
    free(b.p);
}

/* ---- Metadata ---- */

static void test_huge_string_length(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "k.str");
    bb_u32(&b, LLAMAD_GGUF_STRING);
    bb_u64(&b, UINT64_C(1) << 63);
    bb_zeros(&b, 16);
    expect_fail(&b, LLAMAD_EFORMAT, "truncated in key 0 ('k.str') value");
    free(b.p);

    /* A huge key length is refused as a key length. */
    b = (struct bb){0};
    hdr(&b, 3, 0, 1);
    bb_u64(&b, UINT64_C(1) << 63);
    bb_zeros(&b, 16);
    expect_fail(&b, LLAMAD_EFORMAT, "name length 9223372036854775808 is invalid");
    free(b.p);
}

static void test_empty_key(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 1);
    kv_u32(&b, "", 1);
    expect_fail(&b, LLAMAD_EFORMAT, "key 0 name at offset 24: name length 0");
    free(b.p);
}

static void test_huge_array_count(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_GGUF_UINT32, LLAMAD_GGUF_UINT8, LLAMAD_GGUF_STRING,
                              LLAMAD_GGUF_ARRAY};
    const uint64_t counts[] = {UINT64_C(1) << 62, UINT64_MAX, UINT64_C(1) << 61, UINT64_C(1) << 60};
    for (int i = 0; i < 4; i++) {
        struct bb b = {0};
        hdr(&b, 3, 0, 1);
        bb_str(&b, "arr");
        bb_u32(&b, LLAMAD_GGUF_ARRAY);
        bb_u32(&b, types[i]);
        bb_u64(&b, counts[i]);
        bb_zeros(&b, 64);
        expect_fail(&b, LLAMAD_EFORMAT, "does not fit");
        free(b.p);
    }
}

static void test_unknown_value_type(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, 13);
    bb_u32(&b, 0);
    expect_fail(&b, LLAMAD_EFORMAT, "unknown value type 13");
    free(b.p);

    b = (struct bb){0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, LLAMAD_GGUF_ARRAY);
    bb_u32(&b, 200);
    bb_u64(&b, 0);
    expect_fail(&b, LLAMAD_EFORMAT, "array of unknown value type 200");
    free(b.p);
}

static void test_bad_bool(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "flag");
    bb_u32(&b, LLAMAD_GGUF_BOOL);
    bb_u8(&b, 2);
    expect_fail(&b, LLAMAD_EFORMAT, "bool of value 2");
    free(b.p);

    b = (struct bb){0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "flags");
    bb_u32(&b, LLAMAD_GGUF_ARRAY);
    bb_u32(&b, LLAMAD_GGUF_BOOL);
    bb_u64(&b, 3);
    bb_u8(&b, 1);
    bb_u8(&b, 0);
    bb_u8(&b, 255);
    expect_fail(&b, LLAMAD_EFORMAT, "array element 2 is a bool of value 255");
    free(b.p);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 3);
    kv_u32(&b, "a", 1);
    kv_u32(&b, "dup", 2);
    kv_u32(&b, "dup", 3);
    expect_fail(&b, LLAMAD_EFORMAT,
                "key 2 ('dup') at offset 60: duplicate key (first seen as key 1");
    free(b.p);
}

/* Names in messages are escaped and cut short, whatever bytes the file holds. */
static void test_names_escaped_in_messages(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 2);
    kv_u32(&b,
           "\x01"
           "bad\n'",
           1);
    kv_u32(&b,
           "\x01"
           "bad\n'",
           1);
    expect_fail(&b, LLAMAD_EFORMAT, "('\\x01bad\\x0a\\x27')");
    free(b.p);

    char longkey[1001];
    memset(longkey, 'k', 1000);
    longkey[1000] = '\0';
    b = (struct bb){0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, longkey);
    bb_u32(&b, 99);
    expect_fail(&b, LLAMAD_EFORMAT, "kkkk...') type");
    free(b.p);
}

/* A value of `levels` arrays nested in one another, the innermost empty. */
static void nested_arrays_file(struct bb *b, int levels)
{
    hdr(b, 3, 0, 1);
    bb_str(b, "deep");
    bb_u32(b, LLAMAD_GGUF_ARRAY);
    for (int i = 1; i < levels; i++) {
        bb_u32(b, LLAMAD_GGUF_ARRAY);
        bb_u64(b, 1);
    }
    bb_u32(b, LLAMAD_GGUF_UINT8);
    bb_u64(b, 0);
}

static void test_nesting_depth(void **state)
{
    (void)state;
    struct bb b = {0};
    nested_arrays_file(&b, 8);
    struct llamad_gguf *g = open_ok(b.p, b.len);
    llamad_gguf_close(g);
    b.len = 0;
    nested_arrays_file(&b, 9);
    expect_fail(&b, LLAMAD_EFORMAT, "nested more than 8 deep");
    b.len = 0;
    nested_arrays_file(&b, 100000);
    expect_fail(&b, LLAMAD_EFORMAT, "nested more than 8 deep");
    free(b.p);
}

/* ---- Tensor infos ---- */

static void test_bad_n_dims(void **state)
{
    (void)state;
    const uint64_t ne[] = {32, 1, 1, 1, 1};
    struct bb b = {0};
    one_tensor_file(&b, 5, ne, LLAMAD_TYPE_F32, 0, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "tensor 0 ('t') at offset 33: n_dims is 5");
    b.len = 0;
    one_tensor_file(&b, 0, ne, LLAMAD_TYPE_F32, 0, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "n_dims is 0");
    free(b.p);
}

static void test_zero_dim(void **state)
{
    (void)state;
    const uint64_t ne[] = {32, 0};
    struct bb b = {0};
    one_tensor_file(&b, 2, ne, LLAMAD_TYPE_F32, 0, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "ne[1] is 0");
    free(b.p);
}

static void test_dims_overflow(void **state)
{
    (void)state;
    const uint64_t ne[] = {UINT64_C(1) << 32, UINT64_C(1) << 31};
    struct bb b = {0};
    one_tensor_file(&b, 2, ne, LLAMAD_TYPE_F32, 0, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "ne[1] = 2147483648 makes the element count overflow int64");
    b.len = 0;
    const uint64_t big[] = {UINT64_C(1) << 63};
    one_tensor_file(&b, 1, big, LLAMAD_TYPE_F32, 0, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "ne[0] = 9223372036854775808 makes the element count overflow");
    b.len = 0;
    /* Fits in int64 as a count, but not as a byte size. */
    const uint64_t many[] = {UINT64_C(1) << 62};
    one_tensor_file(&b, 1, many, LLAMAD_TYPE_F32, 0, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "data size");
    free(b.p);
}

static void test_unknown_tensor_type(void **state)
{
    (void)state;
    const uint64_t ne[] = {32};
    struct bb b = {0};
    one_tensor_file(&b, 1, ne, 99, 0, 128);
    expect_fail(&b, LLAMAD_EUNSUPPORTED, "unknown tensor type 99");
    b.len = 0;
    one_tensor_file(&b, 1, ne, 4, 0, 128); /* a retired ggml id */
    expect_fail(&b, LLAMAD_EUNSUPPORTED, "unknown tensor type 4");
    free(b.p);
}

/* Type names as options spell them: the table's, in lower case only. */
static void test_type_lower_names(void **state)
{
    (void)state;
    uint32_t t = 99;
    assert_true(llamad_type_parse("q4_k", &t) && t == LLAMAD_TYPE_Q4_K);
    assert_true(llamad_type_parse("iq2_xxs", &t) && t == LLAMAD_TYPE_IQ2_XXS);
    assert_true(llamad_type_parse("f32", &t) && t == LLAMAD_TYPE_F32);
    assert_false(llamad_type_parse("Q4_K", &t));
    assert_false(llamad_type_parse("q4_", &t));
    assert_false(llamad_type_parse("q4_kk", &t));
    assert_false(llamad_type_parse("", &t));
    char name[LLAMAD_TYPE_NAME_MAX];
    llamad_type_lower_name(LLAMAD_TYPE_Q8_0, name);
    assert_string_equal(name, "q8_0");
    llamad_type_lower_name(LLAMAD_TYPE_IQ2_XXS, name); /* the longest */
    assert_string_equal(name, "iq2_xxs");
    llamad_type_lower_name(4, name); /* a retired id */
    assert_string_equal(name, "unknown");
}

static void test_row_not_multiple_of_block(void **state)
{
    (void)state;
    const uint64_t ne[] = {33, 2};
    struct bb b = {0};
    one_tensor_file(&b, 2, ne, LLAMAD_TYPE_Q8_0, 0, 256);
    expect_fail(&b, LLAMAD_EFORMAT, "ne[0] = 33 is not a multiple of the Q8_0 block size 32");
    free(b.p);
}

static void test_misaligned_offset(void **state)
{
    (void)state;
    const uint64_t ne[] = {4};
    struct bb b = {0};
    one_tensor_file(&b, 1, ne, LLAMAD_TYPE_F32, 8, 64);
    expect_fail(&b, LLAMAD_EFORMAT, "data offset 8 is not aligned to 32 bytes");
    free(b.p);
}

static void test_tensor_past_eof(void **state)
{
    (void)state;
    const uint64_t ne[] = {16};
    struct bb b = {0};
    one_tensor_file(&b, 1, ne, LLAMAD_TYPE_F32, 0, 63); /* 64 bytes needed */
    expect_fail(&b, LLAMAD_EFORMAT, "64 bytes of data at data offset 0");
    assert_int_equal(b.len, 64 + 63);
    b.len++;
    struct llamad_gguf *g = open_ok(b.p, b.len);
    llamad_gguf_close(g);
    b.len = 0;
    one_tensor_file(&b, 1, ne, LLAMAD_TYPE_F32, UINT64_MAX - 31, 64);
    expect_fail(&b, LLAMAD_EFORMAT, "past the end of the file");
    free(b.p);
}

static void test_duplicate_tensor(void **state)
{
    (void)state;
    const uint64_t ne[] = {8};
    struct bb b = {0};
    hdr(&b, 3, 2, 0);
    tensor_info(&b, "w", 1, ne, LLAMAD_TYPE_F32, 0);
    tensor_info(&b, "w", 1, ne, LLAMAD_TYPE_F32, 32);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    expect_fail(&b, LLAMAD_EFORMAT, "tensor 1 ('w') at offset 57: duplicate tensor name");
    free(b.p);
}

static void test_overlapping_tensors(void **state)
{
    (void)state;
    const uint64_t ne[] = {16};
    struct bb b = {0};
    hdr(&b, 3, 2, 0);
    tensor_info(&b, "a", 1, ne, LLAMAD_TYPE_F32, 32);
    tensor_info(&b, "b", 1, ne, LLAMAD_TYPE_F32, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 96);
    expect_fail(&b, LLAMAD_EFORMAT, "tensor 0 ('a') at offset 49: data overlaps tensor 1 ('b')");
    free(b.p);
}

/* ---- general.alignment ---- */

static void test_alignment_wrong_type(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, LLAMAD_GGUF_STRING);
    bb_str(&b, "32");
    expect_fail(&b, LLAMAD_EFORMAT, "general.alignment is a string, expected a uint32");
    b.len = 0;
    hdr(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, LLAMAD_GGUF_UINT64);
    bb_u64(&b, 32);
    expect_fail(&b, LLAMAD_EFORMAT, "general.alignment is a uint64, expected a uint32");
    free(b.p);
}

static void test_alignment_not_power_of_two(void **state)
{
    (void)state;
    struct bb b = {0};
    hdr(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    expect_fail(&b, LLAMAD_EFORMAT, "general.alignment is 48, expected a non-zero power of two");
    b.len = 0;
    hdr(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, LLAMAD_EFORMAT, "general.alignment is 0, expected a non-zero power of two");
    free(b.p);
}

static void test_alignment_applies_to_offsets(void **state)
{
    (void)state;
    const uint64_t ne[] = {8};
    struct bb b = {0};
    hdr(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 64);
    tensor_info(&b, "t", 1, ne, LLAMAD_TYPE_F32, 32); /* aligned to 32, not 64 */
    bb_pad(&b, 64);
    bb_zeros(&b, 128);
    expect_fail(&b, LLAMAD_EFORMAT, "not aligned to 64 bytes");
    free(b.p);
}

/* ---- Getters ---- */

static struct llamad_gguf *getter_file(uint8_t **bytes)
{
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "llama.block_count", 32), 0);
    add_scalar(w, "u8", (struct llamad_gguf_value){.type = LLAMAD_GGUF_UINT8, .u64 = 200});
    assert_int_equal(llamad_gguf_writer_add_i32(w, "neg", -5), 0);
    assert_int_equal(llamad_gguf_writer_add_u64(w, "big", UINT64_MAX), 0);
    assert_int_equal(llamad_gguf_writer_add_u64(w, "small64", 5), 0);
    assert_int_equal(llamad_gguf_writer_add_str(w, "str", "text"), 0);
    assert_int_equal(llamad_gguf_writer_add_bool(w, "flag", true), 0);
    assert_int_equal(llamad_gguf_writer_add_f32(w, "f", 1.25f), 0);
    add_scalar(w, "f64", (struct llamad_gguf_value){.type = LLAMAD_GGUF_FLOAT64, .f64 = 1e-9});
    assert_int_equal(llamad_gguf_writer_add_array(w, "arr", LLAMAD_GGUF_INT32, i32s, 3), 0);
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, bytes, &size, err, sizeof err), 0);
    llamad_gguf_writer_free(w);
    return open_ok(*bytes, size);
}

static void test_getters(void **state)
{
    (void)state;
    uint8_t *bytes;
    struct llamad_gguf *g = getter_file(&bytes);
    char err[LLAMAD_ERR_MAX];
    int64_t i;
    double d;
    bool b;
    struct llamad_gguf_str s;
    const struct llamad_gguf_value *a;

    assert_int_equal(llamad_gguf_get_int(g, "llama.block_count", 1, 1000, &i, err, sizeof err), 0);
    assert_int_equal(i, 32);
    assert_int_equal(llamad_gguf_get_int(g, "neg", -10, 10, &i, err, sizeof err), 0);
    assert_int_equal(i, -5);
    assert_int_equal(llamad_gguf_get_int(g, "small64", 5, 5, &i, err, sizeof err), 0);
    assert_int_equal(i, 5);
    assert_int_equal(llamad_gguf_get_int(g, "u8", 0, 255, &i, err, sizeof err), 0);
    assert_int_equal(i, 200);
    assert_int_equal(llamad_gguf_get_float(g, "f", &d, err, sizeof err), 0);
    assert_true(d == 1.25);
    assert_int_equal(llamad_gguf_get_float(g, "f64", &d, err, sizeof err), 0);
    assert_true(d == 1e-9);
    assert_int_equal(llamad_gguf_get_bool(g, "flag", &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(llamad_gguf_get_str(g, "str", &s, err, sizeof err), 0);
    assert_true(llamad_gguf_str_eq(s, "text"));
    assert_false(llamad_gguf_str_eq(s, "tex"));
    assert_false(llamad_gguf_str_eq(s, "texts"));
    assert_int_equal(llamad_gguf_get_array(g, "arr", LLAMAD_GGUF_INT32, &a, err, sizeof err), 0);
    assert_int_equal(a->arr.count, 3);
    assert_int_equal(llamad_gguf_get_array(g, "arr", -1, &a, err, sizeof err), 0);

    llamad_gguf_close(g);
    free(bytes);
}

/* A getter call that must fail with code and a message holding needle. */
#define expect_get_fail(call, code, needle)                                                        \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        int rc_ = (call);                                                                          \
        if (rc_ != (code) || !strstr(err, needle))                                                 \
            print_message("got %d '%s', wanted '%s'\n", rc_, err, needle);                         \
        assert_int_equal(rc_, code);                                                               \
        assert_non_null(strstr(err, needle));                                                      \
    } while (0)

static void test_getter_errors(void **state)
{
    (void)state;
    uint8_t *bytes;
    struct llamad_gguf *g = getter_file(&bytes);
    char err[LLAMAD_ERR_MAX];
    int64_t i = 77;
    double d;
    bool b;
    struct llamad_gguf_str s;
    const struct llamad_gguf_value *a;

    expect_get_fail(llamad_gguf_get_int(g, "str", 0, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "metadata 'str' is a string, expected an integer");
    expect_get_fail(llamad_gguf_get_int(g, "flag", 0, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "'flag' is a bool, expected an integer");
    expect_get_fail(llamad_gguf_get_int(g, "f", 0, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "'f' is a float32, expected an integer");
    expect_get_fail(llamad_gguf_get_int(g, "arr", 0, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "'arr' is an array, expected an integer");
    expect_get_fail(llamad_gguf_get_int(g, "llama.block_count", 0, 16, &i, err, sizeof err),
                    LLAMAD_EFORMAT, "'llama.block_count' = 32 is out of range [0, 16]");
    expect_get_fail(llamad_gguf_get_int(g, "u8", 201, 300, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "'u8' = 200 is out of range [201, 300]");
    expect_get_fail(llamad_gguf_get_int(g, "neg", 0, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "'neg' = -5 is out of range [0, 10]");
    expect_get_fail(llamad_gguf_get_int(g, "neg", -4, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "out of range [-4, 10]");
    /* A uint64 above INT64_MAX never wraps into range. */
    expect_get_fail(llamad_gguf_get_int(g, "big", INT64_MIN, INT64_MAX, &i, err, sizeof err),
                    LLAMAD_EFORMAT, "'big' = 18446744073709551615 is out of range");
    expect_get_fail(llamad_gguf_get_int(g, "small64", INT64_MIN, -1, &i, err, sizeof err),
                    LLAMAD_EFORMAT, "'small64' = 5 is out of range");
    expect_get_fail(llamad_gguf_get_int(g, "small64", 6, 10, &i, err, sizeof err), LLAMAD_EFORMAT,
                    "'small64' = 5 is out of range");
    assert_int_equal(i, 77); /* untouched on failure */
    expect_get_fail(llamad_gguf_get_int(g, "absent.key", 0, 10, &i, err, sizeof err),
                    LLAMAD_ENOTFOUND, "'absent.key'");
    expect_get_fail(llamad_gguf_get_float(g, "u8", &d, err, sizeof err), LLAMAD_EFORMAT,
                    "'u8' is a uint8, expected a float");
    expect_get_fail(llamad_gguf_get_float(g, "nope", &d, err, sizeof err), LLAMAD_ENOTFOUND,
                    "'nope'");
    expect_get_fail(llamad_gguf_get_bool(g, "u8", &b, err, sizeof err), LLAMAD_EFORMAT,
                    "'u8' is a uint8, expected a bool");
    expect_get_fail(llamad_gguf_get_str(g, "neg", &s, err, sizeof err), LLAMAD_EFORMAT,
                    "'neg' is an int32, expected a string");
    expect_get_fail(llamad_gguf_get_str(g, "nope", &s, err, sizeof err), LLAMAD_ENOTFOUND,
                    "'nope'");
    expect_get_fail(llamad_gguf_get_array(g, "str", -1, &a, err, sizeof err), LLAMAD_EFORMAT,
                    "'str' is a string, expected an array");
    expect_get_fail(llamad_gguf_get_array(g, "arr", LLAMAD_GGUF_STRING, &a, err, sizeof err),
                    LLAMAD_EFORMAT, "'arr' is an array of int32, expected an array of string");
    llamad_gguf_close(g);
    free(bytes);
}

/* ---- Writer argument checks ---- */

static void test_writer_rejects_bad_input(void **state)
{
    (void)state;
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    float data[64] = {0};
    const uint64_t ne[] = {32, 2}, zero[] = {32, 0}, odd[] = {33};
    const uint64_t huge[] = {UINT64_C(1) << 32, UINT64_C(1) << 32};

    assert_int_equal(llamad_gguf_writer_set_version(w, 1), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_set_version(w, 4), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_set_alignment(w, 0), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_set_alignment(w, 48), LLAMAD_EINVAL);

    assert_int_equal(llamad_gguf_writer_add_u32(w, "k", 1), 0);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "k", 2), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "", 2), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_str(w, "s", NULL), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a", LLAMAD_GGUF_STRING, data, 1),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_array(w, "a", LLAMAD_GGUF_UINT8, NULL, 1),
                     LLAMAD_EINVAL);
    const uint8_t bad_bools[] = {0, 2};
    assert_int_equal(llamad_gguf_writer_add_array(w, "a", LLAMAD_GGUF_BOOL, bad_bools, 2),
                     LLAMAD_EINVAL);
    struct llamad_gguf_value wide = {.type = LLAMAD_GGUF_UINT8, .u64 = 256};
    assert_int_equal(llamad_gguf_writer_add_value(w, "a", &wide), LLAMAD_EINVAL);
    struct llamad_gguf_value low = {.type = LLAMAD_GGUF_INT16, .i64 = -32769};
    assert_int_equal(llamad_gguf_writer_add_value(w, "a", &low), LLAMAD_EINVAL);
    struct llamad_gguf_value unknown = {.type = (enum llamad_gguf_type)13};
    assert_int_equal(llamad_gguf_writer_add_value(w, "a", &unknown), LLAMAD_EINVAL);
    /* An array whose item types disagree with the element type. */
    struct llamad_gguf_value item = {.type = LLAMAD_GGUF_UINT8};
    struct llamad_gguf_value mixed = {.type = LLAMAD_GGUF_ARRAY};
    mixed.arr.elem_type = LLAMAD_GGUF_STRING;
    mixed.arr.count = 1;
    mixed.arr.items = &item;
    assert_int_equal(llamad_gguf_writer_add_value(w, "a", &mixed), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_str(w, "general.alignment", "32"), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_u32(w, "general.alignment", 48), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_u64(w, "general.alignment", 64), LLAMAD_EINVAL);

    assert_int_equal(llamad_gguf_writer_add_tensor(w, "t", LLAMAD_TYPE_F32, 2, ne, data), 0);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "t", LLAMAD_TYPE_F32, 2, ne, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "", LLAMAD_TYPE_F32, 2, ne, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", LLAMAD_TYPE_F32, 0, ne, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", LLAMAD_TYPE_F32, 5, ne, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", LLAMAD_TYPE_F32, 2, zero, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", LLAMAD_TYPE_F32, 2, huge, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", LLAMAD_TYPE_Q8_0, 1, odd, data),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", 99, 2, ne, data), LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor(w, "u", LLAMAD_TYPE_F32, 2, ne, NULL),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_gguf_writer_add_tensor_lazy(w, "u", LLAMAD_TYPE_F32, 2, ne, NULL, NULL),
                     LLAMAD_EINVAL);

    /* None of the refused calls left anything behind. */
    uint8_t *bytes;
    size_t size;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    struct llamad_gguf *g = open_ok(bytes, size);
    assert_int_equal(g->n_kv, 1);
    assert_int_equal(g->n_tensors, 1);
    llamad_gguf_close(g);
    free(bytes);
    llamad_gguf_writer_free(w);
}

/* ---- The real vocabulary file ---- */

static void test_vocab_file(void **state)
{
    (void)state;
    struct llamad_gguf *g = NULL;
    char err[LLAMAD_ERR_MAX];
    int rc =
        llamad_gguf_open(LLAMAD_TEST_DATA_DIR "/ggml-vocab-llama-spm.gguf", &g, err, sizeof err);
    if (rc)
        print_message("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_tensors, 0);
    assert_true(g->data_offset <= g->size);

    struct llamad_gguf_str model;
    assert_int_equal(llamad_gguf_get_str(g, "tokenizer.ggml.model", &model, err, sizeof err), 0);
    assert_true(llamad_gguf_str_eq(model, "llama"));
    const struct llamad_gguf_value *tokens, *scores;
    assert_int_equal(llamad_gguf_get_array(g, "tokenizer.ggml.tokens", LLAMAD_GGUF_STRING, &tokens,
                                           err, sizeof err),
                     0);
    assert_int_equal(tokens->arr.count, 32000);
    assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(tokens, 0).str, "<unk>"));
    assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(tokens, 1).str, "<s>"));
    assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(tokens, 2).str, "</s>"));
    assert_true(llamad_gguf_str_eq(llamad_gguf_array_get(tokens, 3).str, "<0x00>"));
    assert_int_equal(llamad_gguf_get_array(g, "tokenizer.ggml.scores", LLAMAD_GGUF_FLOAT32, &scores,
                                           err, sizeof err),
                     0);
    assert_int_equal(scores->arr.count, 32000);
    int64_t n;
    assert_int_equal(llamad_gguf_get_int(g, "llama.block_count", 0, 1000, &n, err, sizeof err), 0);
    assert_int_equal(n, 32);

    /* Copying every value into a new file reproduces the metadata byte for byte. */
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    for (uint64_t k = 0; k < g->n_kv; k++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)g->kv[k].key.len, g->kv[k].key.data);
        assert_int_equal(llamad_gguf_writer_add_value(w, key, &g->kv[k].value), 0);
    }
    uint8_t *bytes;
    size_t size;
    assert_int_equal(llamad_gguf_writer_to_memory(w, &bytes, &size, err, sizeof err), 0);
    assert_int_equal(size, g->size);
    assert_memory_equal(bytes, g->map, size);
    free(bytes);
    llamad_gguf_writer_free(w);
    llamad_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_memory),
        cmocka_unit_test(test_roundtrip_file),
        cmocka_unit_test(test_lazy_tensor),
        cmocka_unit_test(test_open_missing_file),
        cmocka_unit_test(test_version2),
        cmocka_unit_test(test_custom_alignment),
        cmocka_unit_test(test_explicit_alignment_key),
        cmocka_unit_test(test_zero_tensors_no_padding),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_truncated_message_names_key),
        cmocka_unit_test(test_mutated_bytes),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_huge_kv_count),
        cmocka_unit_test(test_huge_tensor_count),
        cmocka_unit_test(test_huge_string_length),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_huge_array_count),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_bad_bool),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_names_escaped_in_messages),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_bad_n_dims),
        cmocka_unit_test(test_zero_dim),
        cmocka_unit_test(test_dims_overflow),
        cmocka_unit_test(test_unknown_tensor_type),
        cmocka_unit_test(test_type_lower_names),
        cmocka_unit_test(test_row_not_multiple_of_block),
        cmocka_unit_test(test_misaligned_offset),
        cmocka_unit_test(test_tensor_past_eof),
        cmocka_unit_test(test_duplicate_tensor),
        cmocka_unit_test(test_overlapping_tensors),
        cmocka_unit_test(test_alignment_wrong_type),
        cmocka_unit_test(test_alignment_not_power_of_two),
        cmocka_unit_test(test_alignment_applies_to_offsets),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_getter_errors),
        cmocka_unit_test(test_writer_rejects_bad_input),
        cmocka_unit_test(test_vocab_file),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
