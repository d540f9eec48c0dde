/* The engine end to end on the bundled model: greedy output equal to the
 * reference, several requests at once each getting what it gets alone, stop
 * strings, cancellation, back-pressure, logprobs, one forward pass per step
 * (prompts arriving while others decode: passes of at most pass_tokens),
 * KV cache reuse (sessions, shared prefixes) that changes nothing but the work,
 * and the KV budget (waiting for room, refusing what can never fit). */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/engine/engine.h"
#include "llamad/model/kvcache.h"
#include "llamad/model/model.h"
#include "llamad/tokenizer/tokenizer.h"
#include "testutil.h"

/* Collects a request's events as the engine notifies. */
struct collector {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    int notifications;
};

static void on_notify(void *ctx, struct llamad_outbox *o)
{
    (void)o;
    struct collector *c = ctx;
    pthread_mutex_lock(&c->mutex);
    c->notifications++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->mutex);
}

struct result {
    struct llamad_buf text;
    int n_tokens;
    struct llamad_event *done;
    struct llamad_event *tokens; /* kept when asked */
};

/* Gathers o's events into r until it holds `tokens` tokens or the DONE event. */
static void gather(struct collector *c, struct llamad_outbox *o, struct result *r, bool keep,
                   int tokens)
{
    struct llamad_event **tail = &r->tokens;
    while (*tail)
        tail = &(*tail)->next;
    while (!r->done && r->n_tokens < tokens) {
        pthread_mutex_lock(&c->mutex);
        struct llamad_event *list = llamad_outbox_take(o);
        if (!list)
            pthread_cond_wait(&c->changed, &c->mutex);
        pthread_mutex_unlock(&c->mutex);
        while (list) {
            struct llamad_event *e = list;
            list = e->next;
            e->next = NULL;
            llamad_buf_append(&r->text, e->text, e->text_len);
            if (e->kind == LLAMAD_EVENT_DONE) {
                r->done = e;
            } else {
                r->n_tokens++;
                if (keep) {
                    *tail = e;
                    tail = &e->next;
                } else {
                    llamad_event_free(e);
                }
            }
        }
    }
}

/* Waits for the DONE event of o, gathering text. */
static void wait_done(struct collector *c, struct llamad_outbox *o, struct result *r, bool keep)
{
    gather(c, o, r, keep, INT_MAX);
}

static void free_result(struct result *r)
{
    llamad_buf_free(&r->text);
    llamad_event_free(r->done);
    llamad_event_free(r->tokens);
}

struct fixture {
    struct llamad_model *m;
    struct collector c;
    struct llamad_engine *e;
};

static struct llamad_engine_params params(int32_t max_active, int32_t max_queued)
{
    return (struct llamad_engine_params){.n_threads = 2,
                                         .n_ctx = 256,
                                         .max_active = max_active,
                                         .max_queued = max_queued,
                                         .step_tokens = 64};
}

static void start(struct fixture *fx, struct llamad_engine_params p)
{
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_engine_start(fx->m, &p, on_notify, &fx->c, &fx->e, err, sizeof err),
                     LLAMAD_OK);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    fx->m = test_load_bundled_model();
    pthread_mutex_init(&fx->c.mutex, NULL);
    pthread_cond_init(&fx->c.changed, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    llamad_engine_free(fx->e);
    llamad_model_free(fx->m);
    pthread_mutex_destroy(&fx->c.mutex);
    pthread_cond_destroy(&fx->c.changed);
    free(fx);
    return 0;
}

/* A greedy request for given token ids. */
static struct llamad_gen_request greedy_ids(const int32_t *ids, int32_t n, int32_t max_tokens,
                                            const char *session)
{
    struct llamad_gen_request r = {0};
    r.prompt = malloc((size_t)n * sizeof(int32_t));
    memcpy(r.prompt, ids, (size_t)n * sizeof(int32_t));
    r.n_prompt = n;
    r.max_tokens = max_tokens;
    r.sampling = (struct llamad_sampling){
        .temperature = 0.0f, .top_p = 1.0f, .repeat_penalty = 1.0f, .penalty_last_n = 64};
    snprintf(r.session_id, sizeof r.session_id, "%s", session);
    return r;
}

static int32_t tokenize(const struct llamad_model *m, const char *text, bool bos, int32_t *out,
                        int32_t cap)
{
    return (int32_t)llamad_tokenize(m->tokenizer, text, strlen(text), bos, out, (size_t)cap);
}

