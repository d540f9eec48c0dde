/* A request's work on the libuv thread pool (job.h). */
#include "job.h"

#include "llamad/server/api_request.h"

static void run_job(uv_work_t *w)
{
    struct request_job *j = w->data;
    j->run(j);
}

static void job_returned(uv_work_t *w, int status)
{
    struct request_job *j = w->data;
    struct request *r = j->r;
    struct server *s = r->srv;
    bool waiting = r->conn && !r->client_gone && s->state != SERVER_STOPPING;
    r->job = NULL;
    j->done(j, waiting && status == 0);
    if (waiting && status == UV_ECANCELED) {
        struct llamad_api_error e;
        llamad_api_set_error(&e, 503, "server_error", "", "", "the server is shutting down");
        request_respond_error(r, &e);
    } else if (!waiting && r->conn) {
        request_resume(r); /* MHD then closes the connection */
    }
    request_release(r);
    server_run_mhd(s);
}

void request_start_job(struct request *r, struct request_job *j)
{
    j->r = r;
    j->work.data = j;
    request_suspend(r);
    request_retain(r);
    r->job = j;
    uv_queue_work(r->srv->loop, &j->work, run_job, job_returned);
}

void request_cancel_job(struct request *r)
{
    if (r->job)
        uv_cancel((uv_req_t *)&r->job->work);
}

void server_cancel_jobs(struct server *s)
{
    for (struct request *r = s->requests; r; r = r->next)
        request_cancel_job(r);
}
