#include "llamad/server/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"

/* Bucket upper bounds in seconds, spaced roughly 1-2.5-5 per decade over the
 * range each latency is expected to fall in. */
static const double ttft_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   20,  30,   60};
static const double itl_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                    0.1,   0.25,   0.5,   1,    2.5,   5};
static const double duration_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,  5,     10,   30,  60,   120, 300};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

_Static_assert(N_OF(ttft_bounds) <= LLAMAD_HIST_BUCKETS, "too many TTFT buckets");
_Static_assert(N_OF(itl_bounds) <= LLAMAD_HIST_BUCKETS, "too many ITL buckets");
_Static_assert(N_OF(duration_bounds) <= LLAMAD_HIST_BUCKETS, "too many duration buckets");

/* counts[i] holds observations in (bounds[i-1], bounds[i]]; counts[n_bounds]
 * those above every bound. */
void llamad_histogram_observe(struct llamad_histogram *h, double seconds)
{
    if (isnan(seconds)) /* a NaN would turn _sum into NaN for good */
        return;
    int i = 0;
    while (i < h->n_bounds && seconds > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += seconds;
    h->count++;
}

static void histogram_init(struct llamad_histogram *h, const double *bounds, int n)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n;
}

void llamad_metrics_init(struct llamad_metrics *m)
{
    memset(m, 0, sizeof *m);
    histogram_init(&m->ttft, ttft_bounds, N_OF(ttft_bounds));
    histogram_init(&m->itl, itl_bounds, N_OF(itl_bounds));
    histogram_init(&m->request_duration, duration_bounds, N_OF(duration_bounds));
}

void llamad_metrics_token(struct llamad_metrics *m, struct llamad_token_clock *c, double now)
{
    llamad_histogram_observe(c->tokens == 0 ? &m->ttft : &m->itl, now - c->last);
    c->last = now;
    c->tokens++;
}

void llamad_metrics_count_request(struct llamad_metrics *m, int status)
{
    if (status < 100 || status > 599)
        return;
    m->requests_by_status[status / 100]++;
    m->requests_by_code[status]++;
}

/* --- rendering ------------------------------------------------------------ */

/* Appends to out; the first failure sticks and later writes do nothing. */
struct writer {
    struct llamad_buf *out;
    int rc;
};

static void put(struct writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct writer *w, const char *fmt, ...)
{
    if (w->rc)
        return;
    char small[256], *text = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        w->rc = LLAMAD_EINVAL;
        return;
    }
    if ((size_t)n >= sizeof small) {
        if (!(text = malloc((size_t)n + 1))) {
            w->rc = LLAMAD_ENOMEM;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    w->rc = llamad_buf_append(w->out, text, (size_t)n);
    if (text != small)
        free(text);
}

/* The shortest of %.15g and %.17g that reads back as the same double, so
 * bounds print as "0.005" yet no value loses precision. Prometheus parses
 * these, and "+Inf", "-Inf" and "NaN". */
static const char *fmt_double(double v, char buf[32])
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    snprintf(buf, 32, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, 32, "%.17g", v);
    return buf;
}

static void header(struct writer *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct writer *w, const char *name, const char *help, uint64_t v)
{
    header(w, name, "counter", help);
    put(w, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct writer *w, const char *name, const char *help, double v)
{
    char num[32];
    header(w, name, "gauge", help);
    put(w, "%s %s\n", name, fmt_double(v, num));
}

static void histogram(struct writer *w, const char *name, const char *help,
                      const struct llamad_histogram *h)
{
    char num[32];
    uint64_t cumulative = 0;
    header(w, name, "histogram", help);
    for (int i = 0; i < h->n_bounds; i++) {
        cumulative += h->counts[i];
        put(w, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, fmt_double(h->bounds[i], num),
            cumulative);
    }
    put(w, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    put(w, "%s_sum %s\n", name, fmt_double(h->sum, num));
    put(w, "%s_count %" PRIu64 "\n", name, h->count);
}

static void requests_by_code(struct writer *w, const struct llamad_metrics *m)
{
    header(w, "llamad_requests_total", "counter", "HTTP requests answered, by status code.");
    for (int code = 100; code < 600; code++)
        if (m->requests_by_code[code])
            put(w, "llamad_requests_total{code=\"%d\"} %" PRIu64 "\n", code,
                m->requests_by_code[code]);
}

int llamad_metrics_render(const struct llamad_metrics *m, const struct llamad_engine_stats *es,
                          struct llamad_buf *out)
{
    struct writer w = {out, LLAMAD_OK};
    size_t start = out->len;

    requests_by_code(&w, m);
    counter(&w, "llamad_prompt_tokens_total", "Prompt tokens of finished requests.",
            m->prompt_tokens);
    counter(&w, "llamad_generation_tokens_total", "Tokens generated for finished requests.",
            m->completion_tokens);
    histogram(&w, "llamad_time_to_first_token_seconds",
              "Time from a request's arrival to its first generated token.", &m->ttft);
    histogram(&w, "llamad_inter_token_latency_seconds",
              "Time between consecutive generated tokens of a response (streamed or not), "
              "as they reach the server's event loop; the first token's wait is in "
              "llamad_time_to_first_token_seconds.",
              &m->itl);
    histogram(&w, "llamad_request_duration_seconds",
              "Time from a request's arrival to the end of its response.", &m->request_duration);

    gauge(&w, "llamad_requests_waiting", "Requests queued for a free sequence slot.", es->queued);
    gauge(&w, "llamad_requests_running", "Requests being decoded.", es->active);
    gauge(&w, "llamad_kv_cache_blocks_total", "KV cache blocks of 16 positions.",
          es->kv_blocks_total);
    gauge(&w, "llamad_kv_cache_blocks_reserved",
          "KV cache blocks held by running requests (for their whole room) and cached sequences.",
          es->kv_blocks_reserved);
    gauge(&w, "llamad_kv_cache_blocks_used", "KV cache blocks holding computed positions.",
          es->kv_blocks_used);
    gauge(&w, "llamad_kv_cache_blocks_idle",
          "KV cache blocks held only by cached sequences (evicted when room is needed).",
          es->kv_blocks_idle);
    gauge(&w, "llamad_kv_cache_sequences_idle",
          "Cached sequences of finished requests, kept for prefix and session reuse.",
          es->kv_seqs_idle);
    gauge(&w, "llamad_kv_cache_usage_ratio", "KV cache blocks reserved over all blocks (0..1).",
          es->kv_blocks_total > 0 ? (double)es->kv_blocks_reserved / es->kv_blocks_total : 0.0);
    counter(&w, "llamad_steps_total",
            "Batches run by the engine; each gives every decoding sequence a token.", es->steps);
    counter(&w, "llamad_forward_passes_total",
            "Passes through the model: one per step, more for a step whose prompt chunks "
            "run in several (--pass-tokens).",
            es->forward_passes);
    counter(&w, "llamad_prompt_tokens_computed_total", "Prompt tokens run through the model.",
            es->prompt_tokens_computed);
    counter(&w, "llamad_prompt_tokens_cached_total",
            "Prompt tokens whose KV entries came from the cache.", es->prompt_tokens_cached);

    if (w.rc && out->data) { /* leave out as it was */
        out->len = start;
        out->data[start] = '\0';
    }
    return w.rc;
}
