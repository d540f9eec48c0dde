#include "llamad/model/forward.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/kernels/attention.h"
#include "llamad/kernels/matmul_dispatch.h"
#include "llamad/kernels/ops.h"
#include "llamad/kernels/quant.h"
#include "llamad/kernels/threadpool.h"

struct llamad_forward {
    const struct llamad_model *m;
    struct llamad_forward_params p;
    struct llamad_threadpool *pool;
    /* Activations of one chunk, max_batch rows each. */
    float *x;             /* residual stream, n_embd */
    float *xb;            /* normed input of a sub-layer, n_embd */
    float *q;             /* n_head * head_dim */
    float *k, *v;         /* kv_dim */
    float *att;           /* attention output, n_embd */
    float *ffn_a;         /* gate, then silu(gate) * up; n_ff */
    float *ffn_b;         /* up; n_ff */
    float *proj;          /* output of wo and w_down, n_embd */
    float *scores;        /* LLAMAD_ATTENTION_QUERIES attention rows per thread, n_ctx */
    int32_t *group_start; /* the chunk's attention groups of entries (max_batch + 1) */
    int32_t n_groups;
    float *rope;                      /* each entry's rotations (llamad_rope_angles), n_rot */
    struct llamad_matmul_scratch *mm; /* buffers of the matrix products */
    const struct llamad_attention_kernels *attention_f32, *attention_f16, *attention_q8_0;
};

static float *alloc_rows(int32_t rows, int64_t width)
{
    return malloc((size_t)rows * (size_t)width * sizeof(float));
}

int llamad_forward_create(const struct llamad_model *m, const struct llamad_forward_params *p,
                          struct llamad_forward **out, char *err, size_t errsz)
{
    if (p->max_batch < 1 || p->n_ctx < 1)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "max_batch and n_ctx must be positive");
    struct llamad_forward *f = calloc(1, sizeof(*f));
    if (!f)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    f->m = m;
    f->p = *p;
    f->attention_f32 = llamad_attention_kernels(LLAMAD_TYPE_F32);
    f->attention_f16 = llamad_attention_kernels(LLAMAD_TYPE_F16);
    f->attention_q8_0 = llamad_attention_kernels(LLAMAD_TYPE_Q8_0);
    int rc = llamad_threadpool_create(p->n_threads, &f->pool, err, errsz);
    if (rc) {
        free(f);
        return rc;
    }
    const struct llamad_hparams *hp = &m->hp;
    int32_t B = p->max_batch;
    int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    f->x = alloc_rows(B, hp->n_embd);
    f->xb = alloc_rows(B, hp->n_embd);
    f->q = alloc_rows(B, hp->n_embd);
    f->k = alloc_rows(B, kv_dim);
    f->v = alloc_rows(B, kv_dim);
    f->att = alloc_rows(B, hp->n_embd);
    f->ffn_a = alloc_rows(B, hp->n_ff);
    f->ffn_b = alloc_rows(B, hp->n_ff);
    f->proj = alloc_rows(B, hp->n_embd);
    f->scores = alloc_rows(p->n_threads * LLAMAD_ATTENTION_QUERIES, p->n_ctx);
    f->rope = alloc_rows(B, hp->n_rot);
    f->group_start = malloc(((size_t)B + 1) * sizeof(int32_t));
    int64_t widest = hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd;
    if (!f->x || !f->xb || !f->q || !f->k || !f->v || !f->att || !f->ffn_a || !f->ffn_b ||
        !f->proj || !f->scores || !f->rope || !f->group_start) {
        llamad_forward_free(f);
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for a batch of %d", B);
    }
    if ((rc = llamad_matmul_scratch_create(p->n_threads, B, widest, &f->mm, err, errsz))) {
        llamad_forward_free(f);
        return rc;
    }
    *out = f;
    return LLAMAD_OK;
}

void llamad_forward_free(struct llamad_forward *f)
{
    if (!f)
        return;
    llamad_threadpool_free(f->pool);
    free(f->x);
    free(f->xb);
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->att);
    free(f->ffn_a);
    free(f->ffn_b);
    free(f->proj);
    free(f->scores);
    free(f->rope);
    free(f->group_start);
    llamad_matmul_scratch_free(f->mm);
    free(f);
}

/* Every entry must name a live sequence, a token of the vocabulary, and the next
 * position of its sequence within the room reserved for it. */
