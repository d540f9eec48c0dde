/* The engine end to end on the bundled model: greedy output equal to the
 * reference, several requests at once each getting what it gets alone, stop
 * strings, cancellation, back-pressure, logprobs, one forward pass per step. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/engine.h"
#include "llamad/error.h"
#include "llamad/model.h"
#include "llamad/tokenizer.h"
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

/* Waits for the DONE event of o, gathering text. */
static void wait_done(struct collector *c, struct llamad_outbox *o, struct result *r, bool keep)
{
    struct llamad_event **tail = &r->tokens;
    while (!r->done) {
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
    return (struct llamad_engine_params){.n_threads = 2, .n_ctx = 256, .max_active = max_active,
                                         .max_queued = max_queued, .step_tokens = 64};
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
    llamad_engine_stop(fx->e);
    llamad_model_free(fx->m);
    pthread_mutex_destroy(&fx->c.mutex);
    pthread_cond_destroy(&fx->c.changed);
    free(fx);
    return 0;
}

static struct llamad_gen_request greedy(const struct llamad_model *m, const char *prompt,
                                        int32_t max_tokens)
{
    struct llamad_gen_request r = {0};
    int64_t n = llamad_tokenize(m->tokenizer, prompt, strlen(prompt), true, NULL, 0);
    r.prompt = malloc((size_t)n * sizeof(int32_t));
    r.n_prompt = (int32_t)llamad_tokenize(m->tokenizer, prompt, strlen(prompt), true, r.prompt,
                                          (size_t)n);
    r.max_tokens = max_tokens;
    r.sampling = (struct llamad_sampling){.temperature = 0.0f, .top_p = 1.0f,
                                          .repeat_penalty = 1.0f, .penalty_last_n = 64};
    return r;
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

static void test_concurrent_requests_match_alone(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(4, 8));
    const char *prompts[] = {"Once upon a time", "Lily and Tom went to the park.",
                             "The sun was hot.", "One day, a girl named Sue", "The dog"};
    enum { N = 5 };
    struct result alone[N] = {0}, together[N] = {0};
    for (int i = 0; i < N; i++) {
        struct llamad_gen_request r = greedy(fx->m, prompts[i], 40);
        run_one(fx, &r, &alone[i], false);
    }
    struct llamad_outbox *o[N];
    char err[LLAMAD_ERR_MAX];
    for (int i = 0; i < N; i++) { /* 5 requests, 4 slots: one waits in the queue */
        struct llamad_gen_request r = greedy(fx->m, prompts[i], 40);
        o[i] = llamad_outbox_new(NULL);
        assert_int_equal(llamad_engine_submit(fx->e, &r, o[i], err, sizeof err), LLAMAD_OK);
    }
    for (int i = 0; i < N; i++) {
        wait_done(&fx->c, o[i], &together[i], false);
        assert_string_equal(together[i].text.data, alone[i].text.data);
        llamad_outbox_release(o[i]);
        free_result(&alone[i]);
        free_result(&together[i]);
    }
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

static void test_back_pressure_and_context(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(1, 1));
    char err[LLAMAD_ERR_MAX];
    struct llamad_outbox *o[3];
    int accepted = 0, busy = 0;
    for (int i = 0; i < 3; i++) {
        struct llamad_gen_request r = greedy(fx->m, "Once upon a time", 100);
        r.ignore_eos = true;
        o[i] = llamad_outbox_new(NULL);
        int rc = llamad_engine_submit(fx->e, &r, o[i], err, sizeof err);
        if (rc == LLAMAD_OK)
            accepted++;
        else {
            assert_int_equal(rc, LLAMAD_ERANGE);
            assert_non_null(strstr(err, "busy"));
            busy++;
            llamad_gen_request_clear(&r);
        }
    }
    assert_int_equal(accepted, 2); /* one running (or about to), one waiting */
    assert_int_equal(busy, 1);
    for (int i = 0; i < 3; i++) {
        llamad_engine_cancel(fx->e, o[i]);
        if (i < 2) {
            struct result res = {0};
            wait_done(&fx->c, o[i], &res, false);
            free_result(&res);
        }
        llamad_outbox_release(o[i]);
    }

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

/* Four sequences decoding together advance with one forward pass per step. */
static void test_one_forward_pass_per_step(void **state)
{
    struct fixture *fx = *state;
    start(fx, params(4, 4));
    char err[LLAMAD_ERR_MAX];
    struct llamad_outbox *o[4];
    const char *prompts[] = {"The cat", "The dog", "A bird", "Tom"};
    for (int i = 0; i < 4; i++) {
        struct llamad_gen_request r = greedy(fx->m, prompts[i], 50);
        r.ignore_eos = true;
        o[i] = llamad_outbox_new(NULL);
        assert_int_equal(llamad_engine_submit(fx->e, &r, o[i], err, sizeof err), LLAMAD_OK);
    }
    for (int i = 0; i < 4; i++) {
        struct result res = {0};
        wait_done(&fx->c, o[i], &res, false);
        assert_int_equal(res.n_tokens, 50);
        free_result(&res);
        llamad_outbox_release(o[i]);
    }
    struct llamad_engine_stats st;
    llamad_engine_stats(fx->e, &st);
    assert_int_equal(st.generated_tokens, 200);
    /* 4 x 50 tokens: alone that is 200 passes; together about 50 (plus a few
     * while the four arrive at slightly different times). */
    assert_true(st.forward_passes < 80);
    print_message("200 tokens of 4 streams in %llu forward passes\n",
                  (unsigned long long)st.forward_passes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greedy_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requests_match_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_back_text_released_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_running_and_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure_and_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logprobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_forward_pass_per_step, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
