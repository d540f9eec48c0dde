/* The K-quant formats Q4_K, Q5_K and Q6_K: hand-made blocks, the reference
 * quantizers (round-trip error, known bytes, and the bytes llama.cpp's
 * llama-quantize wrote into the shared synthetic models), and the chosen kernels
 * against the reference. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/format/gguf.h"
#include "llamad/format/types.h"
#include "llamad/kernels/quant.h"
#include "testutil.h"

enum { QK_K = 256, Q4_K_BYTES = 144, Q5_K_BYTES = 176, Q6_K_BYTES = 210 };

static const uint32_t k_types[] = {LLAMAD_TYPE_Q4_K, LLAMAD_TYPE_Q5_K, LLAMAD_TYPE_Q6_K};
#define N_K_TYPES (sizeof k_types / sizeof k_types[0])

/* ---- helpers ---- */

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static size_t row_bytes(uint32_t type, int64_t n)
{
    uint64_t bytes;
    assert_true(llamad_type_bytes(type, (uint64_t)n, &bytes));
    return (size_t)bytes;
}

/* Runs the reference kernels (through llamad_kernels_ref and the type-taking
 * functions) and the chosen dequantizer on one hand-made block, and requires the
 * exact values and the exact dot product: every block here is built so that the
 * sum is exact in float. */
static void check_hand_block(uint32_t type, const uint8_t *block, const float *x, const float *want,
                             float want_dot)
{
    const struct llamad_kernels *ks[2] = {llamad_kernels_ref(type), llamad_kernels_for(type)};
    float got[QK_K];
    for (int k = 0; k < 2; k++) {
        assert_non_null(ks[k]);
        ks[k]->dequantize_row(block, got, QK_K);
        for (int i = 0; i < QK_K; i++) {
            if (bits_of(got[i]) != bits_of(want[i]))
                fail_msg("%s %s: element %d is %.9g, want %.9g", llamad_type_name(type), ks[k]->isa,
                         i, got[i], want[i]);
        }
    }
    memset(got, 0, sizeof got);
    llamad_dequantize_row_ref(type, block, got, QK_K);
    assert_memory_equal(got, want, sizeof got);
    assert_true(llamad_dot_ref(type, block, x, QK_K) == want_dot);
}

/* ---- which types ---- */

static void test_k_types_computable(void **state)
{
    (void)state;
    for (size_t t = 0; t < N_K_TYPES; t++) {
        assert_true(llamad_type_computable(k_types[t]));
        const struct llamad_kernels *ref = llamad_kernels_ref(k_types[t]);
        const struct llamad_kernels *fast = llamad_kernels_for(k_types[t]);
        assert_non_null(ref);
        assert_non_null(fast);
        assert_string_equal(ref->isa, "scalar");
        assert_non_null(fast->dequantize_row);
        assert_ptr_equal(fast, llamad_kernels_for(k_types[t]));
    }
    assert_false(llamad_type_computable(LLAMAD_TYPE_Q2_K));
    assert_false(llamad_type_computable(LLAMAD_TYPE_Q3_K));
    assert_false(llamad_type_computable(LLAMAD_TYPE_Q8_K));
}

/* ---- hand-made blocks ---- */

/* Q4_K, d = 0.5, dmin = 0.25; the (scale, min) pairs of sub-blocks 0..7 are
 * (1, 2) (3, 0) (63, 5) (10, 63) (17, 33) (48, 1) (0, 20) (35, 60), so that both
 * 6-bit ends and the split top bits of sub-blocks 4..7 are used. Packed:
 *   s[0..3]  = scale 0..3 | top bits of scale 4..7 << 6: 1|1<<6, 3|3<<6, 63|0, 10|2<<6
 *   s[4..7]  = min 0..3 | top bits of min 4..7 << 6:     2|2<<6, 0|0, 5|1<<6, 63|3<<6
 *   s[8..11] = low nibble of scale 4..7 | low nibble of min 4..7 << 4:
 *              1|1<<4, 0|1<<4, 0|4<<4, 3|12<<4
 * Every 4-bit value is 0 (weight -0.25 min) except nine. */
