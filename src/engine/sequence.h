/* One admitted request inside the engine: its sampler, detokenizer and stop
 * matcher, and the events it produces. Private to the engine (batcher thread). */
#ifndef LLAMAD_SEQUENCE_H
#define LLAMAD_SEQUENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "llamad/base/buf.h"
#include "llamad/engine/event.h"
#include "llamad/engine/outbox.h"
#include "llamad/engine/request.h"
#include "llamad/grammar/grammar.h"
#include "llamad/model/model.h"
#include "llamad/model/stop.h"
#include "llamad/tokenizer/tokenizer.h"

struct sequence {
    struct llamad_gen_request req;
    struct llamad_outbox *out;
    int32_t kv_seq;     /* its KV cache sequence */
    int32_t n_cached;   /* prompt tokens that were in the KV cache at admission */
    int32_t n_fed;      /* tokens in the KV cache (prompt, then generated) */
    int32_t n_gen;      /* tokens generated */
    int32_t next_token; /* the sampled token to feed in the next step (decoding) */
    bool decoding;      /* the prompt is in; one token per step from now on */
    struct llamad_sampler *sampler;
    struct llamad_detok detok;
    struct llamad_stop *stop;
    struct llamad_grammar_matcher *matcher; /* with a grammar: where the output is in it */
    uint8_t *mask;                          /* scratch: the tokens the grammar allows */
    const char *error;                      /* why sampling failed (a static text), or NULL */
    int error_status;
    struct llamad_buf piece;   /* scratch: the detokenized text of one token */
    struct llamad_event *done; /* allocated up front, so a request always gets its end */
    double t_submit, t_admit, t_first;
};

/* Takes over req (cleared) and a reference to out. The KV sequence already
 * holds the first n_cached prompt tokens. */
int sequence_init(struct sequence *s, const struct llamad_model *m, struct llamad_gen_request *req,
                  struct llamad_outbox *out, int32_t kv_seq, int32_t n_cached, double t_submit,
                  double t_admit);

/* The logits of the sequence's last fed position are in: samples the next token
 * and pushes its TOKEN event (none when max_tokens is 0). Returns LLAMAD_FINISH_NONE to go on, or
 * why the sequence ends (the caller then calls sequence_finish). */
enum llamad_finish sequence_sample(struct sequence *s, const struct llamad_model *m,
                                   const float *logits, int32_t n_ctx, double now);

/* Pushes the DONE event (with any held-back text and the usage) and releases
 * what the sequence holds, except its KV sequence, which the engine frees. */
void sequence_finish(struct sequence *s, enum llamad_finish why, int error_status,
                     const char *error, double now);

#endif
