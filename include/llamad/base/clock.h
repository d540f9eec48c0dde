/* The clock that durations, rates and deadlines are measured with. */
#ifndef LLAMAD_CLOCK_H
#define LLAMAD_CLOCK_H

/* Seconds on the monotonic clock (CLOCK_MONOTONIC): it never steps back when the
 * time of day is set, so differences are true intervals. Not a time of day. */
double llamad_now_seconds(void);

#endif