static int check_batch(struct llamad_forward *f, const struct llamad_kvcache *kv,
                       const struct llamad_batch_entry *batch, int32_t n, char *err, size_t errsz)
{
    int32_t *pending = calloc((size_t)kv->p.max_seqs, sizeof(int32_t));
    if (!pending)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    int rc = LLAMAD_OK;
    for (int32_t i = 0; i < n && rc == LLAMAD_OK; i++) {
        const struct llamad_batch_entry *e = &batch[i];
        if (!llamad_kvcache_seq_valid(kv, e->seq)) {
            rc =
                llamad_fail(err, errsz, LLAMAD_EINVAL, "batch entry %d: no sequence %d", i, e->seq);
            break;
        }
        int32_t expected = llamad_kvcache_seq_len(kv, e->seq) + pending[e->seq]++;
        if (e->token < 0 || e->token >= f->m->hp.n_vocab)
            rc = llamad_fail(err, errsz, LLAMAD_EINVAL,
                             "batch entry %d: token %d is outside the vocabulary of %d", i,
                             e->token, f->m->hp.n_vocab);
        else if (e->pos != expected)
            rc = llamad_fail(err, errsz, LLAMAD_EINVAL,
                             "batch entry %d: sequence %d continues at position %d, not %d", i,
                             e->seq, expected, e->pos);
        else if (e->pos >= llamad_kvcache_seq_room(kv, e->seq) || e->pos >= f->p.n_ctx)
            rc = llamad_fail(err, errsz, LLAMAD_EINVAL,
                             "batch entry %d: position %d of sequence %d has no reserved room", i,
                             e->pos, e->seq);
        else if (llamad_kvcache_seq_pos_shared(kv, e->seq, e->pos))
            rc = llamad_fail(err, errsz, LLAMAD_EINVAL,
                             "batch entry %d: position %d of sequence %d is in a shared block", i,
                             e->pos, e->seq);
    }
    free(pending);
    return rc;
}

struct attention_task {
    struct llamad_forward *f;
    const struct llamad_kvcache *kv;
    const struct llamad_batch_entry *batch;
    int32_t n;
    int32_t layer;
};

/* The attention kernels for a cache of `type`. */
static const struct llamad_attention_kernels *attention_kernels(const struct llamad_forward *f,
                                                                uint32_t type)
{
    return type == LLAMAD_TYPE_F16    ? f->attention_f16
           : type == LLAMAD_TYPE_Q8_0 ? f->attention_q8_0
                                      : f->attention_f32;
}

/* Asks for one head's rows of the next cache block while this one is computed:
 * the blocks lie anywhere in the cache, so the hardware prefetchers cannot run
 * ahead into the next one. */
static void prefetch_head(const struct llamad_kvcache *kv, int32_t block, int32_t layer, int kind,
                          int32_t head)
{
    const uint8_t *rows = llamad_kvcache_head(kv, block, layer, kind, head);
    for (size_t b = 0; b < (size_t)kv->p.block_tokens * kv->head_bytes; b += 64)
        __builtin_prefetch(rows + b);
}

/* Queries that read the same cache rows: either n_q consecutive entries of one
 * sequence (a prompt's positions) for query head h0, or, for one entry, the n_q
 * query heads from h0 that share a KV head (grouped-query attention). */
struct query_run {
    int32_t i0, h0;
    int n_q;
    bool heads;
};

/* Attention of a run of queries over their sequence's positions, block by block
 * through the block table: the queries share every cache row they read.
 * `scores` holds n_q rows of n_ctx; an earlier entry's scores past its own
 * position are computed but weigh nothing. */
