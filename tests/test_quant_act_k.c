/* Integer dot products of K-quant rows (Q4_K, Q5_K, Q6_K) with Q8_K activations:
 * the reference against float arithmetic on the dequantized values and against
 * hand-worked blocks, and every fast variant this CPU runs against the reference. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
#include "testutil.h"

enum { QK_K = 256, MAX_BLOCKS = 5 };

struct ktype {
    const char *name;
    uint32_t type;
    int bytes;     /* per 256-element block */
    int d_at;      /* fp16 d */
    int dmin_at;   /* fp16 dmin, or -1 (Q6_K) */
    int scales_at; /* packed scales (and mins) */
    int scales_len;
};

static const struct ktype ktypes[] = {
    {"Q4_K", LLAMAD_TYPE_Q4_K, 144, 0, 2, 4, 12},
    {"Q5_K", LLAMAD_TYPE_Q5_K, 176, 0, 2, 4, 12},
    {"Q6_K", LLAMAD_TYPE_Q6_K, 210, 208, -1, 192, 16},
};

/* uniform in [-1, 1] */
static float next_unit(void)
{
    return (float)(test_rand_u32() % 2000001) / 1000000.0f - 1.0f;
}

static void put_f16(uint8_t *p, float v)
{
    uint16_t h = llamad_f32_to_f16(v);
    memcpy(p, &h, 2);
}

/* Random bytes, with finite scales (d and dmin in [-2, 2]). */
static void random_blocks(const struct ktype *k, uint8_t *w, int nb)
{
    for (int i = 0; i < nb * k->bytes; i++)
        w[i] = (uint8_t)test_rand_u32();
    for (int b = 0; b < nb; b++) {
        put_f16(w + b * k->bytes + k->d_at, 2.0f * next_unit());
        if (k->dmin_at >= 0)
            put_f16(w + b * k->bytes + k->dmin_at, 2.0f * next_unit());
    }
}

/* What the reference quantizer makes of random floats. */
static void quantized_blocks(const struct ktype *k, uint8_t *w, int nb)
{
    float f[MAX_BLOCKS * QK_K];
    for (int i = 0; i < nb * QK_K; i++)
        f[i] = next_unit() * (1.0f + (float)(i % 7));
    assert_true(llamad_quantize_row_ref(k->type, f, w, nb * QK_K));
}

static void random_act(struct llamad_q8k_block *x, int nb)
{
    float f[MAX_BLOCKS * QK_K];
    for (int i = 0; i < nb * QK_K; i++)
        f[i] = next_unit() * 10.0f;
    llamad_quantize_act(LLAMAD_ACT_Q8K, f, x, nb * QK_K);
}

/* Every activation value v (the extremes -128 and 127), bsums to match. */
static void constant_act(struct llamad_q8k_block *x, int nb, int v)
{
    for (int b = 0; b < nb; b++) {
        x[b].d = 1.0f / 128.0f;
        memset(x[b].qs, (int8_t)v, QK_K);
        for (int g = 0; g < 16; g++)
            x[b].bsums[g] = (int16_t)(16 * v);
    }
}

/* The weights of a row, and of a row of the same scales with other quants or
 * with one of d, dmin zeroed, as floats. */
static void dequantized(const struct ktype *k, const uint8_t *w, int nb, float *out,
                        void (*change)(const struct ktype *, uint8_t *))
{
    uint8_t copy[MAX_BLOCKS * 256];
    memcpy(copy, w, (size_t)(nb * k->bytes));
    for (int b = 0; change && b < nb; b++)
        change(k, copy + b * k->bytes);
    llamad_dequantize_row_ref(k->type, copy, out, nb * QK_K);
}

static void zero_dmin(const struct ktype *k, uint8_t *block)
{
    put_f16(block + k->dmin_at, 0.0f);
}

static void zero_d(const struct ktype *k, uint8_t *block)
{
    put_f16(block + k->d_at, 0.0f);
}

/* Q6_K quants all 33 (value 1): each weight becomes its scale. */
static void unit_quants(const struct ktype *k, uint8_t *block)
{
    (void)k;
    memset(block, 0x11, 128);      /* low nibbles 1 */
    memset(block + 128, 0xAA, 64); /* top bits 2 */
}

