/* Work for a request on the libuv thread pool: the one way a request waits for
 * the pool ("suspend, run on the pool, resume"). The request is suspended while
 * its job is queued or runs, and the job holds a reference to it
 * (request_retain), so the request, its body and its route state outlive the
 * job even when the connection ends first (at shutdown MHD finishes every
 * connection). A job that has not started is cancelled when its client goes,
 * past the drain deadline and at shutdown; a job that returns when nobody waits
 * for its answer, or once the server is stopping, calls no route back, so a
 * stopped engine is given nothing. Private to src/server/. */
#ifndef LLAMAD_JOB_H
#define LLAMAD_JOB_H

#include <stdbool.h>
#include <uv.h>

#include "http.h"

/* The caller's job: usually the first member of a struct of its own. */
struct request_job {
    uv_work_t work;
    struct request *r;
    void (*run)(struct request_job *j); /* on a pool thread */
    /* On the loop, last: answers r when answer is set, and frees j. */
    void (*done)(struct request_job *j, bool answer);
};

/* Suspends r and queues j, whose run and done are set. */
void request_start_job(struct request *r, struct request_job *j);
/* Cancels r's job when it has not started (r may have none); r is answered with
 * a 503 when its client still waits and the server is not yet stopping. */
void request_cancel_job(struct request *r);
/* request_cancel_job on every request. */
void server_cancel_jobs(struct server *s);

#endif