static void test_q4_k_by_hand(void **state)
{
    (void)state;
    uint8_t block[Q4_K_BYTES] = {
        0x00, 0x38, /* d = 0.5 */
        0x00, 0x34, /* dmin = 0.25 */
        0x41, 0xC3, 0x3F, 0x8A, 0x82, 0x00, 0x45, 0xFF, 0x11, 0x10, 0x40, 0xC3,
    };
    uint8_t *qs = block + 16;
    qs[0] = 0x0F;   /* element 0: sub-block 0, q 15 */
    qs[1] = 0x73;   /* element 1: sub-block 0, q 3; element 33: sub-block 1, q 7 */
    qs[34] = 0x09;  /* element 66: sub-block 2, q 9 */
    qs[63] = 0xF0;  /* element 127: sub-block 3, q 15 */
    qs[69] = 0x01;  /* element 133: sub-block 4, q 1 */
    qs[64] = 0x40;  /* element 160: sub-block 5, q 4 */
    qs[106] = 0x0D; /* element 202: sub-block 6, q 13 (scale 0: no effect) */
    qs[127] = 0x20; /* element 255: sub-block 7, q 2 */

    /* q = 0: -0.25 * min */
    const float base[8] = {-0.5f, 0.0f, -1.25f, -15.75f, -8.25f, -0.25f, -5.0f, -15.0f};
    float want[QK_K];
    for (int i = 0; i < QK_K; i++)
        want[i] = base[i / 32];
    want[0] = 0.5f * 1 * 15 - 0.5f;      /* 7 */
    want[1] = 0.5f * 1 * 3 - 0.5f;       /* 1 */
    want[33] = 0.5f * 3 * 7 - 0.0f;      /* 10.5 */
    want[66] = 0.5f * 63 * 9 - 1.25f;    /* 282.25 */
    want[127] = 0.5f * 10 * 15 - 15.75f; /* 59.25 */
    want[133] = 0.5f * 17 * 1 - 8.25f;   /* 0.25 */
    want[160] = 0.5f * 48 * 4 - 0.25f;   /* 95.75 */
    want[255] = 0.5f * 35 * 2 - 15.0f;   /* 20 */
    float x[QK_K];
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)i;
    /* The q = 0 values against sub-block sums 1024 j + 496 give -247072; the nine
     * elements add (value - base) * i: 1.5 + 346.5 + 18711 + 9525 + 1130.5 + 15360
     * + 8925 = 53999.5. */
    check_hand_block(LLAMAD_TYPE_Q4_K, block, x, want, -193072.5f);
}

/* Q5_K, d = 0.25, dmin = 0.5; (scale, min) of sub-blocks 0..7: (2, 1) (5, 40) (1, 0)
 * (0, 3) (16, 2) (63, 63) (4, 17) (32, 8). Packed as for Q4_K:
 *   s[0..3] = 2|1<<6, 5|3<<6, 1|0, 0|2<<6;   s[4..7] = 1|0, 40|3<<6, 0|1<<6, 3|0
 *   s[8..11] = 0|2<<4, 15|15<<4, 4|1<<4, 0|8<<4
 * Bit j of qh[l] is the fifth bit of element 32 j + l; qh[0] also carries the bit of
 * sub-block 4, which must not leak into the other sub-blocks. */
