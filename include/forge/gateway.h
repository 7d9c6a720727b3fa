/*
 * gateway.h — the HTTP API (libmicrohttpd), a supervised child like the
 * workers: it writes new sessions into the region through its own registry
 * slot (so a gateway killed mid-submit is recovered like any child) and
 * reads sessions for the API.  Killing it loses no session.
 */
#ifndef FORGE_GATEWAY_H
#define FORGE_GATEWAY_H

#include "forge/config.h"
#include "forge/region.h"

/* Runs the gateway in its slot until SIGTERM; returns an exit code
 * (FG_EXIT_FATAL if it cannot listen: restarting would not help). */
int fg_gateway_main(fg_region_t *r, uint32_t slot, const fg_config_t *cfg);

#endif
