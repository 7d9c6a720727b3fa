/*
 * metrics.c — /metrics (Prometheus text format: sessions by state, steps,
 * LLM calls, retries, tokens, restarts, a duration histogram) and
 * /v1/workers, straight from the region.
 */
#include "gateway/gw.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/gwreq.h"
#include "forge/inspect.h"
#include "forge/log.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/worker.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int gw_workers(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	(void)id;
	json_t *arr = json_array();
	uint32_t n = atomic_load(&g->r->hdr->cfg_workers);
	for (uint32_t i = 0; i < n && i < g->r->hdr->nworker_slots; i++) {
		fg_slot_t *s = fg_slot(g->r, i);
		static const char *const st[] = { "free", "starting", "ready", "draining", "dead",
						  "disabled", "recovering" };
		uint32_t k = atomic_load(&s->state);
		json_array_append_new(arr, json_pack("{s:i,s:i,s:s,s:i,s:I,s:I,s:i}", "slot", (int)i,
			"pid", (int)atomic_load(&s->pid), "state", k < 7 ? st[k] : "invalid",
			"inflight", (int)atomic_load(&s->inflight),
			"claims", (json_int_t)atomic_load(&s->claims),
			"done", (json_int_t)atomic_load(&s->done),
			"restarts", (int)atomic_load(&s->restarts)));
	}
	return reply_json(c, 200, json_pack("{s:o}", "data", arr));
}

int workers_alive(gw_t *g)
{
	int n = 0;
	uint32_t w = atomic_load(&g->r->hdr->cfg_workers);
	for (uint32_t i = 0; i < w && i < g->r->hdr->nworker_slots; i++)
		n += atomic_load(&fg_slot(g->r, i)->state) == FG_SLOT_READY;
	return n;
}

