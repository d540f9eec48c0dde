/* The logprobs of a response, written as JSON text (json_write.h): a long
 * answer with top_logprobs has tens of thousands of fields. Defined in
 * api_logprobs.c for api_response.c. Private to src/server/. */
#ifndef LLAMAD_API_LOGPROBS_H
#define LLAMAD_API_LOGPROBS_H

#include <stddef.h>

#include "json_write.h"
#include "llamad/engine/event.h"
#include "llamad/server/api_response.h"

/* OpenAI completions' {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
 * of the token events first..end; offset: bytes of the completion's text before first. */
void api_completion_logprobs(struct json_out *o, const struct llamad_api_reply *r,
                             const struct llamad_event *first, const struct llamad_event *end,
                             size_t offset);
/* The array of per-token entries with their alternatives: OpenAI chat's
 * logprobs.content, and (with ids) llama.cpp's completion_probabilities. */
void api_sampled_entries(struct json_out *o, const struct llamad_api_reply *r,
                         const struct llamad_event *first, const struct llamad_event *end);

#endif