static struct llamad_gen_request greedy(const struct llamad_model *m, const char *prompt,
                                        int32_t max_tokens)
{
    int32_t ids[512];
    return greedy_ids(ids, tokenize(m, prompt, true, ids, 512), max_tokens, "");
}

static void set_stop(struct llamad_gen_request *r, const char *stop)
{
    r->stops = malloc(sizeof(char *));
    r->stop_lens = malloc(sizeof(size_t));
    r->stops[0] = strdup(stop);
    r->stop_lens[0] = strlen(stop);
    r->n_stops = 1;
}

static void run_one(struct fixture *fx, struct llamad_gen_request *r, struct result *res, bool keep)
{
    char err[LLAMAD_ERR_MAX];
    struct llamad_outbox *o = llamad_outbox_new(NULL);
    assert_int_equal(llamad_engine_submit(fx->e, r, o, err, sizeof err), LLAMAD_OK);
    wait_done(&fx->c, o, res, keep);
    llamad_outbox_release(o);
}

static void test_greedy_matches_reference(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(4, 8));
    struct llamad_gen_request r = greedy(fx->m, "Once upon a time", 64);
    struct result res = {0};
    run_one(fx, &r, &res, false);
    assert_string_equal(res.text.data,
                        ", there was a little girl named Lily. She loved to play outside in the "
                        "park. One day, she saw a big, red ball. She wanted to play with it, but "
                        "it was too high.\nLily's mom said");
    assert_int_equal(res.done->finish, LLAMAD_FINISH_LENGTH);
    assert_int_equal(res.done->usage.prompt_tokens, 5);
    assert_int_equal(res.done->usage.completion_tokens, 64);
    assert_int_equal(res.n_tokens, 64);
    free_result(&res);
}

/* Each prompt run alone, then all at once on a fresh engine (nothing cached):
 * the same greedy text. */
static void expect_together_match_alone(struct fixture *fx, struct llamad_engine_params p,
                                        const char *const *prompts, int n, int32_t max_tokens)
{
    start(fx, p);
    struct result *alone = calloc((size_t)n, sizeof(*alone));
    struct result *together = calloc((size_t)n, sizeof(*together));
    struct llamad_outbox **o = calloc((size_t)n, sizeof(*o));
    for (int i = 0; i < n; i++) {
        struct llamad_gen_request r = greedy(fx->m, prompts[i], max_tokens);
        run_one(fx, &r, &alone[i], false);
    }
    llamad_engine_free(fx->e);
    start(fx, p);
    char err[LLAMAD_ERR_MAX];
    for (int i = 0; i < n; i++) {
        struct llamad_gen_request r = greedy(fx->m, prompts[i], max_tokens);
        o[i] = llamad_outbox_new(NULL);
        assert_int_equal(llamad_engine_submit(fx->e, &r, o[i], err, sizeof err), LLAMAD_OK);
    }
    for (int i = 0; i < n; i++) {
        wait_done(&fx->c, o[i], &together[i], false);
        assert_string_equal(together[i].text.data, alone[i].text.data);
        llamad_outbox_release(o[i]);
        free_result(&alone[i]);
        free_result(&together[i]);
    }
    free(alone);
    free(together);
    free(o);
}

static void test_concurrent_requests_match_alone(void **state)
{
    const char *prompts[] = {"Once upon a time", "Lily and Tom went to the park.",
                             "The sun was hot.", "One day, a girl named Sue", "The dog"};
    /* 5 requests, 4 slots: one waits in the queue */
    expect_together_match_alone(*state, params(4, 8), prompts, 5, 40);
}

/* The same with an F16 cache: rounding to halves is the same alone or batched. */
static void test_f16_cache_together_match_alone(void **state)
{
    const char *prompts[] = {"Once upon a time", "Lily and Tom went to the park.",
                             "The sun was hot.", "One day, a girl named Sue", "The dog"};
    struct llamad_engine_params p = params(4, 8);
    p.kv_type = LLAMAD_TYPE_F16;
    expect_together_match_alone(*state, p, prompts, 5, 40);
}

static void test_stop_string(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(2, 2));
    struct llamad_gen_request r = greedy(fx->m, "Once upon a time", 64);
    set_stop(&r, " girl named");
    struct result res = {0};
    run_one(fx, &r, &res, false);
    assert_string_equal(res.text.data, ", there was a little");
    assert_int_equal(res.done->finish, LLAMAD_FINISH_STOP);
    free_result(&res);
}

/* A stop string's beginning is held back, then released at the end when the
 * generation stops for length before it can complete. */
