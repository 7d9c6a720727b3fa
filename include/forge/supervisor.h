/*
 * supervisor.h — forged's supervisor: holds the region lock, creates or
 * re-attaches the region, forks and watches the workers (pidfd + signalfd
 * + timerfd in one epoll loop; no work in signal handlers), runs the
 * recovery pass for each dead child, restarts it with backoff and an
 * intensity limit, kills hung workers (watchdog), sweeps for lost hints
 * and dead clients, and drains on SIGTERM.  It never runs sessions.
 */
#ifndef FORGE_SUPERVISOR_H
#define FORGE_SUPERVISOR_H

#include "forge/config.h"

typedef struct fg_sup_opts {
	int reset;         /* --reset: recreate a region that does not match */
} fg_sup_opts_t;

/* Runs until SIGTERM/SIGINT; returns the process exit code. */
int fg_supervisor_run(const fg_config_t *cfg, const fg_sup_opts_t *opts);

#endif
