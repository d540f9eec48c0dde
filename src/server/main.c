/* llamad: the daemon's lifecycle. Configuration, then the listening socket (so
 * /health answers 503 while loading), then the model on the thread pool, then
 * the engine; signals: SIGTERM drains, SIGINT stops, SIGHUP re-reads the log
 * level. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "generate.h"
#include "handlers.h"
#include "http.h"
#include "job.h"
#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/base/log.h"
#include "llamad/base/paths.h"
#include "llamad/base/sched_slice.h"
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/threadpool.h"
#include "llamad/model/kvcache.h"
#include "sdnotify.h"
#include "server.h"

struct daemon_state {
    struct server srv;
    struct llamad_config cfg;
    char model_path[PATH_MAX];
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;
    uint64_t engine_beat; /* the engine's heartbeat the watchdog saw last */
    uv_work_t load;
    struct llamad_model *loaded;
    char load_err[LLAMAD_ERR_MAX];
};

/* ---- Engine -> loop ---- */

/* On the batcher thread: queue the outbox for the loop and wake it. */
static void on_engine_notify(void *ctx, struct llamad_outbox *o)
{
    struct server *s = ctx;
    llamad_ready_push(&s->ready, o);
    uv_async_send(&s->wake);
}

static void handle_outbox(struct llamad_outbox *o, void *ctx)
{
    (void)ctx;
    if (o->owner)
        generate_events(o->owner);
}

static void drain_ready(struct server *s)
{
    llamad_ready_drain(&s->ready, handle_outbox, NULL);
    server_run_mhd(s);
}

static void on_wake(uv_async_t *a)
{
    drain_ready(a->data);
}

/* The compute threads keep every core busy; the loop thread wakes once per
 * engine step and writes the step's tokens out in about 0.1 ms (8 streams). With
 * the default slices it was often left waiting behind a compute thread for the
 * rest of the step, so a step's tokens went out with the next one's. Short
 * slices for the loop thread and the threads it creates (the engine's) let it in
 * within about 0.1 ms. */
static void ask_for_short_slices(void)
{
    int rc = llamad_sched_short_slice(100 * 1000);
    if (rc)
        llamad_debug("the daemon's threads keep the default scheduling slice: %s", strerror(-rc));
}

/* ---- Stopping ---- */

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Ends the daemon: thread-pool jobs not yet started are cancelled, the engine
 * stops (what still runs ends as cancelled), every suspended connection is
 * resumed and finished, then MHD stops. Jobs still running keep their requests
 * (job.h) and answer nobody; the loop ends when they have returned, and the
 * engine, which MHD's last callbacks may still ask, is freed after it (run). */
static void shut_down(struct daemon_state *d)
{
    struct server *s = &d->srv;
    if (s->state == SERVER_STOPPING)
        return;
    s->state = SERVER_STOPPING;
    llamad_info("stopping");
    server_cancel_jobs(s);
    if (s->engine) {
        llamad_engine_stop(s->engine);
        drain_ready(s);
    }
    server_finish_suspended(s);
    if (s->mhd) {
        uv_poll_stop(&s->mhd_poll);
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    }
    uv_walk(s->loop, close_handle, NULL);
}

