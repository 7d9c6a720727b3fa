/*
 * check.h — forgectl check as a library call: every invariant of a region
 * verifiable from outside (src/region/check.c lists them).
 */
#ifndef FORGE_CHECK_H
#define FORGE_CHECK_H

#include "forge/region.h"

typedef struct fg_check_opts {
	uint32_t sweep_after_ms;   /* the supervisor's (0: the default, 2000) */
	int supervisor_alive;      /* 1: slots it owns are judged live or dead */
} fg_check_opts_t;

/* Called once per violation with a message (borrowed for the call). */
typedef void (*fg_check_report_fn)(void *arg, const char *violation);

/* One pass over r; returns the number of violations reported. */
unsigned fg_region_check(const fg_region_t *r, const fg_check_opts_t *o,
			 fg_check_report_fn fn, void *arg);

#endif
