/* Counters, gauges and histograms, rendered in the Prometheus text format.
 * Updated and read on the loop thread only (the engine's own counters come in
 * through llamad_engine_stats at render time). */
#ifndef LLAMAD_METRICS_H
#define LLAMAD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "llamad/base/buf.h"
#include "llamad/engine/engine.h"

#define LLAMAD_HIST_BUCKETS 16

struct llamad_histogram {
    const double *bounds; /* upper bounds in seconds, ascending; n_bounds of them */
    int n_bounds;
    uint64_t counts[LLAMAD_HIST_BUCKETS + 1]; /* per bucket (not cumulative), last = +Inf */
    double sum;
    uint64_t count;
};

void llamad_histogram_observe(struct llamad_histogram *h, double seconds);

struct llamad_metrics {
    uint64_t requests_by_status[6]; /* index: 1xx..5xx -> 1..5; 0 unused */
    uint64_t requests_by_code[600]; /* exact status codes seen */
    uint64_t prompt_tokens;         /* tokens in, over finished requests */
    uint64_t completion_tokens;     /* tokens out */
    struct llamad_histogram ttft;   /* time to first token */
    struct llamad_histogram itl;    /* time between consecutive tokens of a response */
    struct llamad_histogram request_duration;
};

void llamad_metrics_init(struct llamad_metrics *m);

/* A response's clock for the token latency histograms, kept by its owner:
 * `last` starts as the request's arrival and then holds the latest token's. */
struct llamad_token_clock {
    double last;
    int32_t tokens; /* tokens so far */
};

/* Observes a token of the response that reached the loop at `now`: the first
 * one's wait in the TTFT histogram, every later one's gap since the token
 * before in the inter-token histogram, whether the response is streamed or not. */
void llamad_metrics_token(struct llamad_metrics *m, struct llamad_token_clock *c, double now);
void llamad_metrics_count_request(struct llamad_metrics *m, int status);

/* Appends the whole exposition (with HELP and TYPE lines) to out. Gauges from the
 * engine snapshot: requests waiting, requests running, KV cache blocks used and
 * total and their ratio (0..1), forward passes, prompt tokens computed / cached. */
int llamad_metrics_render(const struct llamad_metrics *m, const struct llamad_engine_stats *es,
                          struct llamad_buf *out);

#endif
