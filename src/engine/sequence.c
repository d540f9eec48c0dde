#include "sequence.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/model/sampler.h"

int sequence_init(struct sequence *s, const struct llamad_model *m, struct llamad_gen_request *req,
                  struct llamad_outbox *out, int32_t kv_seq, int32_t n_cached, double t_submit,
                  double t_admit)
{
    *s = (struct sequence){0};
    s->req = *req;
    *req = (struct llamad_gen_request){0};
    s->out = out;
    s->kv_seq = kv_seq;
    s->n_cached = n_cached;
    s->n_fed = n_cached;
    s->t_submit = t_submit;
    s->t_admit = t_admit;
    s->sampler = llamad_sampler_create(&s->req.sampling, m->hp.n_vocab);
    s->stop =
        llamad_stop_create((const char *const *)s->req.stops, s->req.stop_lens, s->req.n_stops);
    s->done = calloc(1, sizeof(*s->done));
    bool grammar_ok = true;
    if (s->req.grammar) {
        s->mask = malloc(((size_t)m->hp.n_vocab + 7) / 8);
        grammar_ok = s->mask && llamad_grammar_matcher_create(s->req.grammar, m->grammar_vocab,
                                                              &s->matcher) == LLAMAD_OK;
    }
    if (!s->sampler || !s->stop || !s->done || !grammar_ok) {
        llamad_sampler_free(s->sampler);
        llamad_stop_free(s->stop);
        llamad_grammar_matcher_free(s->matcher);
        free(s->mask);
        free(s->done);
        llamad_gen_request_clear(&s->req);
        return LLAMAD_ENOMEM;
    }
    for (int32_t i = 0; i < s->req.n_prompt; i++)
        llamad_sampler_accept(s->sampler, s->req.prompt[i]);
    llamad_detok_init(&s->detok, m->tokenizer, s->req.prompt[s->req.n_prompt - 1]);
    return LLAMAD_OK;
}

/* Log-probabilities of the model's own distribution (before any sampling
 * transform): the chosen token's and the top_n most likely. */
static int fill_logprobs(struct llamad_event *e, const float *logits, int32_t n_vocab,
                         int32_t top_n)
{
    float max = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > max)
            max = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += exp((double)(logits[i] - max));
    const float log_z = max + (float)log(sum);
    e->logprob = logits[e->token] - log_z;
    if (top_n <= 0)
        return LLAMAD_OK;
    e->top = malloc((size_t)top_n * sizeof(*e->top));
    if (!e->top)
        return LLAMAD_ENOMEM;
    /* Insertion into a short sorted list: top_n is at most 20. */
    for (int32_t i = 0; i < n_vocab; i++) {
        float lp = logits[i] - log_z;
        if (e->n_top == top_n && lp <= e->top[top_n - 1].logprob)
            continue;
        int32_t j = e->n_top < top_n ? e->n_top++ : top_n - 1;
        while (j > 0 && e->top[j - 1].logprob < lp) {
            e->top[j] = e->top[j - 1];
            j--;
        }
        e->top[j] = (struct llamad_top_logprob){i, lp};
    }
    return LLAMAD_OK;
}

static char *copy_bytes(const char *data, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        if (len)
            memcpy(p, data, len);
        p[len] = '\0';
    }
    return p;
}

/* The TOKEN event of `token`: its bytes, the text it releases, its logprobs. */
static struct llamad_event *token_event(struct sequence *s, const struct llamad_model *m,
                                        int32_t token, const float *logits, bool *stopped)
{
    struct llamad_event *e = calloc(1, sizeof(*e));
    struct llamad_buf bytes = LLAMAD_BUF_INIT, released = LLAMAD_BUF_INIT;
    if (!e)
        return NULL;
    e->kind = LLAMAD_EVENT_TOKEN;
    e->token = token;
    llamad_buf_clear(&s->piece);
    int rc = llamad_token_to_bytes(m->tokenizer, token, &bytes);
    if (!rc)
        rc = llamad_detok_push(&s->detok, token, &s->piece);
    if (!rc)
        rc = llamad_stop_push(s->stop, s->piece.data ? s->piece.data : "", s->piece.len, &released,
                              stopped);
    if (!rc && s->req.logprobs)
        rc = fill_logprobs(e, logits, m->hp.n_vocab, s->req.top_logprobs);
    e->piece = copy_bytes(bytes.data, bytes.len);
    e->piece_len = bytes.len;
    e->text = copy_bytes(released.data, released.len);
    e->text_len = released.len;
    llamad_buf_free(&bytes);
    llamad_buf_free(&released);
    if (rc || !e->piece || !e->text) {
        llamad_event_free(e);
        return NULL;
    }
    return e;
}

/* The grammar's allowed tokens into the sampler. With ignore_eos, end tokens
 * are left out while the grammar can go on. */