static void test_held_back_text_released_at_end(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(2, 2));
    struct llamad_gen_request r = greedy(fx->m, "Once upon a time", 3);
    set_stop(&r, " was a girl"); /* the text goes on " was a little" */
    struct result res = {0};
    run_one(fx, &r, &res, true);
    assert_string_equal(res.text.data, ", there was");
    assert_string_equal(res.done->text, " was"); /* held until the end */
    assert_int_equal(res.done->finish, LLAMAD_FINISH_LENGTH);
    free_result(&res);
}

static void test_cancel_while_running_and_queued(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(1, 4));
    char err[LLAMAD_ERR_MAX];
    struct llamad_gen_request a = greedy(fx->m, "Once upon a time", 200);
    struct llamad_gen_request b = greedy(fx->m, "The dog", 200);
    a.sampling.penalty_last_n = 0;
    a.ignore_eos = b.ignore_eos = true;
    struct llamad_outbox *oa = llamad_outbox_new(NULL), *ob = llamad_outbox_new(NULL);
    assert_int_equal(llamad_engine_submit(fx->e, &a, oa, err, sizeof err), LLAMAD_OK);
    assert_int_equal(llamad_engine_submit(fx->e, &b, ob, err, sizeof err), LLAMAD_OK);
    llamad_engine_cancel(fx->e, ob); /* still queued behind a */
    llamad_engine_cancel(fx->e, oa);
    struct result ra = {0}, rb = {0};
    wait_done(&fx->c, oa, &ra, false);
    wait_done(&fx->c, ob, &rb, false);
    assert_int_equal(ra.done->finish, LLAMAD_FINISH_CANCELLED);
    assert_int_equal(rb.done->finish, LLAMAD_FINISH_CANCELLED);
    assert_true(ra.n_tokens < 200);
    assert_int_equal(rb.n_tokens, 0);
    llamad_outbox_release(oa);
    llamad_outbox_release(ob);
    free_result(&ra);
    free_result(&rb);
}

/* Submits three requests to an engine of one slot and one place in its queue:
 * two are taken (one running or about to, one waiting) and the third refused
 * as busy. Returns false, having checked why, when the first had already run
 * to its end before the third came, which leaves room: a test thread
 * descheduled that long on a loaded machine (CI's 2 cores). */
static bool third_is_refused(struct fixture *fx)
{
    char err[LLAMAD_ERR_MAX];
    struct llamad_outbox *o[3];
    bool taken[3];
    int accepted = 0, busy = 0;
    for (int i = 0; i < 3; i++) {
        struct llamad_gen_request r = greedy(fx->m, "Once upon a time", 200);
        r.ignore_eos = true;
        o[i] = llamad_outbox_new(NULL);
        int rc = llamad_engine_submit(fx->e, &r, o[i], err, sizeof err);
        taken[i] = rc == LLAMAD_OK;
        if (taken[i])
            accepted++;
        else {
            assert_int_equal(rc, LLAMAD_ERANGE);
            assert_non_null(strstr(err, "busy"));
            busy++;
            llamad_gen_request_clear(&r);
        }
    }
    bool first_ran_out = false;
    for (int i = 0; i < 3; i++) {
        llamad_engine_cancel(fx->e, o[i]);
        if (taken[i]) {
            struct result res = {0};
            wait_done(&fx->c, o[i], &res, false);
            if (i == 0)
                first_ran_out = res.done->finish == LLAMAD_FINISH_LENGTH;
            free_result(&res);
        }
        llamad_outbox_release(o[i]);
    }
    if (accepted == 3) {
        assert_true(first_ran_out); /* else the engine took more than it holds */
        return false;
    }
    assert_int_equal(accepted, 2);
    assert_int_equal(busy, 1);
    return true;
}

static void test_back_pressure_and_context(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(1, 1));
    char err[LLAMAD_ERR_MAX];
    int attempts = 1;
    while (!third_is_refused(fx))
        assert_true(++attempts <= 5);

    struct llamad_gen_request big = greedy(fx->m, "x", 1);
    free(big.prompt);
    big.n_prompt = 256;
    big.prompt = calloc(256, sizeof(int32_t));
    struct llamad_outbox *ob = llamad_outbox_new(NULL);
    assert_int_equal(llamad_engine_submit(fx->e, &big, ob, err, sizeof err), LLAMAD_EINVAL);
    assert_non_null(strstr(err, "context"));
    llamad_gen_request_clear(&big);
    llamad_outbox_release(ob);
}