static void test_q5_k_by_hand(void **state)
{
    (void)state;
    uint8_t block[Q5_K_BYTES] = {
        0x00, 0x34, /* d = 0.25 */
        0x00, 0x38, /* dmin = 0.5 */
        0x42, 0xC5, 0x01, 0x80, 0x01, 0xE8, 0x40, 0x03, 0x20, 0xFF, 0x14, 0x80,
    };
    uint8_t *qh = block + 16, *qs = block + 48;
    qh[0] = 0x11;   /* elements 0 (sub-block 0) and 128 (sub-block 4) */
    qh[1] = 0x01;   /* element 1 */
    qh[4] = 0x08;   /* element 100 (sub-block 3) */
    qh[8] = 0x40;   /* element 200 (sub-block 6) */
    qh[31] = 0xA4;  /* elements 95, 191, 255 (sub-blocks 2, 5, 7) */
    qs[0] = 0x0F;   /* element 0: low 15 + 16 = 31 */
    qs[1] = 0x90;   /* element 1: low 0 + 16; element 33: 9 */
    qs[63] = 0x03;  /* element 95: 3 + 16 */
    qs[36] = 0x70;  /* element 100: 7 + 16 (scale 0: no effect) */
    qs[64] = 0x01;  /* element 128: 1 + 16 */
    qs[95] = 0xF0;  /* element 191: 15 + 16 */
    qs[127] = 0xA0; /* element 255: 10 + 16 */

    /* q = 0: -0.5 * min */
    const float base[8] = {-0.5f, -20.0f, 0.0f, -1.5f, -1.0f, -31.5f, -8.5f, -4.0f};
    float want[QK_K];
    for (int i = 0; i < QK_K; i++)
        want[i] = base[i / 32];
    want[0] = 0.25f * 2 * 31 - 0.5f;     /* 15 */
    want[1] = 0.25f * 2 * 16 - 0.5f;     /* 7.5 */
    want[33] = 0.25f * 5 * 9 - 20.0f;    /* -8.75 */
    want[95] = 0.25f * 1 * 19 - 0.0f;    /* 4.75 */
    want[128] = 0.25f * 16 * 17 - 1.0f;  /* 67 */
    want[191] = 0.25f * 63 * 31 - 31.5f; /* 456.75 */
    want[200] = 0.25f * 4 * 16 - 8.5f;   /* 7.5 */
    want[255] = 0.25f * 32 * 26 - 4.0f;  /* 204 */
    float x[QK_K];
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)i;
    /* q = 0 values: -304592; the others add 8 + 371.25 + 451.25 + 8704 + 93255.75
     * + 3200 + 53040 = 159030.25. */
    check_hand_block(LLAMAD_TYPE_Q5_K, block, x, want, -145561.75f);
}

/* ---- quantizers ---- */

/* Values on the quantizer's own grid come back as they are: with levels 0..nmax in
 * every sub-block (x = i mod (nmax + 1)) the fit is exact, scale 1 and min 0, so
 * every 6-bit scale is 63, every min 0, d = 1/63 as a half (0x2410), dmin 0, and
 * the levels are the values themselves. */
static void test_quantize_on_grid_known(void **state)
{
    (void)state;
    float x[QK_K];

    for (int i = 0; i < QK_K; i++)
        x[i] = (float)(i % 16);
    uint8_t q4[Q4_K_BYTES];
    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q4_K, x, q4, QK_K));
    uint8_t want4[Q4_K_BYTES] = {0x10, 0x24, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
                                 0x00, 0x00, 0x00, 0x00, 0x0F, 0x0F, 0x0F, 0x0F};
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) /* elements 64g + l and 64g + 32 + l: both l mod 16 */
            want4[16 + 32 * g + l] = (uint8_t)(l % 16 * 0x11);
    assert_memory_equal(q4, want4, sizeof want4);

    for (int i = 0; i < QK_K; i++)
        x[i] = (float)(i % 32);
    uint8_t q5[Q5_K_BYTES];
    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q5_K, x, q5, QK_K));
    uint8_t want5[Q5_K_BYTES] = {0x10, 0x24, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
                                 0x00, 0x00, 0x00, 0x00, 0x0F, 0x0F, 0x0F, 0x0F};
    for (int l = 16; l < 32; l++) /* the fifth bit of every sub-block's elements 16..31 */
        want5[16 + l] = 0xFF;
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++)
            want5[48 + 32 * g + l] = (uint8_t)(l % 16 * 0x11);
    assert_memory_equal(q5, want5, sizeof want5);

    float back[QK_K];
    llamad_dequantize_row_ref(LLAMAD_TYPE_Q5_K, q5, back, QK_K);
    for (int i = 0; i < QK_K; i++) /* d * 63 = 0.999755859375 */
        assert_true(fabsf(back[i] - x[i]) <= 31 * 0x1p-12f);
}