static enum llamad_finish constrain(struct sequence *s, const struct llamad_model *m)
{
    int rc = llamad_grammar_matcher_mask(s->matcher, s->mask);
    if (rc) {
        s->error = rc == LLAMAD_ERANGE ? "the grammar is too ambiguous (too many places at once)"
                                       : "out of memory while sampling";
        s->error_status = rc == LLAMAD_ERANGE ? 400 : 500;
        return LLAMAD_FINISH_ERROR;
    }
    if (s->req.ignore_eos && llamad_grammar_matcher_can_continue(s->matcher)) {
        int32_t n_eog;
        const int32_t *eog = llamad_grammar_vocab_eog(m->grammar_vocab, &n_eog);
        for (int32_t i = 0; i < n_eog; i++)
            s->mask[eog[i] >> 3] &= (uint8_t) ~(1u << (eog[i] & 7));
    }
    if (llamad_sampler_set_allowed(s->sampler, s->mask))
        return LLAMAD_FINISH_ERROR;
    return LLAMAD_FINISH_NONE;
}

enum llamad_finish sequence_sample(struct sequence *s, const struct llamad_model *m,
                                   const float *logits, int32_t n_ctx, double now)
{
    if (s->req.max_tokens == 0) /* the prompt was all it asked for */
        return LLAMAD_FINISH_LENGTH;
    enum llamad_finish why = s->matcher ? constrain(s, m) : LLAMAD_FINISH_NONE;
    if (why != LLAMAD_FINISH_NONE)
        return why;
    int32_t token = llamad_sampler_sample(s->sampler, logits);
    if (s->n_gen == 0)
        s->t_first = now;
    if (token < 0)
        return LLAMAD_FINISH_STOP; /* the allowed-token mask left nothing */
    /* With a grammar, an end token comes only where the grammar may end. */
    if ((!s->req.ignore_eos || s->matcher) && llamad_tokenizer_is_eog(m->tokenizer, token))
        return LLAMAD_FINISH_STOP;
    if (s->matcher && llamad_grammar_matcher_accept(s->matcher, token)) {
        s->error = "the grammar refused the sampled token";
        s->error_status = 500;
        return LLAMAD_FINISH_ERROR;
    }
    llamad_sampler_accept(s->sampler, token);
    s->n_gen++;
    bool stopped = false;
    struct llamad_event *e = token_event(s, m, token, logits, &stopped);
    if (!e)
        return LLAMAD_FINISH_ERROR;
    llamad_outbox_push(s->out, e);
    if (stopped)
        return LLAMAD_FINISH_STOP;
    /* The next token would sit at position n_fed + 1 once this one is fed. */
    if (s->n_gen >= s->req.max_tokens || s->n_fed + 1 >= n_ctx)
        return LLAMAD_FINISH_LENGTH;
    s->next_token = token;
    s->decoding = true;
    return LLAMAD_FINISH_NONE;
}

/* Whatever the detokenizer and the stop matcher still hold, once no stop string
 * can complete any more. */
static char *held_back_text(struct sequence *s, size_t *len)
{
    struct llamad_buf tail = LLAMAD_BUF_INIT, text = LLAMAD_BUF_INIT;
    bool stopped = false;
    if (llamad_detok_flush(&s->detok, &tail) == LLAMAD_OK &&
        llamad_stop_push(s->stop, tail.data ? tail.data : "", tail.len, &text, &stopped) ==
            LLAMAD_OK &&
        !stopped)
        llamad_stop_finish(s->stop, &text);
    char *out = copy_bytes(text.data, text.len);
    *len = text.len;
    llamad_buf_free(&tail);
    llamad_buf_free(&text);
    return out;
}

void sequence_finish(struct sequence *s, enum llamad_finish why, int error_status,
                     const char *error, double now)
{
    struct llamad_event *e = s->done;
    s->done = NULL;
    e->kind = LLAMAD_EVENT_DONE;
    e->finish = why;
    if (why == LLAMAD_FINISH_STOP || why == LLAMAD_FINISH_LENGTH)
        e->text = held_back_text(s, &e->text_len);
    if (error) {
        e->error = copy_bytes(error, strlen(error));
        e->error_status = error_status;
    }
    double t_first = s->n_gen > 0 ? s->t_first : now;
    e->usage = (struct llamad_usage){
        .prompt_tokens = s->req.n_prompt,
        .completion_tokens = s->n_gen,
        .cached_tokens = s->n_cached,
        .queued_ms = (s->t_admit - s->t_submit) * 1e3,
        .prompt_ms = (t_first - s->t_admit) * 1e3,
        .generation_ms = (now - t_first) * 1e3,
    };
    llamad_outbox_push(s->out, e);
    llamad_sampler_free(s->sampler);
    llamad_stop_free(s->stop);
    llamad_grammar_matcher_free(s->matcher);
    free(s->mask);
    llamad_buf_free(&s->piece);
    llamad_gen_request_clear(&s->req);
    s->sampler = NULL;
    s->stop = NULL;
    s->matcher = NULL;
    s->mask = NULL;
}