static void test_logprobs(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(2, 2));
    struct llamad_gen_request r = greedy(fx->m, "Once upon a time", 8);
    r.logprobs = true;
    r.top_logprobs = 5;
    struct result res = {0};
    run_one(fx, &r, &res, true);
    int n = 0;
    for (struct llamad_event *e = res.tokens; e; e = e->next, n++) {
        assert_int_equal(e->n_top, 5);
        assert_int_equal(e->top[0].token, e->token); /* greedy picks the most likely */
        assert_float_equal(e->top[0].logprob, e->logprob, 0.0);
        assert_true(e->logprob <= 0.0f);
        for (int k = 1; k < 5; k++)
            assert_true(e->top[k - 1].logprob >= e->top[k].logprob);
    }
    assert_int_equal(n, 8);
    free_result(&res);
}

/* Submits every prompt at once (ignoring end-of-sequence) and checks each
 * generates max_tokens. */
static void run_all_to_length(struct fixture *fx, const char *const *prompts, int n,
                              int32_t max_tokens)
{
    char err[LLAMAD_ERR_MAX];
    struct llamad_outbox *o[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        struct llamad_gen_request r = greedy(fx->m, prompts[i], max_tokens);
        r.ignore_eos = true;
        o[i] = llamad_outbox_new(NULL);
        assert_int_equal(llamad_engine_submit(fx->e, &r, o[i], err, sizeof err), LLAMAD_OK);
    }
    for (int i = 0; i < n; i++) {
        struct result res = {0};
        wait_done(&fx->c, o[i], &res, false);
        assert_int_equal(res.done->finish, LLAMAD_FINISH_LENGTH);
        assert_int_equal(res.n_tokens, max_tokens);
        free_result(&res);
        llamad_outbox_release(o[i]);
    }
}

/* Four sequences decoding together advance with one forward pass per step, even
 * when passes are to hold one token: the decoding tokens never split. */
static void test_one_forward_pass_per_step(void **state)
{
    struct fixture *fx = *state;
    struct llamad_engine_params p = params(4, 4);
    p.pass_tokens = 1;
    start(fx, p);
    const char *prompts[] = {"The cat", "The dog", "A bird", "Tom"};
    run_all_to_length(fx, prompts, 4, 50);
    struct llamad_engine_stats st;
    llamad_engine_stats(fx->e, &st);
    assert_int_equal(st.generated_tokens, 200);
    /* A step is one pass, plus one more per prompt token it carries beside the
     * decoding ones (passes of one token): whenever the four arrive, the decoding
     * tokens of a step never split. */
    assert_true(st.forward_passes - st.steps <= st.prompt_tokens_computed);
    print_message("200 tokens of 4 streams in %llu steps, %llu forward passes\n",
                  (unsigned long long)st.steps, (unsigned long long)st.forward_passes);
}

/* A prompt that arrives while another sequence decodes goes through in passes of
 * at most pass_tokens, the decoding token in the first; the other steps are one
 * pass each. Its answer is the one it gets alone. */
static void test_prompt_passes_while_decoding(void **state)
{
    struct fixture *fx = *state;
    struct llamad_engine_params p = params(2, 2);
    p.pass_tokens = 8;
    const char *later = "Once upon a time, there was a little girl named Lily. She loved to "
                        "play outside in the park with her friends.";
    start(fx, p);
    struct llamad_gen_request r = greedy(fx->m, later, 10);
    struct result alone = {0};
    run_one(fx, &r, &alone, false);
    llamad_engine_free(fx->e);

    start(fx, p);
    char err[LLAMAD_ERR_MAX];
    /* long enough to be decoding whenever the second arrives; cancelled after it */
    struct llamad_gen_request first = greedy(fx->m, "The cat", 400);
    first.ignore_eos = true;
    struct llamad_outbox *o_first = llamad_outbox_new(NULL), *o_later = llamad_outbox_new(NULL);
    assert_int_equal(llamad_engine_submit(fx->e, &first, o_first, err, sizeof err), LLAMAD_OK);
    struct result res_first = {0}, res_later = {0};
    gather(&fx->c, o_first, &res_first, false, 1); /* decoding now */
    r = greedy(fx->m, later, 10);
    assert_int_equal(llamad_engine_submit(fx->e, &r, o_later, err, sizeof err), LLAMAD_OK);
    wait_done(&fx->c, o_later, &res_later, false);
    llamad_engine_cancel(fx->e, o_first);
    wait_done(&fx->c, o_first, &res_first, false);
    assert_int_equal(res_first.done->finish, LLAMAD_FINISH_CANCELLED);

    struct llamad_engine_stats st;
    llamad_engine_stats(fx->e, &st);
    const int32_t prompt = res_later.done->usage.prompt_tokens;
    assert_true(prompt > 16 && prompt < 64); /* one step's budget, several passes */
    assert_int_equal(st.prompt_tokens_computed,
                     (uint64_t)(res_first.done->usage.prompt_tokens + prompt));
    /* the step that took the prompt: the decoding token and the prompt in passes of 8 */
    assert_int_equal(st.forward_passes - st.steps, (uint64_t)((prompt + 1 + 7) / 8 - 1));
    assert_string_equal(res_later.text.data, alone.text.data);
    free_result(&alone);
    free_result(&res_first);
    free_result(&res_later);
    llamad_outbox_release(o_first);
    llamad_outbox_release(o_later);
}