static void attend(const struct attention_task *t, struct query_run run, float *scores)
{
    const struct llamad_hparams *hp = &t->f->m->hp;
    const struct llamad_kvcache *kv = t->kv;
    const struct llamad_attention_kernels *ak = attention_kernels(t->f, kv->p.type);
    const int32_t seq = t->batch[run.i0].seq;
    const int32_t hd = hp->head_dim, bt = kv->p.block_tokens, n_ctx = t->f->p.n_ctx;
    const int32_t kvh = run.h0 / (hp->n_head / hp->n_head_kv);
    const int32_t first_pos = t->batch[run.i0].pos, n_pos = first_pos + (run.heads ? 1 : run.n_q);
    const int64_t stride = run.heads ? hd : hp->n_embd; /* between queries, and outputs */
    const float *q = t->f->q + (int64_t)run.i0 * hp->n_embd + (int64_t)run.h0 * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const bool by_dimension = llamad_kvcache_keys_by_dimension(kv);

    for (int32_t p0 = 0; p0 < n_pos; p0 += bt) {
        const void *keys =
            llamad_kvcache_head(kv, llamad_kvcache_seq_block(kv, seq, p0), t->layer, 0, kvh);
        int32_t rows = n_pos - p0 < bt ? n_pos - p0 : bt;
        if (p0 + bt < n_pos)
            prefetch_head(kv, llamad_kvcache_seq_block(kv, seq, p0 + bt), t->layer, 0, kvh);
        ak->scores(q, stride, run.n_q, keys, by_dimension ? bt : hd, rows, hd, scale, scores + p0,
                   n_ctx);
    }
    for (int i = 0; i < run.n_q; i++) {
        float *row = scores + (int64_t)i * n_ctx;
        const int32_t own = first_pos + (run.heads ? 0 : i) + 1;
        ak->softmax(row, own);
        memset(row + own, 0, (size_t)(n_pos - own) * sizeof(float));
    }

    float *out = t->f->att + (int64_t)run.i0 * hp->n_embd + (int64_t)run.h0 * hd;
    for (int i = 0; i < run.n_q; i++)
        memset(out + i * stride, 0, (size_t)hd * sizeof(float));
    for (int32_t p0 = 0; p0 < n_pos; p0 += bt) {
        const void *vals =
            llamad_kvcache_head(kv, llamad_kvcache_seq_block(kv, seq, p0), t->layer, 1, kvh);
        int32_t rows = n_pos - p0 < bt ? n_pos - p0 : bt;
        if (p0 + bt < n_pos)
            prefetch_head(kv, llamad_kvcache_seq_block(kv, seq, p0 + bt), t->layer, 1, kvh);
        ak->weighted_sum(scores + p0, n_ctx, run.n_q, vals, hd, rows, hd, out, stride);
    }
}

/* How many entries from i0 on, before `end`, continue i0's sequence at
 * consecutive positions. */
static int32_t run_length(const struct llamad_batch_entry *batch, int32_t i0, int32_t end)
{
    int32_t n = 1;
    while (i0 + n < end && batch[i0 + n].seq == batch[i0].seq &&
           batch[i0 + n].pos == batch[i0].pos + n)
        n++;
    return n;
}

/* Decoding entries (runs of one) are grouped by this many: eight to a group
 * made 8 sequences decoding at depth 512 10 % slower (llamad-bench -b 8, 110M
 * Q8_0: 633-646 against 575-577 tokens/s), each job then reading one head's
 * part of every sequence's rows, which the other thread also fetched. */
enum { DECODE_GROUP = 4 };

/* Splits the chunk into the attention's groups of entries: up to
 * LLAMAD_ATTENTION_QUERIES consecutive positions of one sequence (a prompt's),
 * whose queries share every cache row they read, or up to DECODE_GROUP runs of
 * one entry. Returns the count of groups; start[g] is group g's first entry, and
 * start[count] = n. */
static int32_t attention_groups(const struct llamad_batch_entry *batch, int32_t n, int32_t *start)
{
    int32_t g = 0;
    for (int32_t i = 0; i < n;) {
        start[g++] = i;
        const int32_t limit = n - i < LLAMAD_ATTENTION_QUERIES ? n : i + LLAMAD_ATTENTION_QUERIES;
        const int32_t run = run_length(batch, i, limit);
        if (run > 1) {
            i += run;
            continue;
        }
        /* a run of one: so may the entries after it be */
        for (int32_t singles = 1; ++i < n && singles < DECODE_GROUP; singles++)
            if (run_length(batch, i, i + 2 < n ? i + 2 : n) > 1)
                break;
    }
    start[g] = n;
    return g;
}

/* Query heads taken together by a decoding entry: the most, up to
 * LLAMAD_ATTENTION_QUERIES, that divide the heads sharing a KV head. */
static int32_t heads_per_job(const struct llamad_hparams *hp)
{
    const int32_t group = hp->n_head / hp->n_head_kv;
    int32_t c = group < LLAMAD_ATTENTION_QUERIES ? group : LLAMAD_ATTENTION_QUERIES;
    while (group % c != 0)
        c--;
    return c;
}

