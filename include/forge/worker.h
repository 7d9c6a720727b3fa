/*
 * worker.h — a worker process: one event loop (epoll + timerfd + signalfd)
 * that claims sessions from the rings and advances each as a state machine,
 * committing a checkpoint after every step.  Many sessions are in flight at
 * once: a session waiting on a timer (or, later, on I/O) costs no thread.
 */
#ifndef FORGE_WORKER_H
#define FORGE_WORKER_H

#include "forge/config.h"
#include "forge/region.h"

#define FG_EXIT_FATAL 2   /* "do not restart me" (nginx's convention) */

/* Runs the worker in slot `slot` until told to stop; returns an exit code. */
int fg_worker_main(fg_region_t *r, uint32_t slot, const fg_config_t *cfg);

#endif
