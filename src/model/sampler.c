#include "llamad/model/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/random.h"

struct llamad_sampler {
    struct llamad_sampling p; /* p.logit_bias points at `bias` */
    int32_t n_vocab;
    struct llamad_logit_bias *bias;

    uint8_t *mask; /* allocated by the first set_allowed, kept for reuse */
    bool mask_on;

    /* Penalty window; all NULL when the penalties are off. `counts` holds each
     * token's occurrences in the window and `present` the tokens with a non-zero
     * count (`slot` is each one's index there), so a step costs O(distinct). */
    int32_t *counts;
    int32_t *present;
    int32_t *slot;
    size_t n_present;
    int32_t *ring; /* NULL for an unbounded window: nothing ever leaves it */
    size_t ring_cap, ring_len, ring_head;

    /* Scratch for one step, sized n_vocab. */
    float *work;  /* the adjusted logits */
    int32_t *ids; /* candidate token ids */
    float *probs; /* probabilities, parallel to ids */

    uint64_t rng[4];
};

void llamad_sampling_defaults(struct llamad_sampling *p)
{
    *p = (struct llamad_sampling){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0,
        .logit_bias = NULL,
        .n_logit_bias = 0,
    };
}

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1): the top 53 bits fill a double's mantissa exactly. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

/* ---- create / free ---- */

static bool penalties_on(const struct llamad_sampling *p)
{
    if (p->penalty_last_n == 0)
        return false;
    return p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
}

static bool alloc_window(struct llamad_sampler *s)
{
    size_t n = (size_t)s->n_vocab;
    s->counts = calloc(n, sizeof *s->counts);
    s->present = malloc(n * sizeof *s->present);
    s->slot = malloc(n * sizeof *s->slot);
    if (!s->counts || !s->present || !s->slot)
        return false;
    /* A negative window is unbounded; the counts alone then describe it. */
    if (s->p.penalty_last_n > 0) {
        s->ring_cap = (size_t)s->p.penalty_last_n;
        s->ring = malloc(s->ring_cap * sizeof *s->ring);
        if (!s->ring)
            return false;
    }
    return true;
}

struct llamad_sampler *llamad_sampler_create(const struct llamad_sampling *p, int32_t n_vocab)
{
    if (n_vocab <= 0)
        return NULL;
    for (size_t i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab)
            return NULL;

    struct llamad_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->p.logit_bias = NULL;
    if (p->n_logit_bias) {
        s->bias = malloc(p->n_logit_bias * sizeof *s->bias);
        if (!s->bias)
            goto fail;
        memcpy(s->bias, p->logit_bias, p->n_logit_bias * sizeof *s->bias);
        s->p.logit_bias = s->bias;
    }
    if (penalties_on(p) && !alloc_window(s))
        goto fail;

    size_t n = (size_t)n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->ids = malloc(n * sizeof *s->ids);
    s->probs = malloc(n * sizeof *s->probs);
    if (!s->work || !s->ids || !s->probs)
        goto fail;

    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = llamad_splitmix64(&x);
    return s;

fail:
    llamad_sampler_free(s);
    return NULL;
}

void llamad_sampler_free(struct llamad_sampler *s)
{
    if (!s)
        return;
    free(s->bias);
    free(s->mask);
    free(s->counts);
    free(s->present);
    free(s->slot);
    free(s->ring);
    free(s->work);
    free(s->ids);
    free(s->probs);
    free(s);
}

int llamad_sampler_set_allowed(struct llamad_sampler *s, const uint8_t *mask)
{
    if (!mask) {
        s->mask_on = false;
        return LLAMAD_OK;
    }
    size_t bytes = ((size_t)s->n_vocab + 7) / 8;
    if (!s->mask) {
        s->mask = malloc(bytes);
        if (!s->mask)
            return LLAMAD_ENOMEM;
    }
    memcpy(s->mask, mask, bytes);
    s->mask_on = true;
    return LLAMAD_OK;
}