/* An all-zero block is stored as all-zero bytes by every K quantizer. */
static void test_quantize_zero_block(void **state)
{
    (void)state;
    float x[QK_K] = {0};
    uint8_t out[Q6_K_BYTES];
    uint8_t zero[Q6_K_BYTES] = {0};
    for (size_t t = 0; t < N_K_TYPES; t++) {
        size_t bytes = row_bytes(k_types[t], QK_K);
        memset(out, 0xA5, sizeof out);
        assert_true(llamad_quantize_row_ref(k_types[t], x, out, QK_K));
        assert_memory_equal(out, zero, bytes);
        float back[QK_K];
        llamad_dequantize_row_ref(k_types[t], out, back, QK_K);
        for (int i = 0; i < QK_K; i++)
            assert_true(back[i] == 0.0f);
    }
}

/* NaN, infinities and huge values must not reach an undefined conversion (this
 * matters under -fsanitize=undefined); what they quantize to is not specified. */
static void test_quantize_non_finite_input(void **state)
{
    (void)state;
    float x[2 * QK_K];
    test_splitmix_seed(3);
    for (int i = 0; i < 2 * QK_K; i++)
        x[i] = test_splitmix_float();
    x[0] = NAN;
    x[40] = INFINITY;
    x[77] = -INFINITY;
    x[300] = 3e38f;
    x[301] = -3e38f;
    x[400] = 1e-30f;
    uint8_t out[2 * Q6_K_BYTES];
    for (size_t t = 0; t < N_K_TYPES; t++)
        assert_true(llamad_quantize_row_ref(k_types[t], x, out, 2 * QK_K));
}

struct round_trip_error {
    double overall; /* sqrt(sum (x - y)^2 / sum x^2) over the row */
    double worst;   /* the same over one 256-element block, the largest */
};

enum { ROUND_TRIP_MAX = 128 * QK_K };

static struct round_trip_error round_trip(uint32_t type, const float *x, int64_t n)
{
    static uint8_t q[ROUND_TRIP_MAX / QK_K * Q6_K_BYTES];
    static float y[ROUND_TRIP_MAX];
    assert_true(n <= ROUND_TRIP_MAX);
    assert_true(llamad_quantize_row_ref(type, x, q, n));
    llamad_dequantize_row_ref(type, q, y, n);

    struct round_trip_error e = {0, 0};
    double err_all = 0, sum_all = 0;
    for (int64_t b = 0; b < n; b += QK_K) {
        double err = 0, sum = 0;
        for (int64_t i = b; i < b + QK_K; i++) {
            err += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            sum += (double)x[i] * x[i];
        }
        e.worst = fmax(e.worst, sqrt(err / sum));
        err_all += err;
        sum_all += sum;
    }
    e.overall = sqrt(err_all / sum_all);
    return e;
}

static void check_round_trip(uint32_t type, const char *data, const float *x, int64_t n,
                             double bound, struct round_trip_error *out)
{
    struct round_trip_error e = round_trip(type, x, n);
    print_message("%s %s: relative RMS error %.5f, worst block %.5f\n", llamad_type_name(type),
                  data, e.overall, e.worst);
    if (!(e.overall < bound && e.worst < 1.25 * bound))
        fail_msg("%s %s: relative RMS error %.5f (worst block %.5f), bound %.4f",
                 llamad_type_name(type), data, e.overall, e.worst, bound);
    if (out)
        *out = e;
}

/* Relative RMS error of quantize -> dequantize on fixed-seed random rows, with
 * bounds about 10% above what ggml's quantizers give on the same data:
 *   normal, sd 0.02 (weight-like):  Q4_K 0.071, Q5_K 0.036, Q6_K 0.018
 *   uniform in [-1, 1):             Q4_K 0.054, Q5_K 0.028, Q6_K 0.013
 * The worst block stays within about 1.2 times the overall error. More bits give
 * less error: Q6_K < Q5_K < Q4_K, each about half the one before. */
static void test_round_trip_error(void **state)
{
    (void)state;
    enum { N = ROUND_TRIP_MAX };
    static float normal[N], uniform[N];
    test_splitmix_seed(41);
    for (int i = 0; i < N; i++) {
        normal[i] = 0.02f * test_splitmix_normal();
        uniform[i] = test_splitmix_float();
    }
    const struct {
        const float *x;
        const char *name;
        double bound[N_K_TYPES]; /* Q4_K, Q5_K, Q6_K */
    } sets[] = {
        {normal, "normal", {0.078, 0.040, 0.020}},
        {uniform, "uniform", {0.060, 0.031, 0.015}},
    };
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        double prev = 1.0;
        for (size_t t = 0; t < N_K_TYPES; t++) {
            struct round_trip_error e;
            check_round_trip(k_types[t], sets[s].name, sets[s].x, N, sets[s].bound[t], &e);
            assert_true(e.overall < 0.6 * prev);
            prev = e.overall;
        }
    }
}

