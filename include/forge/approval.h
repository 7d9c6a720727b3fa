/*
 * approval.h — human approval (human-in-the-loop): a call of a tool that an
 * agent lists under approve:, or of its ask_human, waits for a person.
 *
 * The worker commits an ASK record for it and parks the session (WAITING:
 * no worker slot, no lease) until a DECISION record is committed: by a
 * person through fg_approval_decide (POST /v1/sessions/{id}/approval,
 * forgectl approve / reject / answer), or by the worker that the
 * supervisor's sweep wakes once the agent's approval_timeout_s has passed
 * (its approval_default).  The worker then acts on the decision: runs the
 * tool (with the arguments as approved or edited), or commits the
 * rejection (or ask_human's answer) as the call's result.
 */
#ifndef FORGE_APPROVAL_H
#define FORGE_APPROVAL_H

#include "forge/session.h"

#include <jansson.h>
#include <pthread.h>

#define FG_APPROVAL_TEXT_MAX 4096u      /* a reason                      */
#define FG_APPROVAL_ANSWER_MAX 65536u   /* an answer, edited arguments   */

/* The calls of snapshot sn (with its log) that wait for a person: a JSON
 * array of {call_id, kind (approval | question), tool, arguments or
 * question, deadline_ms and default (with a timeout)}; [] if none. */
json_t *fg_approval_pending(const fg_snap_t *sn);

/*
 * A person's answer, in (JSON: decision approve | reject | edit | answer,
 * reason, arguments (edit), answer (ask_human)), to call call_id of session
 * h (NULL: the one call that waits), recorded with by (who answered).
 * 0: committed, the session queued to act on it; 1: this same answer was
 * recorded before (a retry: nothing added).  *recorded: the decision as
 * recorded (the caller's to json_decref).  lock (NULL: none) is held
 * around the use of a.  -ENOENT (no such session), -ESRCH (no such call),
 * -ENOMSG (it waits for no person, or not with that call), -EINVAL (the answer does not fit the question;
 * several calls wait and none is named), -EEXIST (decided otherwise
 * already, or the call has its result), -EPERM (cancelled, finished),
 * -EBUSY (it runs: not waiting now), -E2BIG, -ENOMEM; err says why.
 * A session that runs (a tool of the same turn, or it has just asked and
 * is about to park) takes the answer once it waits: woken by its bell (a
 * writable mapping; else it looks every 5 ms), for wait_ms at most (at
 * least half a second: the window between an ASK's commit and the park);
 * -EBUSY if it still runs then.
 * gone (or NULL), called with gone_arg after each wait (a second at most)
 * and before the look that follows, ends the wait when it returns
 * nonzero: the one who answers has left (an HTTP client that closed its
 * connection); then -ECANCELED, nothing answered.
 */
int fg_approval_decide(fg_actor_t *a, pthread_mutex_t *lock, fg_handle_t h, const char *call_id,
		       const json_t *in, const char *by, long wait_ms, int (*gone)(void *),
		       void *gone_arg, json_t **recorded, char *err, size_t errlen);

#endif
