/* `meson test --benchmark gemm-kernels`: the int8 GEMM's kernels alone, on one
 * thread, with their weights in the core's cache: how many multiply-accumulates
 * a second each type's kernel does for 1, 8 and 16 tokens, against the one-thread
 * peak of the instruction it runs on (llamad-bench's compute roofline). Decoding
 * a large model reads its weights from memory; where memory is fast enough, this
 * rate is what bounds it. Speeds are reported, never asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/tools/compute_peak.h"
#include "gemm_testutil.h"
#include "llamad/base/clock.h"
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/gemm_int8.h"
#include "testutil.h"

enum {
    ROWS = 128,  /* 4 panels */
    COLS = 2048, /* Q8_0: 278 KB packed, within any core's L2 */
    PASSES = 7,
};
#define PASS_SECONDS 0.1

/* Multiply-accumulates per second, in 1e9, of the kernels on the whole weight
 * for n_tokens tokens: the best of PASSES passes, since other load on the
 * machine only ever slows a pass. */
static double kernel_gmacs(const struct llamad_gemm_int8_kernels *k, const struct llamad_weight *w,
                           const struct gemm_test_acts *a, int32_t n_tokens, float *y, void *work)
{
    int64_t calls = 1;
    for (;;) { /* calls a pass makes: about PASS_SECONDS of them */
        const double t0 = llamad_now_seconds();
        for (int64_t i = 0; i < calls; i++)
            k->rows(w, 0, w->rows, a->x, n_tokens, y, w->rows, work);
        if (llamad_now_seconds() - t0 >= PASS_SECONDS / 4)
            break;
        calls *= 2;
    }
    calls *= 4;
    double best = 0.0;
    for (int p = 0; p < PASSES; p++) {
        const double t0 = llamad_now_seconds();
        for (int64_t i = 0; i < calls; i++)
            k->rows(w, 0, w->rows, a->x, n_tokens, y, w->rows, work);
        const double seconds = llamad_now_seconds() - t0;
        const double rate = (double)calls * (double)w->rows * (double)w->cols * n_tokens / seconds;
        best = rate > best ? rate : best;
    }
    return best / 1e9;
}

int main(void)
{
    char err[256];
    struct compute_peak peak;
    if (compute_peak_measure(1, PASSES, &peak, err, sizeof err)) {
        fprintf(stderr, "bench_gemm: %s\n", err);
        return 1;
    }
    printf("kernel set %s; one thread's peak: %s %.1f GMAC/s",
           llamad_cpu_set_name(llamad_cpu_set()), peak.int8.isa ? peak.int8.isa : "none",
           peak.int8.gmacs);
    if (peak.amx.isa)
        printf(", %s %.1f GMAC/s", peak.amx.isa, peak.amx.gmacs);
    printf("\nweights %d x %d, in cache\n\n", ROWS, COLS);
    printf(
        "| type | tokens | kernel | GMAC/s | %% of peak |\n| --- | ---: | --- | ---: | ---: |\n");

    static const uint32_t types[] = {LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, LLAMAD_TYPE_Q4_K,
                                     LLAMAD_TYPE_Q5_K, LLAMAD_TYPE_Q6_K};
    static const int32_t tokens[] = {1, 8, 16};
    enum { MAX_TOKENS = 16 };
    test_rand_seed(1);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        struct llamad_weight w = gemm_test_weight(types[ti], ROWS, COLS);
        struct gemm_test_acts a = gemm_test_activations(types[ti], MAX_TOKENS, COLS);
        float *y = malloc(sizeof(float) * ROWS * MAX_TOKENS);
        for (size_t ki = 0; ki < sizeof tokens / sizeof tokens[0]; ki++) {
            const struct llamad_gemm_int8_kernels *k = llamad_gemm_int8_for(types[ti], tokens[ki]);
            /* work_bytes is whole 64-byte lines, as aligned_alloc wants */
            void *work = aligned_alloc(64, k->work_bytes(COLS, MAX_TOKENS) + 64);
            if (!y || !work) {
                fprintf(stderr, "bench_gemm: out of memory\n");
                return 1;
            }
            const double gmacs = kernel_gmacs(k, &w, &a, tokens[ki], y, work);
            const double top = !strcmp(k->isa, "amx") ? peak.amx.gmacs : peak.int8.gmacs;
            printf("| %s | %d | %s | %.1f | %.1f %% |\n", llamad_type_info(types[ti])->name,
                   tokens[ki], k->isa, gmacs, top > 0 ? 100.0 * gmacs / top : 0.0);
            free(work);
        }
        free(y);
        free(a.x);
        gemm_test_weight_free(&w);
    }
    return 0;
}
