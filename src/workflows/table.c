/*
 * table.c — the workflows, one row each, indexed by the id a session
 * record carries (enum fg_workflow in region.h).  The loop runs a session
 * through its row's step; a model's reply reaches its row's on_reply.
 */
#include "worker/wk.h"
#include "workflows/workflows.h"

static const fg_wf_t table[] = {
	[FG_WF_SYNTHETIC]    = { "synthetic", fg_wf_synthetic_step, NULL },
	[FG_WF_REACT]        = { "react", fg_wf_react_step, fg_wf_react_reply },
	[FG_WF_MAP_REDUCE]   = { "map_reduce", fg_wf_fanout_step, fg_wf_fanout_reply },
	[FG_WF_PLAN_EXECUTE] = { "plan_execute", fg_wf_fanout_step, fg_wf_fanout_reply },
};

const fg_wf_t *fg_wf_get(uint32_t id)
{
	return id < sizeof(table) / sizeof(table[0]) && table[id].step ? &table[id] : NULL;
}
