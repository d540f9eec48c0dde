/* The generation endpoints (/v1/completions, /v1/chat/completions, /completion):
 * parse on the loop, tokenize on the thread pool, run in the engine, answer as
 * one JSON body or as a server-sent-event stream. Private to src/. */
#ifndef LLAMAD_GENERATE_H
#define LLAMAD_GENERATE_H

#include "server.h"

void generate_start(struct request *r);

#endif
