#ifndef LLAMAD_SERVER_FAULT_H
#define LLAMAD_SERVER_FAULT_H

/* Allocation failure injection, in the faults test build only (meson option
 * fault_injection; fault.c): a request carrying the header below with a count N
 * has the Nth allocation made after it starts fail, on whichever thread makes
 * it; its end disarms the count and logs whether it was reached. In other
 * builds the two calls are empty and the header means nothing. */
#define FAULT_HEADER "X-Llamad-Fail-Alloc"

#ifdef LLAMAD_FAULT_INJECTION
/* At a request's start, with its FAULT_HEADER value (or NULL). */
void fault_request_start(const char *countdown);
/* At every request's end. */
void fault_request_end(void);
#else
static inline void fault_request_start(const char *countdown)
{
    (void)countdown;
}
static inline void fault_request_end(void)
{
}
#endif

#endif