/* Runs ids greedily; the generated ids go to gen (when not NULL). */
static struct result run_ids(struct fixture *fx, const int32_t *ids, int32_t n, int32_t max_tokens,
                             const char *session, int32_t *gen)
{
    struct llamad_gen_request r = greedy_ids(ids, n, max_tokens, session);
    r.ignore_eos = true;
    struct result res = {0};
    run_one(fx, &r, &res, true);
    int k = 0;
    for (struct llamad_event *e = res.tokens; e; e = e->next)
        if (gen)
            gen[k++] = e->token;
    return res;
}

static uint64_t computed_so_far(struct fixture *fx)
{
    struct llamad_engine_stats st;
    llamad_engine_stats(fx->e, &st);
    return st.prompt_tokens_computed;
}

/* A chat turn: the session's second request repeats the first prompt and its
 * answer, then says something new; only the new tokens (and the first answer's
 * last token, which was never fed) are computed, and the answer is the one the
 * same prompt gets with nothing cached. */
static void test_session_second_turn_computes_only_new_tokens(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(4, 4));
    int32_t turn[256], n1 = tokenize(fx->m, "Lily and Tom went to the park.", true, turn, 256);
    struct result first = run_ids(fx, turn, n1, 30, "chat-7", turn + n1);
    assert_int_equal(first.done->usage.cached_tokens, 0);
    int32_t n2 = n1 + 30;
    n2 += tokenize(fx->m, " Then they saw a big dog.", false, turn + n2, 256 - n2);

    uint64_t before = computed_so_far(fx);
    struct result second = run_ids(fx, turn, n2, 20, "chat-7", NULL);
    assert_int_equal(second.done->usage.prompt_tokens, n2);
    assert_int_equal(second.done->usage.cached_tokens, n1 + 29);
    assert_int_equal(computed_so_far(fx) - before, (uint64_t)(n2 - n1 - 29));

    llamad_engine_free(fx->e);
    start(fx, params(4, 4));
    struct result fresh = run_ids(fx, turn, n2, 20, "", NULL);
    assert_int_equal(fresh.done->usage.cached_tokens, 0);
    assert_string_equal(second.text.data, fresh.text.data);
    free_result(&first);
    free_result(&second);
    free_result(&fresh);
}

/* max_tokens 0 (llama.cpp's n_predict 0) computes the prompt into the session's
 * cache and generates nothing; the session's next request finds it all there. */
static void test_prompt_only(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(4, 4));
    int32_t ids[256], n = tokenize(fx->m, "Lily and Tom went to the park.", true, ids, 256);
    struct result warm = run_ids(fx, ids, n, 0, "warm", NULL);
    assert_int_equal(warm.n_tokens, 0);
    assert_int_equal(warm.done->finish, LLAMAD_FINISH_LENGTH);
    assert_int_equal(warm.done->text_len, 0);
    assert_int_equal(warm.done->usage.prompt_tokens, n);
    assert_int_equal(warm.done->usage.completion_tokens, 0);
    n += tokenize(fx->m, " They saw a dog.", false, ids + n, 256 - n);
    struct result next = run_ids(fx, ids, n, 4, "warm", NULL);
    assert_int_equal(next.done->usage.cached_tokens, warm.done->usage.prompt_tokens);
    assert_int_equal(next.n_tokens, 4);
    free_result(&warm);
    free_result(&next);
}

/* Requests without a session share the whole blocks of a common beginning
 * (a system prompt) with a cached sequence, and answer as if they had not. */
