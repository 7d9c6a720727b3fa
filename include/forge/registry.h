/*
 * registry.h — the worker registry: slots for children (managed by the
 * supervisor) and for clients such as forgectl submit, which take a FREE
 * client slot by CAS on its pid and give it back when done.  A client that
 * dies holding a slot is found by the supervisor's sweep (pid gone, or a
 * different start time) and recovered like a dead child.
 */
#ifndef FORGE_REGISTRY_H
#define FORGE_REGISTRY_H

#include "forge/session.h"

const char *fg_slot_state_name(uint32_t st);

/* Claims a client slot for this process; -EBUSY if all are taken. */
int  fg_client_attach(fg_region_t *r, fg_actor_t *a);
void fg_client_detach(fg_actor_t *a);

/* 1 if client slot s is held by a process that no longer exists. */
int  fg_client_dead(const fg_slot_t *s);

#endif