/* A bound on the float terms the kernels round, so the scale of the difference
 * between two correct ones: sum_i (|a_i| + |b_i|) |x_i|, a_i being element i's
 * scaled quant and b_i its min term (Q4_K, Q5_K). The fast Q6_K kernels keep the
 * offset of 32 in the quants and take it off with the activation sums, so their
 * terms reach sum_i (|w_i| + 64 |s_i|) |x_i|, s_i the element's scale. */
static double term_bound(const struct ktype *k, const uint8_t *w, const struct llamad_q8k_block *x,
                         int nb)
{
    float a[MAX_BLOCKS * QK_K], b[MAX_BLOCKS * QK_K];
    bool q6 = k->dmin_at < 0;
    dequantized(k, w, nb, a, q6 ? NULL : zero_dmin);
    dequantized(k, w, nb, b, q6 ? unit_quants : zero_d);
    double bound = 0.0;
    for (int i = 0; i < nb * QK_K; i++) {
        double xi = fabs((double)(x[i / QK_K].d * (float)x[i / QK_K].qs[i % QK_K]));
        bound += (fabs((double)a[i]) + (q6 ? 64.0 : 1.0) * fabs((double)b[i])) * xi;
    }
    return bound;
}

/* The float dot of the dequantized weights with the dequantized activations. */
static double float_dot(const struct ktype *k, const uint8_t *w, const struct llamad_q8k_block *x,
                        int nb)
{
    float wf[MAX_BLOCKS * QK_K];
    llamad_dequantize_row_ref(k->type, w, wf, nb * QK_K);
    double sum = 0.0;
    for (int i = 0; i < nb * QK_K; i++)
        sum += (double)wf[i] * (double)(x[i / QK_K].d * (float)x[i / QK_K].qs[i % QK_K]);
    return sum;
}

static void check_ref_against_floats(const struct ktype *k)
{
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(k->type);
    assert_non_null(ref);
    assert_string_equal(ref->isa, "scalar");
    assert_int_equal(ref->format, LLAMAD_ACT_Q8K);
    uint8_t w[MAX_BLOCKS * 256];
    struct llamad_q8k_block x[MAX_BLOCKS];
    for (int trial = 0; trial < 60; trial++) {
        int nb = 1 + trial % 3;
        if (trial % 2)
            random_blocks(k, w, nb);
        else
            quantized_blocks(k, w, nb);
        random_act(x, nb);
        double want = float_dot(k, w, x, nb);
        assert_float_equal(ref->dot(w, x, nb * QK_K), want, 1e-5 * term_bound(k, w, x, nb) + 1e-9);
    }
}

static void test_ref_q4_k_matches_floats(void **state)
{
    (void)state;
    check_ref_against_floats(&ktypes[0]);
}

static void test_ref_q5_k_matches_floats(void **state)
{
    (void)state;
    check_ref_against_floats(&ktypes[1]);
}

static void test_ref_q6_k_matches_floats(void **state)
{
    (void)state;
    check_ref_against_floats(&ktypes[2]);
}

/* A Q4_K block with scales 1, 2, 3, 4, 60, 60, 60, 60 and mins 2, 2, 2, 2, 17, 17,
 * 17, 17 packed by hand (60 = 0b111100, 17 = 0b010001 use the top bits), low
 * nibbles 3 and high nibbles 5 (sub-blocks 0, 2, 4, 6 hold 3, the odd ones 5),
 * d = 1, dmin = 0.5. */
static void hand_q45_block(uint8_t *b, int qs_at)
{
    put_f16(b, 1.0f);
    put_f16(b + 2, 0.5f);
    const uint8_t packed[12] = {0xC1, 0xC2, 0xC3, 0xC4, 0x42, 0x42,
                                0x42, 0x42, 0x1C, 0x1C, 0x1C, 0x1C};
    memcpy(b + 4, packed, 12);
    memset(b + qs_at, 0x53, 128);
}