static void test_automatic_prefix_reuse(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(4, 4));
    const char *system = "You are a kind story teller. You tell short stories about animals, "
                         "children and the sun, with happy endings.";
    int32_t a[256], b[256], n_sys = tokenize(fx->m, system, true, a, 256);
    assert_true(n_sys >= 32);
    memcpy(b, a, (size_t)n_sys * sizeof(int32_t));
    int32_t na = n_sys + tokenize(fx->m, " Tell me about a cat.", false, a + n_sys, 256 - n_sys);
    int32_t nb = n_sys + tokenize(fx->m, " Tell me about a dog.", false, b + n_sys, 256 - n_sys);

    struct result alone = run_ids(fx, b, nb, 24, "", NULL); /* nothing cached yet */
    assert_int_equal(alone.done->usage.cached_tokens, 0);
    llamad_engine_free(fx->e);
    start(fx, params(4, 4));
    struct result ra = run_ids(fx, a, na, 24, "", NULL);
    uint64_t before = computed_so_far(fx);
    struct result rb = run_ids(fx, b, nb, 24, "", NULL);
    int32_t common = 0;
    while (a[common] == b[common])
        common++;
    assert_int_equal(rb.done->usage.cached_tokens, common / 16 * 16);
    assert_true(rb.done->usage.cached_tokens >= 32);
    assert_int_equal(computed_so_far(fx) - before, (uint64_t)(nb - common / 16 * 16));
    assert_string_equal(rb.text.data, alone.text.data);

    struct llamad_engine_stats st;
    llamad_engine_stats(fx->e, &st);
    assert_int_equal(st.prompt_tokens_cached, (uint64_t)(common / 16 * 16));
    assert_int_equal(st.kv_seqs_idle, 2);
    assert_true(st.kv_blocks_reserved <= st.kv_blocks_total);
    assert_true(st.kv_blocks_used <= st.kv_blocks_reserved);
    free_result(&alone);
    free_result(&ra);
    free_result(&rb);
}

/* Sixteen greedy requests decoded together each get what they get alone. */
static void test_sixteen_together_match_alone(void **state)
{
    static const char *const subjects[] = {"cat",  "dog", "bird", "fish", "frog", "bear",
                                           "duck", "cow", "girl", "boy",  "king", "tree",
                                           "ball", "car", "sun",  "moon"};
    char text[16][64];
    const char *prompts[16];
    for (int i = 0; i < 16; i++) {
        snprintf(text[i], sizeof text[i], "Once upon a time there was a %s", subjects[i]);
        prompts[i] = text[i];
    }
    expect_together_match_alone(*state, params(16, 16), prompts, 16, 24);
}

/* A KV cache of 4 blocks (64 positions): a request needing more is refused at
 * once; two needing 3 blocks each run one after the other, the second waiting
 * in the queue, and both finish whole. Less than one block does not start. */
static void test_kv_budget(void **state)
{
    struct fixture *fx = *state;
    struct llamad_engine_params p = params(2, 4);
    p.kv_bytes = 4 * llamad_kvcache_block_bytes(&fx->m->hp, 16, LLAMAD_TYPE_F32);
    start(fx, p);
    char err[LLAMAD_ERR_MAX];
    struct llamad_gen_request big = greedy(fx->m, "Once upon a time", 60); /* 65 positions */
    struct llamad_outbox *ob = llamad_outbox_new(NULL);
    assert_int_equal(llamad_engine_submit(fx->e, &big, ob, err, sizeof err), LLAMAD_EUNSUPPORTED);
    assert_non_null(strstr(err, "holds 64"));
    llamad_gen_request_clear(&big);
    llamad_outbox_release(ob);

    const char *prompts[] = {"The cat", "The dog"};
    run_all_to_length(fx, prompts, 2, 40);
    struct llamad_engine_stats st;
    llamad_engine_stats(fx->e, &st);
    assert_int_equal(st.kv_blocks_total, 4);
    assert_int_equal(st.kv_seqs_idle, 1); /* the first one's cache made room for the second */

    struct llamad_engine *none = NULL;
    p.kv_bytes = llamad_kvcache_block_bytes(&fx->m->hp, 16, LLAMAD_TYPE_F32) - 1;
    assert_int_equal(llamad_engine_start(fx->m, &p, on_notify, &fx->c, &none, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_non_null(strstr(err, "holds 0 blocks"));
    assert_null(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greedy_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requests_match_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_f16_cache_together_match_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_back_text_released_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_running_and_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure_and_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logprobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_forward_pass_per_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prompt_passes_while_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_second_turn_computes_only_new_tokens, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prompt_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_automatic_prefix_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sixteen_together_match_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