/* Data away from zero (1 + 0.5 u, u uniform in [-1, 1)): Q4_K and Q5_K fit a min
 * per sub-block, and when the least-squares fit wants a positive one it is held at 0
 * with the scale refitted; errors Q4_K 0.024 (0.034 without that rule), Q5_K 0.012.
 * Q6_K, symmetric around zero, gives 0.011. Bounds about 10% above. */
static void test_round_trip_offset_data(void **state)
{
    (void)state;
    enum { N = ROUND_TRIP_MAX };
    static float x[N];
    test_splitmix_seed(44);
    for (int i = 0; i < N; i++)
        x[i] = 1.0f + 0.5f * test_splitmix_float();
    const double bound[N_K_TYPES] = {0.027, 0.0135, 0.012};
    for (size_t t = 0; t < N_K_TYPES; t++)
        check_round_trip(k_types[t], "offset", x, N, bound[t], NULL);
}

/* The error does not depend on the magnitude of the data while the block scales
 * stay normal halves: the same row scaled by 2^-4 .. 2^8 quantizes equally well. */
static void test_round_trip_scale_invariant(void **state)
{
    (void)state;
    enum { N = 16 * QK_K };
    static float x[N], scaled[N];
    test_splitmix_seed(42);
    for (int i = 0; i < N; i++)
        x[i] = test_splitmix_normal();
    for (size_t t = 0; t < N_K_TYPES; t++) {
        double at_one = round_trip(k_types[t], x, N).overall;
        for (int e = -4; e <= 8; e += 4) {
            for (int i = 0; i < N; i++)
                scaled[i] = ldexpf(x[i], e);
            double err = round_trip(k_types[t], scaled, N).overall;
            if (fabs(err - at_one) > 0.01 * at_one)
                fail_msg("%s: error %.5f at scale 2^%d, %.5f at scale 1",
                         llamad_type_name(k_types[t]), err, e, at_one);
        }
    }
}

/* ---- chosen kernels against the reference ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Random bytes, with the block scales (d, and dmin for Q4_K/Q5_K) as halves of
 * magnitude up to 2 so that every weight is finite. */
static void fill_random_row(uint32_t type, uint8_t *row, size_t bytes)
{
    size_t block = row_bytes(type, QK_K);
    for (size_t i = 0; i < bytes; i++)
        row[i] = (uint8_t)test_splitmix_u64();
    for (size_t b = 0; b < bytes; b += block) {
        if (type == LLAMAD_TYPE_Q6_K) {
            put16(row + b + 208, llamad_f32_to_f16(2.0f * test_splitmix_float()));
        } else {
            put16(row + b, llamad_f32_to_f16(2.0f * test_splitmix_float()));
            put16(row + b + 2, llamad_f32_to_f16(2.0f * test_splitmix_float()));
        }
    }
}

/* The chosen dequantizer gives the reference's weights, bit for bit. */
static void test_fast_equals_reference(void **state)
{
    (void)state;
    test_splitmix_seed(43);
    for (size_t t = 0; t < N_K_TYPES; t++) {
        const struct llamad_kernels *fast = llamad_kernels_for(k_types[t]);
        const struct llamad_kernels *ref = llamad_kernels_ref(k_types[t]);
        for (int64_t blocks = 1; blocks <= 16; blocks++) {
            int64_t n = blocks * QK_K;
            size_t bytes = row_bytes(k_types[t], n);
            uint8_t *row = malloc(bytes);
            float *wf = malloc((size_t)n * sizeof *wf);
            float *wr = malloc((size_t)n * sizeof *wr);
            assert_true(row && wf && wr);
            fill_random_row(k_types[t], row, bytes);

            fast->dequantize_row(row, wf, n);
            ref->dequantize_row(row, wr, n);
            bool same_weights = memcmp(wf, wr, (size_t)n * sizeof *wf) == 0;
            free(row);
            free(wf);
            free(wr);
            if (!same_weights)
                fail_msg("%s n=%lld: %s weights differ from the reference",
                         llamad_type_name(k_types[t]), (long long)n, fast->isa);
        }
    }
}