static void start_drain(struct daemon_state *d, double timeout)
{
    struct server *s = &d->srv;
    if (s->state == SERVER_DRAINING || s->state == SERVER_STOPPING) {
        shut_down(d); /* a second signal: stop now, without the grace on_tick gives */
        return;
    }
    llamad_info("draining: no new requests; running ones get %.0f s to finish", timeout);
    sd_notify_state("STOPPING=1\nSTATUS=draining");
    server_close_listener(s);
    s->state = s->engine ? SERVER_DRAINING : SERVER_STOPPING;
    s->drain_deadline = llamad_now_seconds() + timeout;
    if (!s->engine) { /* still loading: nothing to finish */
        s->state = SERVER_DRAINING;
        shut_down(d);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct daemon_state *d = t->data;
    struct server *s = &d->srv;
    double now = llamad_now_seconds();
    server_keep_streams_alive(s, now);
    server_enforce_deadlines(s, now);
    if (s->state == SERVER_DRAINING) {
        if (!generate_any_running(s))
            shut_down(d);
        else if (now >= s->drain_deadline) {
            generate_cancel_all(s); /* streams end with an error event and [DONE] */
            server_cancel_jobs(s);  /* queued ones are answered 503 */
            if (now >= s->drain_deadline + 5.0)
                shut_down(d);
        }
    }
    server_run_mhd(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon_state *d = h->data;
    if (signum == SIGHUP) {
        char err[LLAMAD_ERR_MAX];
        if (llamad_config_reload_log_level(&d->cfg, err, sizeof err) == 0) {
            llamad_log_set_level(d->cfg.log_level);
            llamad_info("log level is now %s", llamad_log_level_name(d->cfg.log_level));
        } else {
            llamad_warn("SIGHUP: %s", err);
        }
        return;
    }
    start_drain(d, signum == SIGTERM ? d->cfg.drain_timeout : 0.0);
}

/* The loop turns and the batcher makes progress or has no work: a hung engine
 * (a step that does not end) stops the pings, and systemd restarts the daemon. */
static void on_watchdog(uv_timer_t *t)
{
    struct daemon_state *d = t->data;
    if (!d->srv.engine || llamad_engine_alive(d->srv.engine, &d->engine_beat))
        sd_notify_state("WATCHDOG=1");
}

/* ---- Loading ---- */

static void load_model(uv_work_t *w)
{
    struct daemon_state *d = w->data;
    if (llamad_model_load(d->model_path, &d->loaded, d->load_err, sizeof d->load_err) != 0)
        d->loaded = NULL;
}

static void choose_chat_template(struct daemon_state *d)
{
    struct server *s = &d->srv;
    struct llamad_gguf_str jinja;
    s->chat_template = LLAMAD_CHAT_PLAIN;
    if (d->cfg.chat_template) {
        llamad_chat_from_name(d->cfg.chat_template, &s->chat_template);
    } else if (llamad_gguf_get_str(s->model->gguf, "tokenizer.chat_template", &jinja, NULL, 0) ==
               0) {
        if (llamad_chat_detect(jinja.data, (size_t)jinja.len, &s->chat_template) != 0)
            llamad_warn("the model's chat template is not one llamad recognises; chat uses the "
                        "plain template (set chat_template in the conf to choose one)");
    }
    llamad_info("chat template: %s", llamad_chat_name(s->chat_template));
}

/* The KV cache budget: kv_cache_mb, or else room for twice `parallel` full
 * contexts (the running sequences and as many cached sessions), at most a
 * quarter of the RAM but always one full context. */
static size_t kv_cache_bytes(const struct llamad_config *cfg, const struct llamad_hparams *hp)
{
    if (cfg->kv_cache_mb > 0)
        return (size_t)cfg->kv_cache_mb << 20;
    size_t context = llamad_kvcache_bytes(hp, cfg->ctx_size, 1, cfg->kv_cache_type);
    size_t bytes = llamad_kvcache_bytes(hp, cfg->ctx_size, 2 * cfg->parallel, cfg->kv_cache_type);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0 && bytes > (size_t)pages / 4 * (size_t)page)
        bytes = (size_t)pages / 4 * (size_t)page;
    return bytes > context ? bytes : context;
}

static int start_engine(struct daemon_state *d, char *err, size_t errsz)
{
    struct server *s = &d->srv;
    const struct llamad_hparams *hp = &s->model->hp;
    if (d->cfg.ctx_size == 0)
        d->cfg.ctx_size = hp->n_ctx_train;
    struct llamad_engine_params p = {
        .n_threads = d->cfg.threads > 0 ? d->cfg.threads : llamad_default_threads(),
        .n_ctx = d->cfg.ctx_size,
        .max_active = d->cfg.parallel,
        .max_queued = d->cfg.queue_length,
        .step_tokens = d->cfg.step_tokens > d->cfg.parallel ? d->cfg.step_tokens : d->cfg.parallel,
        .pass_tokens = d->cfg.pass_tokens,
        .kv_bytes = kv_cache_bytes(&d->cfg, hp),
        .kv_type = d->cfg.kv_cache_type,
        .kv_share_across_tenants = d->cfg.kv_share_across_keys,
    };
    llamad_info("model %s: %d layers, width %d, %d heads (%d KV), vocabulary %d, %.1f MB; "
                "context %d, %d threads, %d parallel sequences, KV cache %.0f MB of %s",
                s->model_id, hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->n_vocab,
                (double)s->model->weight_bytes / 1e6, p.n_ctx, p.n_threads, p.max_active,
                (double)p.kv_bytes / (1 << 20), llamad_type_name(p.kv_type));
    return llamad_engine_start(s->model, &p, on_engine_notify, s, &s->engine, err, errsz);
}

static void model_loaded(uv_work_t *w, int status)
{
    (void)status;
    struct daemon_state *d = w->data;
    struct server *s = &d->srv;
    char err[LLAMAD_ERR_MAX] = "";
    if (!d->loaded) {
        llamad_error("cannot load the model: %s", d->load_err);
        s->exit_status = 1;
        shut_down(d);
        return;
    }
    s->model = d->loaded;
    if (s->state != SERVER_LOADING) /* a signal came while loading */
        return;
    const char *slash = strrchr(d->model_path, '/');
    s->model_id = strdup(d->cfg.model_alias ? d->cfg.model_alias
                         : slash            ? slash + 1
                                            : d->model_path);
    s->created = (int64_t)time(NULL);
    choose_chat_template(d);
    if (start_engine(d, err, sizeof err) != 0) {
        llamad_error("cannot start the engine: %s", err);
        s->exit_status = 1;
        shut_down(d);
        return;
    }
    s->state = SERVER_READY;
    char state[LLAMAD_ERR_MAX];
    snprintf(state, sizeof state, "READY=1\nSTATUS=serving %s", s->model_id);
    sd_notify_state(state);
    llamad_info("ready");
}

/* ---- main ---- */

static void setup_signals(struct daemon_state *d)
{
    uv_signal_t *sigs[] = {&d->sigterm, &d->sigint, &d->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(d->srv.loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    signal(SIGPIPE, SIG_IGN);
}

static int run(struct daemon_state *d)
{
    struct server *s = &d->srv;
    char err[LLAMAD_ERR_MAX] = "";
    ask_for_short_slices();
    s->loop = uv_default_loop();
    s->cfg = &d->cfg;
    s->state = SERVER_LOADING;
    llamad_metrics_init(&s->metrics);
    llamad_ready_init(&s->ready);
    uv_async_init(s->loop, &s->wake, on_wake);
    s->wake.data = s;
    setup_signals(d);
    if (server_listen(s, &server_routes, err, sizeof err) != 0) {
        llamad_error("%s", err);
        return 1;
    }
    bool v6 = strchr(s->address, ':') != NULL;
    llamad_info("listening on http://%s%s%s:%u/ (%smodel %s loading)", v6 ? "[" : "", s->address,
                v6 ? "]" : "", s->port, s->inherited ? "a socket from systemd; " : "",
                d->model_path);
    uv_timer_t tick;
    uv_timer_init(s->loop, &tick);
    tick.data = d;
    /* A quarter second: keep-alive comments and the drain deadline are due on it. */
    uv_timer_start(&tick, on_tick, 250, 250);
    sd_notify_state("STATUS=loading the model");
    /* Checked at a quarter of the interval: a step may take up to three
     * quarters of it before a ping is missed. */
    uint64_t wd = sd_watchdog_ms() / 4;
    if (wd) {
        uv_timer_init(s->loop, &d->watchdog);
        d->watchdog.data = d;
        uv_timer_start(&d->watchdog, on_watchdog, wd, wd);
    }
    d->load.data = d;
    uv_queue_work(s->loop, &d->load, load_model, model_loaded);
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_loop_close(s->loop);
    llamad_engine_free(s->engine);
    llamad_ready_destroy(&s->ready);
    llamad_model_free(s->model);
    free(s->model_id);
    return s->exit_status;
}

int main(int argc, char **argv)
{
    static struct daemon_state d;
    char err[LLAMAD_ERR_MAX] = "";
    llamad_api_init();
    int status = llamad_config_load(&d.cfg, argc, argv, err, sizeof err);
    if (status != 0) {
        if (status > 0)
            fprintf(stderr, "llamad: %s\n", err);
        llamad_config_free(&d.cfg);
        return status < 0 ? 0 : status;
    }
    enum llamad_chat_template tmpl;
    if (d.cfg.chat_template && llamad_chat_from_name(d.cfg.chat_template, &tmpl) != 0) {
        fprintf(stderr,
                "llamad: unknown chat_template '%s' (plain, llama2, mistral, chatml, "
                "zephyr, vicuna or llama3)\n",
                d.cfg.chat_template);
        llamad_config_free(&d.cfg);
        return 2;
    }
    if (llamad_cpu_check_env(err, sizeof err)) {
        fprintf(stderr, "llamad: %s\n", err);
        llamad_config_free(&d.cfg);
        return 2;
    }
    llamad_log_set_level(d.cfg.log_level);
    llamad_cpu_log();
    if (d.cfg.model)
        snprintf(d.model_path, sizeof d.model_path, "%s", d.cfg.model);
    else
        llamad_default_model_path(d.model_path, sizeof d.model_path);
    status = run(&d);
    llamad_info("exiting with status %d", status);
    llamad_config_free(&d.cfg);
    return status;
}