static void mput(char **b, size_t *n, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void mput(char **b, size_t *n, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	while (*b) {
		va_start(ap, fmt);
		int k = vsnprintf(*b + *n, *cap - *n, fmt, ap);
		va_end(ap);
		if (k >= 0 && (size_t)k < *cap - *n) {
			*n += (size_t)k;
			return;
		}
		char *nb = realloc(*b, *cap * 2);
		if (!nb) {   /* out of memory: the caller sees *b == NULL */
			free(*b);
			*b = NULL;
			return;
		}
		*b = nb;
		*cap *= 2;
	}
}

/* Prometheus text exposition, from one pass over the region. */
int gw_metrics(gw_t *g, struct MHD_Connection *c, body_t *body, const char *id)
{
	(void)body;
	(void)id;
	fg_region_t *r = g->r;
	uint64_t by[FG_S_NSTATES] = { 0 };
	static const double bounds[] = { 0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120 };
	uint64_t hist[9] = { 0 }, hn = 0;
	double hsum = 0;
	/* per provider: sessions whose turn's requests keep failing, and since
	 * when the oldest of them fails (CLOCK_REALTIME ns) */
	uint32_t np = g->cfg->nproviders < 64 ? g->cfg->nproviders : 64;
	uint64_t failing[64] = { 0 }, oldest[64] = { 0 };
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t cw = atomic_load_explicit(&s->ctl, memory_order_relaxed);
		uint32_t st = FG_CTL_STATE(cw);
		if (st < FG_S_NSTATES)
			by[st]++;
		fg_outage_t o;
		if (st == FG_S_RUNNING && fg_live_outage_read(r, FG_HANDLE(i, FG_CTL_SGEN(cw)), &o) &&
		    o.provider < np) {
			failing[o.provider]++;
			if (!oldest[o.provider] || o.since_ns < oldest[o.provider])
				oldest[o.provider] = o.since_ns;
		}
		if (FG_S_FINISHED(st)) {
			uint64_t f = atomic_load_explicit(&s->finished_ns, memory_order_relaxed);
			if (f > s->created_ns) {
				double d = (f - s->created_ns) / 1e9;
				hn++;
				hsum += d;
				for (int k = 0; k < 8; k++)
					if (d <= bounds[k])
						hist[k]++;
			}
		}
	}
	uint64_t steps = 0, calls = 0, retries = 0, tp = 0, tc = 0, restarts = 0;
	for (uint32_t i = 0; i < r->hdr->nslots; i++) {
		fg_slot_t *s = fg_slot(r, i);
		steps += atomic_load(&s->steps);
		calls += atomic_load(&s->llm_calls);
		retries += atomic_load(&s->llm_retries);
		tp += atomic_load(&s->tokens_prompt);
		tc += atomic_load(&s->tokens_completion);
		restarts += atomic_load(&s->restarts);
	}
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	if (b)
		b[0] = '\0';
	mput(&b, &n, &cap, "# HELP forge_sessions Sessions in the table by state.\n"
	     "# TYPE forge_sessions gauge\n");
	for (int k = 0; k < FG_S_NSTATES; k++)
		mput(&b, &n, &cap, "forge_sessions{state=\"%s\"} %llu\n", fg_state_name((uint32_t)k),
		     (unsigned long long)by[k]);
	mput(&b, &n, &cap, "# HELP forge_steps_total Checkpoints committed.\n# TYPE forge_steps_total counter\n"
	     "forge_steps_total %llu\n", (unsigned long long)steps);
	mput(&b, &n, &cap, "# HELP forge_llm_calls_total LLM replies received.\n# TYPE forge_llm_calls_total counter\n"
	     "forge_llm_calls_total %llu\n", (unsigned long long)calls);
	mput(&b, &n, &cap, "# HELP forge_llm_retries_total LLM requests retried.\n# TYPE forge_llm_retries_total counter\n"
	     "forge_llm_retries_total %llu\n", (unsigned long long)retries);
	mput(&b, &n, &cap, "# HELP forge_tokens_total Tokens reported by providers.\n# TYPE forge_tokens_total counter\n"
	     "forge_tokens_total{kind=\"prompt\"} %llu\nforge_tokens_total{kind=\"completion\"} %llu\n",
	     (unsigned long long)tp, (unsigned long long)tc);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	mput(&b, &n, &cap, "# HELP forge_llm_failing_sessions Sessions whose model turn's requests "
	     "keep failing (an outage, a rate limit; retried up to max_retries and "
	     "give_up_after_s), by provider.\n# TYPE forge_llm_failing_sessions gauge\n");
	for (uint32_t k = 0; k < np; k++)
		mput(&b, &n, &cap, "forge_llm_failing_sessions{provider=\"%s\"} %llu\n",
		     g->cfg->providers[k].name, (unsigned long long)failing[k]);
	mput(&b, &n, &cap, "# HELP forge_llm_failing_seconds How long the session failing longest "
	     "has been failing, by provider (0: none).\n# TYPE forge_llm_failing_seconds gauge\n");
	for (uint32_t k = 0; k < np; k++)
		mput(&b, &n, &cap, "forge_llm_failing_seconds{provider=\"%s\"} %.3f\n",
		     g->cfg->providers[k].name,
		     oldest[k] && wall > oldest[k] ? (wall - oldest[k]) / 1e9 : 0.0);
	/* by named agent: its sessions in the table and their tokens (a second
	 * pass over the table: only where agents are configured) */
	json_t *ag = g->cfg->nagents ? fg_inspect_agents(r) : json_object(), *av;
	const char *an;
	mput(&b, &n, &cap, "# HELP forge_agent_sessions Sessions of each named agent in the "
	     "table (running: queued, running or waiting).\n# TYPE forge_agent_sessions gauge\n");
	json_object_foreach(ag, an, av) {
		mput(&b, &n, &cap, "forge_agent_sessions{agent=\"%s\",state=\"all\"} %lld\n"
		     "forge_agent_sessions{agent=\"%s\",state=\"running\"} %lld\n", an,
		     (long long)json_integer_value(json_object_get(av, "sessions")), an,
		     (long long)json_integer_value(json_object_get(av, "running")));
	}
	mput(&b, &n, &cap, "# HELP forge_agent_tokens Tokens the sessions of each named agent in "
	     "the table have used (purged sessions drop out).\n# TYPE forge_agent_tokens gauge\n");
	json_object_foreach(ag, an, av) {
		mput(&b, &n, &cap, "forge_agent_tokens{agent=\"%s\",kind=\"prompt\"} %lld\n"
		     "forge_agent_tokens{agent=\"%s\",kind=\"completion\"} %lld\n", an,
		     (long long)json_integer_value(json_object_get(av, "prompt_tokens")), an,
		     (long long)json_integer_value(json_object_get(av, "completion_tokens")));
	}
	mput(&b, &n, &cap, "# HELP forge_agent_cost_usd What those tokens cost at their "
	     "providers' prices (llm.providers.*.price_*_per_mtok).\n"
	     "# TYPE forge_agent_cost_usd gauge\n");
	json_object_foreach(ag, an, av)
		mput(&b, &n, &cap, "forge_agent_cost_usd{agent=\"%s\"} %.6f\n", an,
		     json_real_value(json_object_get(av, "cost_usd")));
	json_decref(ag);
	mput(&b, &n, &cap, "# HELP forge_region_flushes_total Flushes of the region file (region.durability).\n"
	     "# TYPE forge_region_flushes_total counter\nforge_region_flushes_total %llu\n"
	     "# HELP forge_region_flush_seconds_total Time spent flushing the region file.\n"
	     "# TYPE forge_region_flush_seconds_total counter\nforge_region_flush_seconds_total %.6f\n"
	     "# HELP forge_region_durable_waits_total Waits for a commit to be durable (sync).\n"
	     "# TYPE forge_region_durable_waits_total counter\nforge_region_durable_waits_total %llu\n",
	     (unsigned long long)atomic_load(&g->r->hdr->syncs),
	     atomic_load(&g->r->hdr->sync_ns) / 1e9,
	     (unsigned long long)atomic_load(&g->r->hdr->sync_waits));
	mput(&b, &n, &cap, "# HELP forge_worker_restarts_total Children restarted after a death.\n"
	     "# TYPE forge_worker_restarts_total counter\nforge_worker_restarts_total %llu\n",
	     (unsigned long long)restarts);
	mput(&b, &n, &cap, "# HELP forge_workers_ready Workers running their loop.\n"
	     "# TYPE forge_workers_ready gauge\nforge_workers_ready %d\n", workers_alive(g));
	mput(&b, &n, &cap, "# HELP forge_ring_depth Hints waiting in each worker's ring.\n"
	     "# TYPE forge_ring_depth gauge\n");
	for (uint32_t i = 0; i < atomic_load(&r->hdr->cfg_workers) && i < r->hdr->nrings; i++)
		mput(&b, &n, &cap, "forge_ring_depth{ring=\"%u\"} %llu\n", i,
		     (unsigned long long)fg_ring_depth(fg_ring_ref(r, i)));
	mput(&b, &n, &cap, "# HELP forge_session_duration_seconds Submission to end, finished sessions.\n"
	     "# TYPE forge_session_duration_seconds histogram\n");
	for (int k = 0; k < 8; k++)
		mput(&b, &n, &cap, "forge_session_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[k],
		     (unsigned long long)hist[k]);
	mput(&b, &n, &cap, "forge_session_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	     "forge_session_duration_seconds_sum %.6f\nforge_session_duration_seconds_count %llu\n",
	     (unsigned long long)hn, hsum, (unsigned long long)hn);
	return reply(c, 200, "text/plain; version=0.0.4", b, NULL, NULL);
}