/* ---- the shared synthetic models ---- */

/* The two models, opened on first use and closed by the group teardown (so a
 * failing test leaks nothing). */
static struct llamad_gguf *model_f16, *model_q4_k_m;

/* <shared>/testdata/models/<name>, opened into *slot once; NULL when the file is
 * not there. */
static struct llamad_gguf *shared_model(const char *name, struct llamad_gguf **slot)
{
    char rel[256], err[256] = "";
    snprintf(rel, sizeof rel, "testdata/models/%s", name);
    const char *path = *slot ? NULL : test_shared_path(rel);
    if (path && llamad_gguf_open(path, slot, err, sizeof err))
        fail_msg("%s: %s", path, err);
    return *slot;
}

static int close_models(void **state)
{
    (void)state;
    llamad_gguf_close(model_f16);
    llamad_gguf_close(model_q4_k_m);
    return 0;
}

enum { MAX_COLS = 4096 };

/* A 2-D tensor of `type` with rows of at most MAX_COLS; its row length and count
 * go to *cols, *rows. */
static const struct llamad_gguf_tensor *matrix(const struct llamad_gguf *g, const char *name,
                                               uint32_t type, int64_t *cols, int64_t *rows)
{
    const struct llamad_gguf_tensor *t = llamad_gguf_find_tensor(g, name);
    if (!t)
        fail_msg("no tensor %s", name);
    if (t->type != type)
        fail_msg("%s is %s, expected %s", name, llamad_type_name(t->type), llamad_type_name(type));
    assert_int_equal(t->n_dims, 2);
    *cols = (int64_t)t->ne[0];
    *rows = (int64_t)t->ne[1];
    assert_true(*cols <= MAX_COLS);
    assert_int_equal(t->nbytes, row_bytes(type, *cols) * (uint64_t)*rows);
    return t;
}

/* Row r of an F16 matrix as floats. */
static void f16_row(const struct llamad_gguf_tensor *t, int64_t r, float *out)
{
    int64_t cols = (int64_t)t->ne[0];
    llamad_dequantize_row_ref(LLAMAD_TYPE_F16, (const uint8_t *)t->data + 2 * cols * r, out, cols);
}

/* Every row of blk.0.attn_q.weight in synth256-Q4_K_M (written by llama-quantize):
 * finite weights of the size the model was made with (below 0.05 in magnitude; row
 * RMS 0.005 .. 0.05), the chosen kernels agreeing with the reference, and, when the
 * F16 model it was quantized from is there, within the Q4_K error of it (measured
 * 0.052; bound 0.06). */
static void test_real_q4_k_tensor(void **state)
{
    (void)state;
    const struct llamad_gguf *q = shared_model("synth256-Q4_K_M.gguf", &model_q4_k_m);
    if (!q) {
        print_message("SKIP: ../shared/testdata/models/synth256-Q4_K_M.gguf is not there\n");
        skip();
    }
    const struct llamad_gguf *f16 = shared_model("synth256-F16.gguf", &model_f16);
    int64_t cols, rows;
    const struct llamad_gguf_tensor *t =
        matrix(q, "blk.0.attn_q.weight", LLAMAD_TYPE_Q4_K, &cols, &rows);
    const struct llamad_gguf_tensor *src = NULL;
    if (f16) {
        int64_t c16, r16;
        src = matrix(f16, "blk.0.attn_q.weight", LLAMAD_TYPE_F16, &c16, &r16);
        assert_true(c16 == cols && r16 == rows);
    }

    const struct llamad_kernels *fast = llamad_kernels_for(LLAMAD_TYPE_Q4_K);
    size_t rb = row_bytes(LLAMAD_TYPE_Q4_K, cols);
    static float w[MAX_COLS], wr[MAX_COLS], x[MAX_COLS];
    double err = 0, sum = 0;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        fast->dequantize_row(row, w, cols);
        llamad_dequantize_row_ref(LLAMAD_TYPE_Q4_K, row, wr, cols);
        assert_memory_equal(w, wr, (size_t)cols * sizeof *w);
        double sq = 0;
        for (int64_t i = 0; i < cols; i++) {
            if (!isfinite(w[i]) || fabsf(w[i]) > 0.05f)
                fail_msg("row %lld element %lld: %g", (long long)r, (long long)i, w[i]);
            sq += (double)w[i] * w[i];
        }
        double rms = sqrt(sq / (double)cols);
        if (rms < 0.005 || rms > 0.05)
            fail_msg("row %lld: RMS %g", (long long)r, rms);
        if (src) {
            f16_row(src, r, x);
            for (int64_t i = 0; i < cols; i++) {
                err += ((double)x[i] - w[i]) * ((double)x[i] - w[i]);
                sum += (double)x[i] * x[i];
            }
        }
    }
    if (src) {
        print_message("blk.0.attn_q.weight: Q4_K against F16, relative RMS error %.4f\n",
                      sqrt(err / sum));
        assert_true(sqrt(err / sum) < 0.06);
    }
}