/* Jobs (a few query heads of one KV head, one group of entries) are dealt out
 * in turn: a prompt's later entries attend to more positions, so contiguous
 * shares would leave the last thread most of the work. Head-major order keeps
 * one head's cached rows (a fraction of the layer's) in cache while every entry
 * reads them. A prompt's group takes the job's heads one at a time, each for all
 * its positions; a decoding entry takes them all at once, so heads that share a
 * KV head read its rows once.
 * Decoding is bound by memory: 8 sequences at depth 1024 (llamad-bench -d 1024
 * -b 8, 110M Q8_0, F16 cache) read 302 MB of cache and 116 MB of weights a
 * step, which the 29 GB/s two threads read from DRAM cannot bring in under
 * 14.4 ms (556 tokens/s); this order takes 18-20 ms (390-420). Jobs of 6 or 12
 * heads of one entry (a block's rows of them contiguous), jobs that walk four
 * entries' blocks side by side, and prefetching 2 or 3 blocks ahead were no
 * faster: 19-21 ms, in alternating runs. */
static void attention_worker(void *ctx, int ith, int nth)
{
    const struct attention_task *t = ctx;
    const struct llamad_forward *f = t->f;
    const int32_t per_job = heads_per_job(&f->m->hp);
    const int32_t head_jobs = f->m->hp.n_head / per_job;
    const int32_t groups = f->n_groups;
    float *scores = f->scores + (int64_t)ith * LLAMAD_ATTENTION_QUERIES * f->p.n_ctx;
    for (int64_t job = ith; job < (int64_t)groups * head_jobs; job += nth) {
        const int32_t h0 = (int32_t)(job / groups) * per_job;
        const int32_t start = f->group_start[job % groups];
        const int32_t end = f->group_start[job % groups + 1];
        if (end - start > 1 && run_length(t->batch, start, end) == end - start) {
            for (int32_t h = h0; h < h0 + per_job; h++)
                attend(t, (struct query_run){start, h, end - start, false}, scores);
            continue;
        }
        for (int32_t i = start; i < end; i++)
            attend(t, (struct query_run){i, h0, per_job, true}, scores);
    }
}

/* A head's keys of token t of a block laid out by dimension: value d goes to
 * d * block_tokens + t, as a float or rounded to a half (a piece at a time, so
 * the rounding runs on whole vectors). */
static void store_key_by_dimension(const struct llamad_kvcache *kv, void *head, int32_t t,
                                   const float *src)
{
    enum { PIECE = 64 };
    const int32_t bt = kv->p.block_tokens;
    if (kv->p.type != LLAMAD_TYPE_F16) {
        for (int32_t d = 0; d < kv->head_dim; d++)
            ((float *)head)[d * bt + t] = src[d];
        return;
    }
    uint16_t half[PIECE];
    for (int32_t d0 = 0; d0 < kv->head_dim; d0 += PIECE) {
        const int32_t n = kv->head_dim - d0 < PIECE ? kv->head_dim - d0 : PIECE;
        llamad_f32_to_f16_row(src + d0, half, n);
        for (int32_t d = 0; d < n; d++)
            ((uint16_t *)head)[(d0 + d) * bt + t] = half[d];
    }
}

/* A head's head_dim floats into its cache row: as floats, rounded to halves or
 * quantized to Q8_0 blocks. */
static void store_head(const struct llamad_kvcache *kv, void *dst, const float *src)
{
    if (kv->p.type == LLAMAD_TYPE_F16)
        llamad_f32_to_f16_row(src, dst, kv->head_dim);
    else if (kv->p.type == LLAMAD_TYPE_Q8_0)
        llamad_quantize_q8_0_row(src, dst, kv->head_dim);
    else
        memcpy(dst, src, (size_t)kv->head_dim * sizeof(float));
}

/* The steps between the matrix products, each a function of one entry's row:
 * on every thread from 8 entries on, else on the calling thread. With them on
 * the calling thread alone, the other threads waited through them: 110M Q8_0
 * pp512 3,912-3,935 -> 4,609-4,653 tokens/s, 8 sequences decoding at depth 64
 * 1,774-1,879 -> 1,994-2,049; no gain at 4. */
enum { PARALLEL_ROWS_MIN = 8 };