/* ---- penalty window ---- */

static void count_add(struct llamad_sampler *s, int32_t t)
{
    if (s->counts[t]++ == 0) {
        s->slot[t] = (int32_t)s->n_present;
        s->present[s->n_present++] = t;
    }
}

static void count_remove(struct llamad_sampler *s, int32_t t)
{
    if (--s->counts[t] == 0) {
        /* Move the last present token into t's slot. */
        int32_t last = s->present[--s->n_present];
        s->present[s->slot[t]] = last;
        s->slot[last] = s->slot[t];
    }
}

void llamad_sampler_accept(struct llamad_sampler *s, int32_t token)
{
    if (!s->counts || token < 0 || token >= s->n_vocab)
        return;
    if (s->ring) {
        if (s->ring_len < s->ring_cap) {
            s->ring[s->ring_len++] = token;
        } else {
            count_remove(s, s->ring[s->ring_head]);
            s->ring[s->ring_head] = token;
            s->ring_head = (s->ring_head + 1) % s->ring_cap;
        }
    }
    count_add(s, token);
}

/* ---- one step ---- */

static void apply_penalties(struct llamad_sampler *s)
{
    const struct llamad_sampling *p = &s->p;
    /* A non-positive factor has no meaning (and would turn logits into NaN). */
    bool repeat = p->repeat_penalty > 0.0f && p->repeat_penalty != 1.0f;
    for (size_t i = 0; i < s->n_present; i++) {
        int32_t t = s->present[i];
        float x = s->work[t];
        if (x == -INFINITY)
            continue; /* banned stays banned */
        if (repeat)
            x = x > 0.0f ? x / p->repeat_penalty : x * p->repeat_penalty;
        x -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
        s->work[t] = isnan(x) ? -INFINITY : x;
    }
}

/* Copies the logits into `work` and applies bias, penalties and the mask. */
static void adjust_logits(struct llamad_sampler *s, const float *logits)
{
    int32_t n = s->n_vocab;
    for (int32_t i = 0; i < n; i++)
        s->work[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    for (size_t i = 0; i < s->p.n_logit_bias; i++) {
        float *x = &s->work[s->bias[i].token];
        *x += s->bias[i].bias;
        if (isnan(*x)) /* +inf and -inf met */
            *x = -INFINITY;
    }
    if (s->counts)
        apply_penalties(s);
    if (s->mask_on)
        for (int32_t i = 0; i < n; i++)
            if (!((s->mask[i / 8] >> (i % 8)) & 1))
                s->work[i] = -INFINITY;
}

/* Highest logit, lowest id among equals; -1 when every logit is -inf or NaN
 * (a NaN never compares greater, so it is never chosen). */
static int32_t argmax(const float *x, int32_t n)
{
    /* Two branch-free passes: the maximum, kept in 8 lanes so the compiler can
     * vectorize it, then its first index. Lanes may end with 0.0 and -0.0 in any
     * order, which the == of the second pass does not tell apart. */
    enum { LANES = 8 };
    float lane[LANES];
    for (int j = 0; j < LANES; j++)
        lane[j] = -INFINITY;
    int32_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    for (; i < n; i++)
        lane[0] = x[i] > lane[0] ? x[i] : lane[0];
    float max = -INFINITY;
    for (int j = 0; j < LANES; j++)
        max = lane[j] > max ? lane[j] : max;
    if (max == -INFINITY)
        return -1;
    i = 0;
    while (x[i] != max)
        i++;
    return i;
}

/* Whether any bias, penalty or mask would change the logits. */
static bool adjusts_logits(const struct llamad_sampler *s)
{
    return s->p.n_logit_bias > 0 || s->counts || s->mask_on;
}

/* Candidate order: higher logit first, then lower id, so results never depend
 * on the order in which candidates are visited. */
static bool better(const float *work, int32_t a, int32_t b)
{
    return work[a] > work[b] || (work[a] == work[b] && a < b);
}

/* Restores the heap below i in ids[0, n), whose root is the worst candidate. */
static void sift_down(const float *work, int32_t *ids, size_t n, size_t i)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && better(work, ids[worst], ids[l]))
            worst = l;
        if (r < n && better(work, ids[worst], ids[r]))
            worst = r;
        if (worst == i)
            return;
        int32_t t = ids[i];
        ids[i] = ids[worst];
        ids[worst] = t;
        i = worst;
    }
}

