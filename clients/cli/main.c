/* llamad-cli: a prompt, or a chat on stdin, sent to a running llamad; the
 * answer streamed to stdout, a line of timings to stderr. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "chat.h"
#include "reply.h"
#include "transfer.h"

/* Ctrl-Cs since the current answer began: the first stops it. */
static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
    (void)sig;
    interrupts++;
}

/* No SA_RESTART: a Ctrl-C at the prompt ends the read of stdin. */
static void catch_sigint(void)
{
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* TTFT is from sending to the first text; the rate is of the tokens after the
 * first over the time they took (the decoding speed, the prompt left out). */
static void print_stats(const struct reply *r, int stopped)
{
    long tokens = r->completion_tokens >= 0 ? r->completion_tokens : r->chunks;
    fprintf(stderr, "[%s%ld tokens", stopped ? "stopped, " : "", tokens);
    if (r->prompt_tokens >= 0)
        fprintf(stderr, ", prompt %ld (%ld cached)", r->prompt_tokens, r->cached_tokens);
    if (r->chunks)
        fprintf(stderr, ", TTFT %.1f ms", (r->t_first - r->t_start) * 1e3);
    if (tokens > 1 && r->t_end > r->t_first)
        fprintf(stderr, ", %.1f tokens/s", (double)(tokens - 1) / (r->t_end - r->t_first));
    fputs("]\n", stderr);
}

/* One turn: the history sent, the answer printed and appended to it. Returns
 * the transfer's result; on a refusal the user's message leaves the history. */
static enum transfer_result turn(struct chat *chat, const struct cli_args *a, const char *url,
                                 const char *session)
{
    char err[512] = "";
    char *body = chat_request(chat, a, session);
    if (!body) {
        fprintf(stderr, "llamad-cli: out of memory\n");
        return TRANSFER_FAILED;
    }
    struct reply r;
    reply_init(&r, stdout);
    interrupts = 0;
    enum transfer_result res =
        transfer_post(url, a->api_key, session, body, &r, &interrupts, err, sizeof err);
    free(body);
    if (r.chunks)
        putchar('\n');
    fflush(stdout);
    if (res == TRANSFER_OK || res == TRANSFER_STOPPED) {
        print_stats(&r, res == TRANSFER_STOPPED);
        /* what was shown is what the next turn sees as the answer */
        if (chat_add(chat, "assistant", r.text ? r.text : ""))
            res = TRANSFER_FAILED;
    } else {
        fprintf(stderr, "llamad-cli: %s\n", res == TRANSFER_SERVER_ERROR ? r.error : err);
        chat_drop_last(chat);
    }
    reply_free(&r);
    return res;
}

/* Lines of stdin as user messages until end of input or a Ctrl-C at the
 * prompt. Returns the exit status: 1 if any turn failed. */
static int interactive(struct chat *chat, const struct cli_args *a, const char *url)
{
    char session[64];
    if (a->session)
        snprintf(session, sizeof session, "%s", a->session);
    else
        snprintf(session, sizeof session, "cli-%ld-%lx", (long)getpid(), (long)time(NULL));
    int tty = isatty(STDIN_FILENO), status = 0;
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (interrupts > 1)
            break;
        if (tty)
            fputs("> ", stderr);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) /* end of input, or EINTR: Ctrl-C at the prompt */
            break;
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (chat_add(chat, "user", line)) {
            status = 1;
            break;
        }
        enum transfer_result res = turn(chat, a, url, session);
        if (res == TRANSFER_SERVER_ERROR || res == TRANSFER_FAILED)
            status = 1;
    }
    free(line);
    return status;
}

int main(int argc, char **argv)
{
    struct cli_args a;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    size_t base = strlen(a.url);
    while (base && a.url[base - 1] == '/')
        base--;
    char *url = malloc(base + sizeof "/v1/chat/completions");
    struct chat chat = {0};
    if (!url || chat_init(&chat, a.system) || curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "llamad-cli: out of memory\n");
        free(url);
        chat_free(&chat);
        return 1;
    }
    sprintf(url, "%.*s/v1/chat/completions", (int)base, a.url);
    catch_sigint();
    if (a.prompt) {
        enum transfer_result res =
            chat_add(&chat, "user", a.prompt) ? TRANSFER_FAILED : turn(&chat, &a, url, a.session);
        rc = res == TRANSFER_OK ? 0 : res == TRANSFER_STOPPED ? 130 : 1;
    } else {
        rc = interactive(&chat, &a, url);
    }
    chat_free(&chat);
    free(url);
    curl_global_cleanup();
    return rc;
}
