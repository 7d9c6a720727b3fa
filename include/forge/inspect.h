/*
 * inspect.h — read-only views of the region as JSON (forgectl, gateway).
 */
#ifndef FORGE_INSPECT_H
#define FORGE_INSPECT_H

#include "forge/config.h"
#include "forge/region.h"

#include <jansson.h>

/* One session; full adds the conversation and bookkeeping.  cfg may be
 * NULL (provider names are then left out).  Caller owns the result. */
json_t *fg_inspect_session(const fg_region_t *r, uint32_t idx, int full, const fg_config_t *cfg);

#endif