static void test_ref_by_hand(void **state)
{
    (void)state;
    struct llamad_q8k_block x;
    constant_act(&x, 1, 1);
    x.d = 0.25f;

    /* sum_j scale_j 32 q_j = 32 (3 + 10 + 9 + 20 + 180 + 300 + 180 + 300) = 32064;
     * sum_j min_j 32 = 32 * 76 = 2432; 0.25 * 32064 - 0.5 * 0.25 * 2432 = 7712 */
    uint8_t q4[144];
    hand_q45_block(q4, 16);
    assert_float_equal(llamad_act_kernels_ref(LLAMAD_TYPE_Q4_K)->dot(q4, &x, QK_K), 7712.0, 0.0);

    /* qh = 0x82 adds 16 to sub-blocks 1 (scale 2) and 7 (scale 60):
     * 32064 + 32 * 16 * 62 = 63808, and 0.25 * 63808 - 304 = 15648 */
    uint8_t q5[176];
    hand_q45_block(q5, 48);
    memset(q5 + 16, 0x82, 32);
    assert_float_equal(llamad_act_kernels_ref(LLAMAD_TYPE_Q5_K)->dot(q5, &x, QK_K), 15648.0, 0.0);

    /* Q6_K: ql bytes 0x21 and qh bytes 0xE4 (top bits 0, 1, 2, 3 for k = 0..3) make
     * the 32-element runs k = 0..3 of each half 1, 17, 34, 50, i.e. -31, -15, 2, 18;
     * group g (16 elements) has scale g - 8 and d = 0.5. Sum of scale * value over
     * groups: 465 + 165 - 14 - 54 (first half) - 31 - 75 + 18 + 234 (second) = 708;
     * 0.5 * 0.25 * 16 * 708 = 1416. */
    uint8_t q6[210];
    memset(q6, 0x21, 128);
    memset(q6 + 128, 0xE4, 64);
    for (int g = 0; g < 16; g++)
        q6[192 + g] = (uint8_t)(int8_t)(g - 8);
    put_f16(q6 + 208, 0.5f);
    assert_float_equal(llamad_act_kernels_ref(LLAMAD_TYPE_Q6_K)->dot(q6, &x, QK_K), 1416.0, 0.0);
}

/* Weight rows that push the kernels to their limits. */
enum weights { RANDOM, QUANTIZED, ALL_MAX, ZERO_QUANTS_MAX_SCALES, ZERO_SCALES, N_WEIGHTS };

static void make_weights(const struct ktype *k, enum weights kind, uint8_t *w, int nb)
{
    if (kind == QUANTIZED) {
        quantized_blocks(k, w, nb);
        return;
    }
    random_blocks(k, w, nb);
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = w + b * k->bytes;
        if (kind == ALL_MAX || kind == ZERO_QUANTS_MAX_SCALES) {
            /* quants 15 / 31 / 63 or 0; scales and mins 63, Q6_K's -128 */
            memset(blk, kind == ALL_MAX ? 0xFF : 0x00, (size_t)k->bytes);
            memset(blk + k->scales_at, k->dmin_at < 0 ? 0x80 : 0xFF, (size_t)k->scales_len);
            put_f16(blk + k->d_at, 1.5f);
            if (k->dmin_at >= 0)
                put_f16(blk + k->dmin_at, -0.75f);
        } else if (kind == ZERO_SCALES) {
            memset(blk + k->scales_at, 0, (size_t)k->scales_len);
        }
    }
}

enum activations { ACT_RANDOM, ACT_ALL_MIN, ACT_ALL_MAX, N_ACTS };

static void make_act(enum activations kind, struct llamad_q8k_block *x, int nb)
{
    if (kind == ACT_RANDOM)
        random_act(x, nb);
    else
        constant_act(x, nb, kind == ACT_ALL_MIN ? -128 : 127);
}

static void check_fast(const struct ktype *k, const char *isa)
{
    const struct llamad_act_kernels *fast = llamad_act_kernels_variant(k->type, isa);
    if (!fast) {
        print_message("%s: no %s kernel on this CPU\n", k->name, isa);
        return;
    }
    assert_string_equal(fast->isa, isa);
    assert_int_equal(fast->format, LLAMAD_ACT_Q8K);
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(k->type);
    uint8_t w[MAX_BLOCKS * 256];
    struct llamad_q8k_block x[MAX_BLOCKS];
    for (int nb = 1; nb <= MAX_BLOCKS; nb++) {
        for (int trial = 0; trial < 40; trial++) {
            make_weights(k, (enum weights)(trial % N_WEIGHTS), w, nb);
            make_act((enum activations)(trial / N_WEIGHTS % N_ACTS), x, nb);
            float got = fast->dot(w, x, nb * QK_K), want = ref->dot(w, x, nb * QK_K);
            assert_float_equal(got, want, 1e-6 * term_bound(k, w, x, nb));
        }
    }
}

