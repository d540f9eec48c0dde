/* The generation endpoints (/v1/completions, /v1/chat/completions, /completion):
 * parse on the loop, tokenize on the thread pool, run in the engine, answer as
 * one JSON body or as a server-sent-event stream. Uses http.h to answer; the
 * router (handlers.c) and main.c call it. Private to src/server/. */
#ifndef LLAMAD_GENERATE_H
#define LLAMAD_GENERATE_H

#include <stdbool.h>

#include "http.h"
#include "llamad/server/api_request.h"

void generate_start(struct request *r, enum llamad_api_kind kind);
/* The engine appended events to r's outbox. */
void generate_events(struct request *r);
/* Whether r was submitted to the engine (finished or not) and not yet released. */
bool generate_submitted(const struct request *r);
/* Asks the engine to drop r's generation if it still runs (r may be none). */
void generate_cancel(struct request *r);
/* Whether any request still has a generation: being prepared on the thread
 * pool, or submitted and not yet released (draining waits for none). */
bool generate_any_running(const struct server *s);
/* generate_cancel on every request. */
void generate_cancel_all(struct server *s);
/* The connection is done with r (ok: the answer went out whole): a generation
 * cut off before its end counts as the client gone; it is cancelled and freed. */
void generate_end(struct request *r, bool ok);

#endif