struct row_task {
    struct llamad_forward *f;
    const struct llamad_kvcache *kv;
    const struct llamad_batch_entry *batch;
    int32_t n, layer;
    const float *norm; /* the RMSNorm weights of a norm step */
    void (*step)(const struct row_task *t, int32_t i);
};

static void row_worker(void *ctx, int ith, int nth)
{
    const struct row_task *t = ctx;
    int64_t begin, end;
    llamad_split_range(t->n, ith, nth, &begin, &end);
    for (int64_t i = begin; i < end; i++)
        t->step(t, (int32_t)i);
}

static void for_each_row(struct row_task *t, void (*step)(const struct row_task *, int32_t),
                         const float *norm)
{
    t->step = step;
    t->norm = norm;
    if (t->n < PARALLEL_ROWS_MIN)
        row_worker(t, 0, 1);
    else
        llamad_threadpool_run(t->f->pool, row_worker, t);
}

/* RoPE on entry i's query and key, then its key and value into the cache. */
static void store_kv_row(const struct row_task *t, int32_t i)
{
    const struct llamad_forward *f = t->f;
    const struct llamad_kvcache *kv = t->kv;
    const struct llamad_hparams *hp = &f->m->hp;
    const struct llamad_batch_entry *e = &t->batch[i];
    float *q = f->q + (int64_t)i * hp->n_embd;
    float *k = f->k + (int64_t)i * kv->kv_dim;
    const float *cs = f->rope + (int64_t)i * hp->n_rot;
    llamad_rope(q, hp->n_head, hp->head_dim, hp->n_rot, cs);
    llamad_rope(k, hp->n_head_kv, hp->head_dim, hp->n_rot, cs);
    const int32_t block = llamad_kvcache_seq_block(kv, e->seq, e->pos);
    const int32_t row = llamad_kvcache_block_row(kv, e->pos);
    const float *v = f->v + (int64_t)i * kv->kv_dim;
    const bool by_dimension = llamad_kvcache_keys_by_dimension(kv);
    for (int32_t h = 0; h < hp->n_head_kv; h++) {
        const int64_t at = (int64_t)h * hp->head_dim;
        if (by_dimension)
            store_key_by_dimension(kv, llamad_kvcache_head(kv, block, t->layer, 0, h), row, k + at);
        else
            store_head(kv, llamad_kvcache_head_row(kv, block, t->layer, 0, h, row), k + at);
        store_head(kv, llamad_kvcache_head_row(kv, block, t->layer, 1, h, row), v + at);
    }
}

/* xb = RMSNorm(x) of entry i: the input of a sub-layer. */
static void norm_row(const struct row_task *t, int32_t i)
{
    const struct llamad_hparams *hp = &t->f->m->hp;
    const int64_t at = (int64_t)i * hp->n_embd;
    llamad_rmsnorm(t->f->xb + at, t->f->x + at, t->norm, hp->n_embd, hp->rms_eps);
}

/* x += proj: a sub-layer's output into the residual stream. */
static void add_row(const struct row_task *t, int32_t i)
{
    const int64_t width = t->f->m->hp.n_embd;
    float *x = t->f->x + i * width;
    const float *y = t->f->proj + i * width;
    for (int64_t j = 0; j < width; j++)
        x[j] += y[j];
}

/* The attention's output into the residual stream, then the feed-forward's input. */
static void add_norm_row(const struct row_task *t, int32_t i)
{
    add_row(t, i);
    norm_row(t, i);
}

/* ffn_a = silu(gate) * up of entry i. */
static void silu_mul_row(const struct row_task *t, int32_t i)
{
    const int64_t width = t->f->m->hp.n_ff;
    llamad_silu_mul(t->f->ffn_a + i * width, t->f->ffn_b + i * width, width);
}