static void test_fast_equals_ref(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof ktypes / sizeof ktypes[0]; t++) {
        check_fast(&ktypes[t], "avx512vnni");
        check_fast(&ktypes[t], "avx2");
    }
}

/* A variant's matmul over 1..5 rows by 1..9 tokens (every token group of 4, 2
 * and 1) of 1..3 blocks gives each row and token's reference dot at its place of a
 * wider output, and writes nothing else. */
static void check_matmul(const struct ktype *k, const char *isa)
{
    enum { ROWS = 5, TOKENS = 9, NB = 3, Y_STRIDE = ROWS + 1 };
    const struct llamad_act_kernels *fast = llamad_act_kernels_variant(k->type, isa);
    if (!fast || !fast->matmul) {
        print_message("%s: no %s matmul kernel\n", k->name, isa);
        return;
    }
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(k->type);
    uint8_t *w = malloc((size_t)(ROWS * NB * k->bytes));
    struct llamad_q8k_block *x = malloc(TOKENS * NB * sizeof(*x));
    float y[TOKENS * Y_STRIDE];
    for (int nb = 1; nb <= NB; nb++) {
        size_t row_bytes = (size_t)(nb * k->bytes);
        for (int r = 0; r < ROWS; r++)
            make_weights(k, (enum weights)(r % N_WEIGHTS), w + r * row_bytes, nb);
        for (int t = 0; t < TOKENS; t++)
            make_act((enum activations)(t % N_ACTS), x + t * nb, nb);
        for (int rows = 1; rows <= ROWS; rows++)
            for (int n_tok = 1; n_tok <= TOKENS; n_tok++) {
                for (int i = 0; i < TOKENS * Y_STRIDE; i++)
                    y[i] = -1.0f;
                fast->matmul(w, row_bytes, rows, x, (size_t)nb * sizeof(*x), n_tok, nb * QK_K, y,
                             Y_STRIDE);
                for (int t = 0; t < TOKENS; t++)
                    for (int r = 0; r < Y_STRIDE; r++) {
                        float got = y[t * Y_STRIDE + r];
                        if (t >= n_tok || r >= rows) {
                            assert_true(got == -1.0f);
                            continue;
                        }
                        const uint8_t *wr = w + r * row_bytes;
                        float want = ref->dot(wr, x + t * nb, nb * QK_K);
                        assert_float_equal(got, want, 1e-6 * term_bound(k, wr, x + t * nb, nb));
                    }
            }
    }
    free(w);
    free(x);
}

static void test_matmul_equals_ref(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof ktypes / sizeof ktypes[0]; t++) {
        check_matmul(&ktypes[t], "avx512vnni");
        check_matmul(&ktypes[t], "avx2");
    }
}

/* The choice for this CPU: the fastest variant it runs, or the reference. */
static void test_kernel_choice(void **state)
{
    (void)state;
    const char *want = llamad_cpu_runs(LLAMAD_CPU_VNNI)   ? "avx512vnni"
                       : llamad_cpu_runs(LLAMAD_CPU_AVX2) ? "avx2"
                                                          : "scalar";
    for (size_t t = 0; t < sizeof ktypes / sizeof ktypes[0]; t++) {
        const struct llamad_act_kernels *k = llamad_act_kernels_for(ktypes[t].type);
        assert_non_null(k);
        print_message("%s integer kernel: %s\n", ktypes[t].name, k->isa);
        assert_string_equal(k->isa, want);
        assert_int_equal(k->format, LLAMAD_ACT_Q8K);
    }
}

int main(void)
{
    test_rand_seed(0x9E3779B97F4A7C15ULL); /* the state these tests' data were drawn from */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_q4_k_matches_floats),
        cmocka_unit_test(test_ref_q5_k_matches_floats),
        cmocka_unit_test(test_ref_q6_k_matches_floats),
        cmocka_unit_test(test_ref_by_hand),
        cmocka_unit_test(test_fast_equals_ref),
        cmocka_unit_test(test_matmul_equals_ref),
        cmocka_unit_test(test_kernel_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
