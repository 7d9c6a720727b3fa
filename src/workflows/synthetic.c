/*
 * synthetic.c — the synthetic workflow: K steps, each folding its number
 * into a checksum kept in the checkpoint, so the final checksum proves
 * every step was applied exactly once.  No model calls.
 */
#include "worker/wk.h"
#include "workflows/workflows.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/llm.h"
#include "forge/log.h"
#include "forge/rate.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/tool.h"
#include "forge/util.h"
#include "forge/views.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fg_wf_synthetic_step(worker_t *w, wsess_t *s)
{
	/* Resumed after its last step was committed but before it finished:
	 * wk_finish it, do not step again. */
	if (s->st.step >= s->steps) {
		wk_finish(w, s, FG_S_DONE);
		return;
	}
	fg_wstate_t st = s->st;
	st.step++;
	st.checksum = fg_synthetic_fold(st.checksum, st.step);
	if (fg_session_commit(&w->a, s->idx, &st, NULL, 0) < 0) {
		log_warnx("session %u: checkpoint commit failed", s->idx);
		fg_session_finish(&w->a, s->idx, s->entry, FG_S_FAILED);
		wk_sess_free(w, s);
		return;
	}
	s->st = st;
	if (st.step >= s->steps) {
		wk_finish(w, s, FG_S_DONE);
		return;
	}
	wk_schedule(w, s);
}