static void run_layer(struct llamad_forward *f, struct llamad_kvcache *kv,
                      const struct llamad_batch_entry *batch, int32_t n, int32_t il)
{
    const struct llamad_layer *L = &f->m->layers[il];
    struct row_task rows = {.f = f, .kv = kv, .batch = batch, .n = n, .layer = il};

    for_each_row(&rows, norm_row, L->attn_norm);
    struct llamad_matmul_out qkv[] = {{&L->wq, f->q}, {&L->wk, f->k}, {&L->wv, f->v}};
    llamad_dispatch_matmul(f->pool, f->mm, f->xb, n, qkv, 3);
    for_each_row(&rows, store_kv_row, NULL);

    struct attention_task at = {f, kv, batch, n, il};
    llamad_threadpool_run(f->pool, attention_worker, &at);
    struct llamad_matmul_out wo[] = {{&L->wo, f->proj}};
    llamad_dispatch_matmul(f->pool, f->mm, f->att, n, wo, 1);
    for_each_row(&rows, add_norm_row, L->ffn_norm);

    struct llamad_matmul_out gate_up[] = {{&L->w_gate, f->ffn_a}, {&L->w_up, f->ffn_b}};
    llamad_dispatch_matmul(f->pool, f->mm, f->xb, n, gate_up, 2);
    for_each_row(&rows, silu_mul_row, NULL);
    struct llamad_matmul_out down[] = {{&L->w_down, f->proj}};
    llamad_dispatch_matmul(f->pool, f->mm, f->ffn_a, n, down, 1);
    for_each_row(&rows, add_row, NULL);
}

/* Final norm and output projection for the entries that want logits; returns how
 * many rows it wrote. */
static int32_t compute_logits(struct llamad_forward *f, const struct llamad_batch_entry *batch,
                              int32_t n, float *logits)
{
    const struct llamad_hparams *hp = &f->m->hp;
    int32_t n_out = 0;
    for (int32_t i = 0; i < n; i++)
        if (batch[i].logits)
            llamad_rmsnorm(f->xb + (int64_t)n_out++ * hp->n_embd, f->x + (int64_t)i * hp->n_embd,
                           f->m->output_norm, hp->n_embd, hp->rms_eps);
    if (n_out > 0) {
        struct llamad_matmul_out out[] = {{&f->m->output, logits}};
        llamad_dispatch_matmul(f->pool, f->mm, f->xb, n_out, out, 1);
    }
    return n_out;
}

static void run_chunk(struct llamad_forward *f, struct llamad_kvcache *kv,
                      const struct llamad_batch_entry *batch, int32_t n, float *logits,
                      int32_t *n_logits)
{
    const struct llamad_model *m = f->m;
    const struct llamad_weight *emb = &m->tok_embd;
    for (int32_t i = 0; i < n; i++)
        emb->kernels->dequantize_row(emb->data + (size_t)batch[i].token * emb->row_bytes,
                                     f->x + (int64_t)i * m->hp.n_embd, m->hp.n_embd);
    for (int32_t i = 0; i < n; i++)
        llamad_rope_angles(f->rope + (int64_t)i * m->hp.n_rot, m->hp.n_rot, batch[i].pos,
                           m->hp.rope_base, m->rope_factors);
    f->n_groups = attention_groups(batch, n, f->group_start);
    for (int32_t il = 0; il < m->hp.n_layer; il++)
        run_layer(f, kv, batch, n, il);
    for (int32_t i = 0; i < n; i++)
        llamad_kvcache_seq_computed(kv, batch[i].seq, batch[i].pos, batch[i].token);
    *n_logits += compute_logits(f, batch, n, logits + (int64_t)*n_logits * m->hp.n_vocab);
}

int llamad_forward(struct llamad_forward *f, struct llamad_kvcache *kv,
                   const struct llamad_batch_entry *batch, int32_t n, float *logits, char *err,
                   size_t errsz)
{
    return llamad_forward_passes(f, kv, batch, n, 0, 0, logits, NULL, err, errsz);
}

int llamad_forward_passes(struct llamad_forward *f, struct llamad_kvcache *kv,
                          const struct llamad_batch_entry *batch, int32_t n, int32_t first,
                          int32_t rest, float *logits, int32_t *passes, char *err, size_t errsz)
{
    if (n < 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "negative batch size");
    if (!llamad_kvcache_made_for(kv, &f->m->hp))
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "the KV cache was made for another model");
    int rc = check_batch(f, kv, batch, n, err, errsz);
    if (rc)
        return rc;
    const int32_t most = f->p.max_batch;
    first = first > 0 && first < most ? first : most;
    rest = rest > 0 && rest < most ? rest : most;
    int32_t n_logits = 0, count = 0;
    for (int32_t at = 0; at < n; count++) {
        const int32_t size = count == 0 ? first : rest;
        const int32_t chunk = n - at < size ? n - at : size;
        run_chunk(f, kv, batch + at, chunk, logits, &n_logits);
        at += chunk;
    }
    if (passes)
        *passes = count;
    return LLAMAD_OK;
}