/* Leaves the k best of ids[0, n) in ids[0, k), best first: a heap of the k best
 * seen so far, then a heap sort of it; O(n log k). */
static void select_top(const float *work, int32_t *ids, size_t n, size_t k)
{
    for (size_t i = k / 2; i-- > 0;)
        sift_down(work, ids, k, i);
    for (size_t i = k; i < n; i++)
        if (better(work, ids[i], ids[0])) {
            ids[0] = ids[i];
            sift_down(work, ids, k, 0);
        }
    for (size_t end = k; end-- > 1;) {
        int32_t t = ids[0];
        ids[0] = ids[end];
        ids[end] = t;
        sift_down(work, ids, end, 0);
    }
}

/* Unnormalised probabilities of the n candidates at the given temperature
 * (dividing by it inside the exponent is the same as dividing the logits);
 * returns their sum. */
static double softmax(struct llamad_sampler *s, size_t n, float temperature)
{
    float max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        max = fmaxf(max, s->work[s->ids[i]]);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float x = s->work[s->ids[i]];
        /* x == max also covers +inf logits, where x - max would be NaN. */
        s->probs[i] = x == max ? 1.0f : expf((x - max) / temperature);
        sum += s->probs[i];
    }
    return sum;
}

/* Number of leading (sorted) candidates whose cumulative share reaches top_p. */
static size_t top_p_count(const float *probs, size_t n, double sum, float top_p)
{
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += probs[i];
        if (cum >= top_p * sum)
            return i + 1;
    }
    return n;
}

/* Keeps the candidates with p >= min_p * p_max, in order; returns their count. */
static size_t min_p_filter(struct llamad_sampler *s, size_t n, float min_p)
{
    float p_max = 0.0f;
    for (size_t i = 0; i < n; i++)
        p_max = fmaxf(p_max, s->probs[i]);
    float cut = fminf(min_p, 1.0f) * p_max; /* the best token always stays */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (s->probs[i] >= cut) {
            s->ids[kept] = s->ids[i];
            s->probs[kept] = s->probs[i];
            kept++;
        }
    return kept;
}

static int32_t draw(struct llamad_sampler *s, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += s->probs[i];
    double u = rng_uniform(s->rng) * sum, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += s->probs[i];
        if (u < acc)
            return s->ids[i];
    }
    return s->ids[n - 1]; /* rounding left u at the very top */
}

int32_t llamad_sampler_sample(struct llamad_sampler *s, const float *logits)
{
    const struct llamad_sampling *p = &s->p;
    bool greedy = !(p->temperature > 0.0f);
    /* Plain greedy reads the logits as they are: no copy, one pass. */
    if (greedy && !adjusts_logits(s))
        return argmax(logits, s->n_vocab);
    adjust_logits(s, logits);
    if (greedy)
        return argmax(s->work, s->n_vocab);

    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (s->work[i] > -INFINITY)
            s->ids[n++] = i;
    if (n == 0)
        return -1;

    bool top_p = p->top_p < 1.0f;
    size_t k = p->top_k > 0 && (size_t)p->top_k < n ? (size_t)p->top_k : n;
    if (k < n || top_p)
        select_top(s->work, s->ids, n, k);
    n = k;

    double sum = softmax(s, n, p->temperature);
    if (top_p)
        n = top_p_count(s->probs, n, sum, p->top_p);
    if (p->min_p > 0.0f)
        n = min_p_filter(s, n, p->min_p);
    return draw(s, n);
}
