/* One answer of /v1/chat/completions as its stream arrives: the text printed
 * and kept, the usage, the timings, or the server's error. */
#ifndef LLAMAD_CLI_REPLY_H
#define LLAMAD_CLI_REPLY_H

#include <stdio.h>

struct reply {
    FILE *out;  /* where the text goes as it arrives */
    char *text; /* all of it, NUL-terminated (NULL until some came) */
    size_t text_len, text_cap;
    long chunks; /* events that carried text: a token each */
    long completion_tokens, prompt_tokens, cached_tokens; /* the usage; -1 unknown */
    char *error;                    /* the server's error, as a line to print; NULL if none */
    int done;                       /* [DONE] came */
    double t_start, t_first, t_end; /* monotonic seconds: sent, first text, end */
};

void reply_init(struct reply *r, FILE *out);
void reply_free(struct reply *r);
/* An sse_event_fn: one event's data. Returns nonzero out of memory. */
int reply_event(const char *data, void *user);
/* The error of a response that is not a stream: its status and body. */
void reply_set_error(struct reply *r, long status, const char *body);
double reply_now(void);

#endif