/* llama-quantize (without an importance matrix) uses ggml's reference quantizers;
 * ours, given the same F16 weights, must write the same bytes. */
static void check_requantized(const struct llamad_gguf *f16, const struct llamad_gguf *q,
                              const char *name, uint32_t type)
{
    int64_t cols, rows, c16, r16;
    const struct llamad_gguf_tensor *t = matrix(q, name, type, &cols, &rows);
    const struct llamad_gguf_tensor *src = matrix(f16, name, LLAMAD_TYPE_F16, &c16, &r16);
    assert_true(c16 == cols && r16 == rows);
    size_t rb = row_bytes(type, cols);
    static float x[MAX_COLS];
    static uint8_t out[MAX_COLS / QK_K * Q6_K_BYTES];
    for (int64_t r = 0; r < rows; r++) {
        f16_row(src, r, x);
        assert_true(llamad_quantize_row_ref(type, x, out, cols));
        const uint8_t *want = (const uint8_t *)t->data + (size_t)r * rb;
        for (size_t i = 0; i < rb; i++) {
            if (out[i] != want[i])
                fail_msg("%s row %lld byte %zu: 0x%02x, llama-quantize wrote 0x%02x", name,
                         (long long)r, i, out[i], want[i]);
        }
    }
}

static void test_quantizers_match_llama_quantize(void **state)
{
    (void)state;
    const struct llamad_gguf *f16 = shared_model("synth256-F16.gguf", &model_f16);
    const struct llamad_gguf *q = shared_model("synth256-Q4_K_M.gguf", &model_q4_k_m);
    if (!f16 || !q) {
        print_message("SKIP: synth256-F16.gguf or synth256-Q4_K_M.gguf is not there\n");
        skip();
    }
    check_requantized(f16, q, "blk.0.attn_q.weight", LLAMAD_TYPE_Q4_K);
    check_requantized(f16, q, "blk.1.ffn_up.weight", LLAMAD_TYPE_Q4_K);
    check_requantized(f16, q, "blk.1.attn_v.weight", LLAMAD_TYPE_Q6_K);
    check_requantized(f16, q, "blk.1.ffn_down.weight", LLAMAD_TYPE_Q6_K);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_k_types_computable),
        cmocka_unit_test(test_q4_k_by_hand),
        cmocka_unit_test(test_q5_k_by_hand),
        cmocka_unit_test(test_quantize_on_grid_known),
        cmocka_unit_test(test_quantize_zero_block),
        cmocka_unit_test(test_quantize_non_finite_input),
        cmocka_unit_test(test_round_trip_error),
        cmocka_unit_test(test_round_trip_offset_data),
        cmocka_unit_test(test_round_trip_scale_invariant),
        cmocka_unit_test(test_fast_equals_reference),
        cmocka_unit_test(test_real_q4_k_tensor),
        cmocka_unit_test(test_quantizers_match_llama_quantize),
    };
    return cmocka_run_group_tests(tests, NULL, close_models);
}
