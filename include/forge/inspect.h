/*
 * inspect.h — read-only views of the region as JSON (forgectl, gateway).
 */
#ifndef FORGE_INSPECT_H
#define FORGE_INSPECT_H

#include "forge/config.h"
#include "forge/region.h"
#include "forge/session.h"

#include <jansson.h>

/* One session, from a snapshot taken and re-validated first (so a record
 * reused meanwhile is never shown under the old id); NULL if h names no
 * session (or out of memory).  full adds the conversation and
 * bookkeeping.  cfg may be NULL (provider names are then left out).
 * Caller owns the result. */
json_t *fg_inspect_session(const fg_region_t *r, fg_handle_t h, int full, const fg_config_t *cfg);

/* The same from a snapshot the caller took (with its log). */
json_t *fg_inspect_snap(const fg_snap_t *sn, int full, const fg_config_t *cfg);

/* The sessions in the table by named agent: {"NAME": {"sessions", "running",
 * "prompt_tokens", "completion_tokens", "cost_usd"}} (one pass over the
 * table, each session's first records only; cost at the prices of each
 * session's provider when it was made, 0 without).  Caller owns the result. */
json_t *fg_inspect_agents(const fg_region_t *r);

#endif
