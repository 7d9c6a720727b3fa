/*
 * sessions.c — the /v1/sessions API: create (with Idempotency-Key: a
 * retry with the same key gets the same session, even from a restarted
 * gateway, since the key is written into the session's log before it is
 * published), list, read, cancel.  Every read goes through a snapshot.
 */
#include "gateway/gw.h"
#include "forge/approval.h"
#include "forge/durable.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/gwreq.h"
#include "forge/inspect.h"
#include "forge/log.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/views.h"
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

/* Whether the record at idx is still the session of generation gen (one
 * test for the whole program: fg_session_valid). */
int still(gw_t *g, uint32_t idx, uint32_t gen)
{
	return fg_session_valid(g->r, FG_HANDLE(idx, gen), NULL);
}

/* ---- Idempotency-Key -------------------------------------------------
 * A client that retries POST /v1/sessions with the same Idempotency-Key
 * gets the session it created before, not a second one, even when the
 * gateway died between creating it and answering. */

static uint64_t key_hash(const char *k, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
	return h ? h : 1;
}

static int key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && !strchr("-_.:", k[i]))
			return 0;
	return 1;
}

/* From a snapshot of session h: whether its first record is a KEY equal
 * to k; 0 if so, -1 if not or if h is gone. */
static int snap_key(gw_t *g, fg_handle_t h, const char *k, size_t n)
{
	fg_snap_t sn;
	if (fg_session_snapshot(g->r, h, &sn, 2) < 0)
		return -1;
	uint32_t off = 0;
	fg_rec_t r;
	int rc = fg_rec_next(sn.log, sn.len, &off, &r) == 1 && r.type == FG_REC_KEY &&
		 r.n == n && !memcmp(r.p, k, n) ? 0 : -1;
	fg_snap_free(&sn);
	return rc;
}

static void idem_insert(gw_t *g, uint64_t hash, uint64_t handle)
{
	for (uint32_t k = 0;; k++) {
		struct idem *e = &g->idem[(hash + k) & (g->idem_cap - 1)];
		if (!e->hash) {
			e->hash = hash;
			e->handle = handle;
			g->idem_n++;
			return;
		}
	}
}

/* ---- the runs that asked for the client's tools -------------------------
 * chat.c finds the session a request's tool results belong to by the id
 * of the first call of the client's own tools in the turn that made them.
 * Every such turn of every react session is indexed (not only a pending
 * one: a retry of a continue that went through must find its session
 * too), in a table of its own beside the keys', rebuilt from the region
 * when the gateway starts or the table fills.  Entries are hints: chat.c
 * checks each against the session's log. */
static uint64_t call_hash(const char *id, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	h = (h ^ 0x01) * 1099511628211ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
	return h ? h : 1;
}

static void calls_insert(gw_t *g, uint64_t hash, uint64_t handle)
{
	for (uint32_t k = 0; k < g->calls_cap; k++) {
		struct idem *e = &g->calls[(hash + k) & (g->calls_cap - 1)];
		if (e->hash == hash && e->handle == handle)
			return;   /* (known: a reply sent again, a retry) */
		if (!e->hash) {
			e->hash = hash;
			e->handle = handle;
			g->calls_n++;
			return;
		}
	}
}

static void calls_grow(gw_t *g)
{
	struct idem *nc = calloc((size_t)g->calls_cap * 2, sizeof(*nc)), *old = g->calls;
	uint32_t oc = g->calls_cap;
	if (!nc)
		return;   /* (full: later turns go unindexed, and start anew) */
	g->calls = nc;
	g->calls_cap = oc * 2;
	g->calls_n = 0;
	for (uint32_t k = 0; k < oc; k++)
		if (old[k].hash)
			calls_insert(g, old[k].hash, old[k].handle);
	free(old);
}

/* Each client tool-call turn of session sn (its first call of the
 * client's tools, as its PARAMS record names them). */
static void calls_index(gw_t *g, const fg_snap_t *sn)
{
	uint32_t off = 0;
	fg_rec_t r;
	json_t *tools = NULL, *p = NULL;
	while (fg_rec_next(sn->log, sn->len, &off, &r) == 1) {
		if (r.type == FG_REC_PARAMS && !p) {
			p = json_loadb((const char *)r.p, r.n, 0, NULL);
			tools = json_object_get(p, "tools");
		}
		if (r.type != FG_REC_TOOLCALLS || !json_array_size(tools))
			continue;
		fg_call_t c[FG_MAX_CALLS];
		int k = fg_rec_calls(&r, c, FG_MAX_CALLS);
		for (int i = 0; i < k; i++) {
			size_t t;
			json_t *d;
			int mine = 0;
			json_array_foreach(tools, t, d) {
				const char *n = json_string_value(json_object_get(
					json_object_get(d, "function"), "name"));
				mine |= n && strlen(n) == c[i].name.n && !memcmp(n, c[i].name.p, c[i].name.n);
			}
			if (mine) {
				calls_insert(g, call_hash(c[i].id.p, c[i].id.n), sn->h);
				break;
			}
		}
	}
	json_decref(p);
}

/* From the region: every live session that carries a key, and every
 * client tool-call turn of every react session. */
void idem_rebuild(gw_t *g)
{
	memset(g->idem, 0, sizeof(*g->idem) * g->idem_cap);
	g->idem_n = 0;
	if (g->calls)
		memset(g->calls, 0, sizeof(*g->calls) * g->calls_cap);
	g->calls_n = 0;
	for (uint32_t i = 0; i < g->r->hdr->capacity; i++) {
		fg_handle_t h = fg_session_handle(g->r, i);
		fg_snap_t sn;
		if (!fg_session_valid(g->r, h, NULL) || fg_session_snapshot(g->r, h, &sn, 1) < 0)
			continue;
		uint32_t off = 0;
		fg_rec_t r;
		if (fg_rec_next(sn.log, sn.len, &off, &r) == 1 && r.type == FG_REC_KEY && r.n <= GW_KEY_MAX)
			idem_insert(g, key_hash((const char *)r.p, r.n), h);
		if (g->calls && sn.workflow == FG_WF_REACT && !sn.parent) {
			if ((g->calls_n + FG_MAX_CALLS) * 4 > g->calls_cap * 3)
				calls_grow(g);   /* threads with many client rounds */
			calls_index(g, &sn);
		}
		fg_snap_free(&sn);
	}
}

void gw_calls_add(gw_t *g, const char *id, size_t n, fg_handle_t h)
{
	pthread_mutex_lock(&g->submit_lock);
	if (g->calls) {
		if ((g->calls_n + 1) * 4 > g->calls_cap * 3)
			idem_rebuild(g);   /* drops the purged; grows when it must */
		calls_insert(g, call_hash(id, n), h);
	}
	pthread_mutex_unlock(&g->submit_lock);
}

uint32_t gw_calls_find_locked(gw_t *g, const char *id, size_t n, fg_handle_t *out, uint32_t max)
{
	uint64_t hash = call_hash(id, n);
	uint32_t k = 0;
	for (uint32_t j = 0; g->calls && j < g->calls_cap && k < max; j++) {
		struct idem *e = &g->calls[(hash + j) & (g->calls_cap - 1)];
		if (!e->hash)
			break;
		if (e->hash == hash)
			out[k++] = e->handle;
	}
	return k;
}

/* The live session created with key k, or 0. */
static uint64_t idem_find(gw_t *g, const char *k, size_t n)
{
	uint64_t hash = key_hash(k, n);
	for (uint32_t j = 0; g->idem && j < g->idem_cap; j++) {
		struct idem *e = &g->idem[(hash + j) & (g->idem_cap - 1)];
		if (!e->hash)
			return 0;
		if (e->hash != hash)
			continue;
		if (snap_key(g, e->handle, k, n) == 0)
			return e->handle;   /* (a purged or reused one is skipped) */
	}
	return 0;
}

static void idem_add(gw_t *g, const char *k, size_t n, uint64_t handle)
{
	if (!g->idem)
		return;
	if ((g->idem_n + 1) * 4 > g->idem_cap * 3)
		idem_rebuild(g);   /* drops the purged; the table holds 2x capacity */
	idem_insert(g, key_hash(k, n), handle);
}

uint64_t gw_idem_lookup(gw_t *g, const char *key)
{
	pthread_mutex_lock(&g->submit_lock);
	uint64_t h = idem_find(g, key, strlen(key));
	pthread_mutex_unlock(&g->submit_lock);
	return h;
}

int gw_idem_submit(gw_t *g, fg_submit_t *p, const char *key, fg_handle_t *h, uint64_t *old)
{
	pthread_mutex_lock(&g->submit_lock);
	*old = key ? idem_find(g, key, strlen(key)) : 0;
	int e = 0;
	if (!*old) {
		p->key = key;
		p->keylen = key ? strlen(key) : 0;
		e = fg_session_submit(&g->a, p, h);
		if (e == 0 && key)
			idem_add(g, key, strlen(key), *h);
	}
	pthread_mutex_unlock(&g->submit_lock);
	return e;
}

/* Whether session h was made with key from the same request as p: its
 * workflow, and the records it began with (its system prompt and prompt;
 * an agent's records, or a chat's history, in p->recs).  Not its limits
 * nor its provider: a default of the configuration, reloaded since, would
 * make a retry another request. */
int gw_same_submit(gw_t *g, fg_handle_t h, const char *key, const fg_submit_t *p)
{
	fg_snap_t sn;
	if (fg_session_snapshot(g->r, h, &sn, 1) < 0)
		return 0;
	uint32_t off = 0;
	fg_rec_t r;
	fg_buf_t b = { NULL, 0, 0, 0, 0xffffffffu, 1, 0 };
	if (!p->recs) {
		if (p->system && *p->system)
			fg_buf_rec(&b, FG_REC_SYSTEM, p->system, strlen(p->system));
		fg_buf_rec(&b, FG_REC_USER, p->prompt ? p->prompt : "",
			   p->prompt ? strlen(p->prompt) : 0);
	}
	const uint8_t *want = p->recs ? p->recs : b.p;
	uint32_t wn = p->recs ? p->recs_n : b.n;
	int same = !b.oom && sn.workflow == p->workflow &&
		   fg_rec_next(sn.log, sn.len, &off, &r) == 1 && r.type == FG_REC_KEY &&
		   r.n == strlen(key) && !memcmp(r.p, key, r.n) &&
		   (uint64_t)off + wn <= sn.len && !memcmp(sn.log + off, want, wn);
	free(b.p);
	fg_snap_free(&sn);
	return same;
}


/* What a failed fg_session_submit() (e < 0) tells the client: the status,
 * into msg the reason, naming the setting that raises a limit, and into
 * *param the field at fault or NULL.  what: the text that was too long, and
 * field its field ("prompt", "messages"; NULL: none). */
unsigned gw_submit_error(gw_t *g, int e, const char *what, const char *field,
			 const char **param, char *msg, size_t n)
{
	*param = NULL;
	if (e == -ENOSPC || e == -EBUSY) {
		snprintf(msg, n, "the session table is full (%u sessions: region.sessions)",
			 g->r->hdr->capacity);
		return 503;
	}
	if (e == -E2BIG) {
		*param = field;
		snprintf(msg, n, "%s longer than a session may hold (%llu bytes: "
			 "region.session_max_bytes)", what, (unsigned long long)fg_log_max(g->r));
		return 400;
	}
	if (e == -EDQUOT || e == -ENOMEM) {
		snprintf(msg, n, "%s", e == -EDQUOT ? "no space left on the region's file system" :
			 "out of memory");
		return 503;
	}
	snprintf(msg, n, "submit failed: %s", strerror(-e));
	return 500;
}
int gw_post_session(gw_t *g, struct MHD_Connection *c, body_t *b, const char *unused)
{
	(void)unused;
	fg_gwreq_t q;
	if (fg_gwreq_session(b->p, b->n, g->cfg, &q) < 0)
		return refuse(c, &q);
	int rc;
	fg_submit_t p = q.sub;
	fg_handle_t h;
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	if (gw_key_refused(g, c, key, 1, &rc)) {
		fg_gwreq_free(&q);
		return rc;
	}
	uint64_t old = 0;
	int e = gw_idem_submit(g, &p, key, &h, &old);
	/* region.durability: sync: acknowledged only once durable (a replay
	 * too: the first request may still be waiting for its flush) */
	int fe = e == 0 ? fg_durable_wait(g->r, g->a.slot) : 0;
	if (fe < 0) {
		rc = reply_error(c, 503, NULL, "the session could not be made durable (flushing "
				 "the region failed: %s)", strerror(-fe));
	} else if (old) {
		char id[FG_ID_LEN + 1], loc[80];
		fg_id_format(g->r, old, id);
		if (!gw_same_submit(g, old, key, &p)) {
			rc = reply_error(c, 409, "Idempotency-Key", "Idempotency-Key %.128s was used "
					 "for a different request (session %s)", key, id);
		} else {
			snprintf(loc, sizeof(loc), "/v1/sessions/%s", id);
			char *s = json_dumps(json_pack("{s:s}", "id", id), JSON_COMPACT);
			rc = reply2(c, 200, "application/json", s, "Location", loc,
				    "Idempotent-Replayed", "true");
		}
	} else if (e < 0) {
		char msg[300];
		const char *param;
		unsigned st = gw_submit_error(g, e, "prompt and system are", "prompt", &param, msg,
					      sizeof(msg));
		rc = reply_error(c, st, param, "%s", msg);
	} else {
		char id[FG_ID_LEN + 1], loc[80];
		fg_id_format(g->r, h, id);
		snprintf(loc, sizeof(loc), "/v1/sessions/%s", id);
		char *s = json_dumps(json_pack("{s:s}", "id", id), JSON_COMPACT);
		rc = reply(c, 201, "application/json", s, "Location", loc);
	}
	fg_gwreq_free(&q);
	return rc;
}

/*
 * POST /v1/sessions/batch: up to http.max_batch sessions in one request,
 * each an object as POST /v1/sessions's body; 201 {"data": [{"id"}, ...]}
 * in their order.  The whole batch is checked before any is queued, and
 * region.durability: sync flushes once for all of them.  With an
 * Idempotency-Key K, item i is made with the key "K#i" ("K#i$" the
 * last; not keys a client can send: '#' is refused), so a retry of a batch
 * whose answer was lost, or that stopped part-way (the table filled, the
 * gateway died), makes only those not made yet; a batch that differs from
 * the one first sent with K is 409 before anything is queued.  A batch
 * stopped part-way answers the error with the ids of those queued
 * ("data": the first ones).  Its helpers first, then gw_post_batch.
 */

/* Item i's key of a batch of n sent with key: "KEY#i", the last "KEY#i$"
 * (so that a batch sent again with the key, longer or shorter than the
 * first, is told apart from its retry). */
static void item_key(char *k, size_t kn, const char *key, size_t i, size_t n)
{
	snprintf(k, kn, "%s#%zu%s", key, i, i + 1 == n ? "$" : "");
}

/* Whether key made a batch. */
static int key_batched(gw_t *g, const char *key)
{
	char k[GW_KEY_MAX + 1];
	item_key(k, sizeof(k), key, 0, 2);
	if (gw_idem_lookup(g, k))
		return 1;
	item_key(k, sizeof(k), key, 0, 1);
	return gw_idem_lookup(g, k) != 0;
}

int gw_key_refused(gw_t *g, struct MHD_Connection *c, const char *key, int single, int *rc)
{
	if (key && !key_ok(key))
		*rc = reply_error(c, 400, "Idempotency-Key", "Idempotency-Key must be 1 to 128 "
				  "letters, digits, '-', '_', '.' or ':'");
	else if (key && single && key_batched(g, key))
		*rc = reply_error(c, 409, "Idempotency-Key", "Idempotency-Key %.128s was used for a "
				  "batch (POST /v1/sessions/batch)", key);
	else
		return 0;
	return 1;
}

/* What batch_item needs: the gateway and the batch's key (or NULL). */
struct batch_ctx {
	gw_t *g;
	const char *key;
};

/* Each well-formed item of a batch, before any is queued (fg_gwreq_batch's
 * check): that it fits a session (region.session_max_bytes), and, with a
 * key, that the batch is the one first sent with it (a retry) or new. */
static unsigned batch_item(void *arg, size_t i, size_t n, fg_gwreq_t *it, fg_gwreq_t *q)
{
	struct batch_ctx *x = arg;
	gw_t *g = x->g;
	const char *key = x->key;
	char k[GW_KEY_MAX + 1];
	uint64_t old = 0;
	q->param = "Idempotency-Key";
	if (key && i == 0 && gw_idem_lookup(g, key)) {
		snprintf(q->error, sizeof(q->error), "Idempotency-Key %.128s was used for a single "
			 "session, not a batch", key);
		return 409;
	}
	if (key && i == 0) {   /* (a longer first batch made KEY#n-1, not KEY#n-1$) */
		item_key(k, sizeof(k), key, n - 1, n + 1);
		if (gw_idem_lookup(g, k)) {
			snprintf(q->error, sizeof(q->error), "Idempotency-Key %.128s was used for a "
				 "longer batch", key);
			return 409;
		}
	}
	if (key) {
		item_key(k, sizeof(k), key, i, n);
		it->sub.key = k;
		it->sub.keylen = strlen(k);
	}
	if (fg_submit_bytes(g->r, &it->sub) > fg_log_max(g->r)) {
		snprintf(q->error, sizeof(q->error), "sessions[%zu]: prompt and system are longer "
			 "than a session may hold (%llu bytes: region.session_max_bytes); none was "
			 "queued", i, (unsigned long long)fg_log_max(g->r));
		snprintf(q->param_buf, sizeof(q->param_buf), "sessions[%zu].prompt", i);
		q->param = q->param_buf;
		return 400;
	}
	if (key && (old = gw_idem_lookup(g, k)) && !gw_same_submit(g, old, k, &it->sub)) {
		snprintf(q->error, sizeof(q->error), "Idempotency-Key %.128s was used for a "
			 "different batch (its sessions[%zu] differs)", key, i);
		return 409;
	}
	if (key && i + 1 < n) {   /* (a shorter first batch ended with KEY#i$) */
		item_key(k, sizeof(k), key, i, i + 1);
		if (gw_idem_lookup(g, k)) {
			snprintf(q->error, sizeof(q->error), "Idempotency-Key %.128s was used for a "
				 "shorter batch (of %zu sessions)", key, i + 1);
			return 409;
		}
	}
	return 0;
}

int gw_post_batch(gw_t *g, struct MHD_Connection *c, body_t *b, const char *unused)
{
	(void)unused;
	fg_gwreq_t q;
	size_t n, i, made = 0;
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	int rc;
	if (gw_key_refused(g, c, key, 0, &rc))
		return rc;
	struct batch_ctx x = { g, key };
	if (fg_gwreq_batch(b->p, b->n, g->cfg, &q, &n, batch_item, &x) < 0) {
		if (q.status != 409)
			return refuse(c, &q);
		fg_gwreq_free(&q);
		return reply_error(c, 409, q.param, "%s", q.error);
	}
	unsigned st = 0;
	char msg[sizeof(q.error)], pb[48], k[GW_KEY_MAX + 1];
	/* the reply is written as it goes: {"data":[{"id":"…"},…]} (ids are
	 * hex: nothing to escape), the error spliced in before data if any */
	const size_t item = sizeof("{\"id\":\"\"},") - 1 + FG_ID_LEN;
	char *out = malloc(sizeof("{\"data\":[]}") + n * item);
	size_t o = 9;   /* (after {"data":[ ) */
	const char *param = NULL;
	if (!out) {
		rc = reply_oom(c);
		goto out;
	}
	for (i = 0; i < n; i++) {
		fg_gwreq_t it;
		int e = fg_gwreq_item(g->cfg, &q, i, &it);
		fg_handle_t h;
		uint64_t old = 0;
		if (e < 0) {   /* (checked already: only out of memory) */
			st = it.status;
			snprintf(msg, sizeof(msg), "%s", it.error);
		} else {
			if (key)
				item_key(k, sizeof(k), key, i, n);
			fg_submit_t p = it.sub;
			e = gw_idem_submit(g, &p, key ? k : NULL, &h, &old);
			if (e < 0) {
				st = gw_submit_error(g, e, "prompt and system are", "prompt", &param, msg,
						     sizeof(msg));
			} else if (old && !gw_same_submit(g, old, k, &p)) {
				st = 409;   /* (another batch with the key, at once) */
				param = "Idempotency-Key";
				snprintf(msg, sizeof(msg), "Idempotency-Key %.128s was used for a "
					 "different batch (its sessions[%zu] differs)", key, i);
			} else {
				made += !old;
				memcpy(out + o, ",{\"id\":\"" + (o == 9), 8 - (o == 9));
				o += 8 - (o == 9);
				fg_id_format(g->r, old ? old : h, out + o);
				o += FG_ID_LEN;
				memcpy(out + o, "\"}", 2);
				o += 2;
			}
		}
		fg_gwreq_free(&it);
		if (st)
			break;
	}
	memcpy(out, "{\"data\":[", 9);
	memcpy(out + o, "]}", 3);
	/* region.durability: sync: one flush for the whole batch (a replay
	 * too: the first request may still be waiting for its flush) */
	int fe = fg_durable_wait(g->r, g->a.slot);
	char *s = NULL, full[sizeof(msg) + 200];
	if (fe < 0) {
		st = 503;
		param = NULL;
		snprintf(full, sizeof(full), "the sessions could not be made durable (flushing the "
			 "region failed: %s): queued: %zu (their ids are in data), which a power "
			 "loss may take", strerror(-fe), i);
	} else if (st) {
		if (param && strcmp(param, "Idempotency-Key")) {
			snprintf(pb, sizeof(pb), "sessions[%zu].%s", i, param);
			param = pb;
		}
		snprintf(full, sizeof(full), "sessions[%zu]: %s; queued before it: %zu (their ids are in "
			 "data); not queued: it and the %zu after it", i, msg, i, n - i - 1);
	}
	if (st) {
		json_t *j = json_pack("{s:{s:o,s:s,s:s?}}", "error", "message",
				      fg_json_text(full, strlen(full)), "type", st >= 500 ?
				      "server_error" : "invalid_request_error", "param", param);
		char *e = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (e && (s = malloc(strlen(e) + o + 3)))   /* {"error":{…},"data":[…]} */
			sprintf(s, "%.*s,%s", (int)strlen(e) - 1, e, out + 1);
		free(e);
		rc = reply(c, st, "application/json", s, st == 503 ? "Retry-After" : NULL, "1");
	} else {
		s = out;
		out = NULL;
		rc = made ? reply(c, 201, "application/json", s, NULL, NULL) :
			    reply(c, 200, "application/json", s, "Idempotent-Replayed", "true");
	}
	free(out);
out:
	fg_gwreq_free(&q);
	return rc;
}

/* Parses an id; returns its index, or UINT32_MAX if no such session. */
uint32_t lookup(gw_t *g, const char *id)
{
	fg_handle_t h;
	if (fg_id_parse(g->r, id, &h) < 0)
		return UINT32_MAX;
	uint32_t idx = FG_HANDLE_IDX(h);
	if (idx >= g->r->hdr->capacity || !still(g, idx, FG_HANDLE_GEN(h)))
		return UINT32_MAX;
	return idx;
}

int gw_list_sessions(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	(void)id;
	const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "state");
	const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	const char *cur = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
	int want = -1;
	long limit = 100;
	unsigned long start = 0;
	char *end;
	if (st && (want = fg_state_parse(st)) < 0)
		return reply_error(c, 400, "state", "state \"%.50s\" is not one of queued, running, "
				   "waiting, done, failed, cancelled", st);
	if (lim && ((limit = strtol(lim, &end, 10)) < 1 || limit > 1000 || *end))
		return reply_error(c, 400, "limit", "limit must be an integer in [1, 1000]");
	if (cur && (!*cur || (start = strtoul(cur, &end, 16), *end) || start > g->r->hdr->capacity))
		return reply_error(c, 400, "cursor", "cursor is not one this API returned");
	json_t *arr = json_array();
	uint32_t i;
	for (i = (uint32_t)start; i < g->r->hdr->capacity && json_array_size(arr) < (size_t)limit; i++) {
		uint32_t s = FG_CTL_STATE(atomic_load(&fg_sess(g->r, i)->ctl));
		if (FG_S_NONE(s) || (want >= 0 && (int)s != want))
			continue;
		json_t *x = fg_inspect_session(g->r, fg_session_handle(g->r, i), 0, g->cfg);
		if (x)   /* (purged while it was read: left out) */
			json_array_append_new(arr, x);
	}
	json_t *j = json_pack("{s:o}", "data", arr);
	if (i < g->r->hdr->capacity) {
		char next[16];
		snprintf(next, sizeof(next), "%x", i);
		json_object_set_new(j, "next_cursor", json_string(next));
	} else {
		json_object_set_new(j, "next_cursor", json_null());
	}
	return reply_json(c, 200, j);
}

int gw_delete_session(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	fg_handle_t h;
	uint32_t st;
	int e = -ENOENT;
	if (fg_id_parse(g->r, id, &h) == 0) {
		/* the actor is this process's one slot: one thread at a time */
		pthread_mutex_lock(&g->submit_lock);
		e = fg_session_cancel(g->r, &g->a, h, &st);
		pthread_mutex_unlock(&g->submit_lock);
	}
	if (e == -ENOENT)
		return reply_error(c, 404, "id", "no session %.40s", id);
	if (e == -EALREADY)
		return reply_error(c, 409, NULL, "session %.40s already ended (%s)", id,
				   fg_state_name(st));
	int fe = fg_durable_wait(g->r, g->a.slot);
	if (fe < 0)
		return reply_error(c, 503, NULL, "the cancel could not be made durable (flushing "
				   "the region failed: %s)", strerror(-fe));
	/* a running one ends within milliseconds: wait for it briefly */
	uint64_t cw;
	for (int i = 0; i < 200 && fg_session_valid(g->r, h, &cw) &&
			FG_CTL_STATE(cw) == FG_S_RUNNING; i++)
		usleep(1000);
	json_t *j = fg_inspect_session(g->r, h, 0, g->cfg);
	if (!j)
		return reply_error(c, 404, "id", "no session %.40s", id);
	return reply_json(c, 200, j);
}

int gw_get_session(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	fg_handle_t h;
	json_t *j = fg_id_parse(g->r, id, &h) < 0 ? NULL : fg_inspect_session(g->r, h, 1, g->cfg);
	if (!j)   /* no such session, or purged while it was read */
		return reply_error(c, 404, "id", "no session %.40s", id);
	return reply_json(c, 200, j);
}

/*
 * A finished session takes its next records (a user message, or RESUME)
 * and runs again from its whole log (fg_session_continue).  Checked first
 * against the session's conversation, so a message that could not follow
 * it is refused (409) rather than failing the session.
 */
static int continue_with(gw_t *g, struct MHD_Connection *c, const char *id, const uint8_t *rec,
			 uint32_t n, int resume)
{
	fg_handle_t h;
	char err[300] = "";
	int replayed;
	if (fg_id_parse(g->r, id, &h) < 0)
		return reply_error(c, 404, "id", "no session %.40s", id);
	/* Idempotency-Key: kept in the log beside the message, so a retry
	 * after a lost 202 finds it there and adds nothing */
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	int rc;
	if (gw_key_refused(g, c, key, 0, &rc))
		return rc;
	pthread_mutex_lock(&g->submit_lock);   /* (the actor: one thread at a time) */
	int e = fg_thread_continue(&g->a, h, rec, n, resume, key, &replayed, err, sizeof(err));
	pthread_mutex_unlock(&g->submit_lock);
	if (e == -ENOMEM)
		return reply_oom(c);
	if (e == -ENOENT)
		return reply_error(c, 404, "id", "no session %.40s", id);
	if (e == -EPERM || e == -EBUSY || e == -EINVAL || e == -ESTALE)
		return reply_error(c, 409, NULL, "session %.40s: %s", id, err);
	if (e == -E2BIG)
		return reply_error(c, 413, NULL, "session %.40s is full: %s", id, err);
	if (e < 0)
		return reply_error(c, 503, NULL, "session %.40s: %s", id, err);
	int fe = fg_durable_wait(g->r, g->a.slot);
	if (fe < 0)
		return reply_error(c, 503, NULL, "the %s could not be made durable (flushing the "
				   "region failed: %s)", resume ? "resume" : "message", strerror(-fe));
	json_t *j = fg_inspect_session(g->r, h, 0, g->cfg);
	if (!j)
		return reply_error(c, 404, "id", "no session %.40s", id);
	char loc[80];
	snprintf(loc, sizeof(loc), "/v1/sessions/%.40s", id);
	if (replayed)
		return reply2(c, 200, "application/json", json_dumps(j, JSON_COMPACT), "Location", loc,
			      "Idempotent-Replayed", "true");
	return reply(c, 202, "application/json", json_dumps(j, JSON_COMPACT), "Location", loc);
}

int gw_post_message(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	fg_gwreq_t q;
	if (fg_gwreq_message(b->p, b->n, &q) < 0)
		return refuse(c, &q);
	int rc = continue_with(g, c, id, q.recs.p, q.recs.n, 0);
	fg_gwreq_free(&q);
	return rc;
}

int gw_resume(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	uint8_t rec[FG_REC_HDR];
	fg_buf_t r = { rec, 0, sizeof(rec), 0 };
	fg_buf_rec(&r, FG_REC_RESUME, "", 0);
	return continue_with(g, c, id, rec, r.n, 1);
}

/*
 * POST /v1/sessions/{id}/fork: a new session from a past point of another
 * (its first "at" messages, then "content" as a user message), which runs
 * on from there; the first is left as it is.  Idempotency-Key as on POST
 * /v1/sessions.
 */
int gw_fork(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	fg_gwreq_t q;
	if (fg_gwreq_fork(b->n ? b->p : "{}", b->n ? b->n : 2, &q) < 0)
		return refuse(c, &q);
	fg_handle_t src, h;
	fg_buf_t rb = { 0 };
	fg_submit_t p;
	char err[300] = "";
	int rc;
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	fg_rec_t u = { 0 };
	uint32_t off = 0;
	if (q.recs.n)
		fg_rec_next(q.recs.p, q.recs.n, &off, &u);
	int e = fg_id_parse(g->r, id, &src) < 0 ? -ENOENT :
		fg_fork_prepare(g->r, src, q.at, u.p ? (const char *)u.p : NULL, u.n, &rb, &p, err,
				sizeof(err));
	uint64_t old = 0;
	if (e == -ENOENT) {
		rc = reply_error(c, 404, "id", "no session %.40s", id);
	} else if (gw_key_refused(g, c, key, 1, &rc)) {
		/* (answered: rc) */
	} else if (e == -ENOMEM) {
		rc = reply_oom(c);
	} else if (e == -E2BIG) {
		rc = reply_error(c, 413, NULL, "session %.40s: %s", id, err);
	} else if (e < 0) {
		rc = reply_error(c, e == -ERANGE ? 400 : 409, e == -ERANGE ? "at" : NULL,
				 "session %.40s cannot fork there: %s", id, err);
	} else if ((e = gw_idem_submit(g, &p, key, &h, &old)) < 0) {
		char msg[300];
		const char *param;
		unsigned st = gw_submit_error(g, e, "the conversation is", NULL, &param, msg,
					      sizeof(msg));
		rc = reply_error(c, st, param, "%s", msg);
	} else if (old && !gw_same_submit(g, old, key, &p)) {
		char oid[FG_ID_LEN + 1];
		fg_id_format(g->r, old, oid);
		rc = reply_error(c, 409, "Idempotency-Key", "Idempotency-Key %.128s was used for a "
				 "different request (session %s)", key, oid);
	} else if ((e = fg_durable_wait(g->r, g->a.slot)) < 0) {
		rc = reply_error(c, 503, NULL, "the session could not be made durable (flushing "
				 "the region failed: %s)", strerror(-e));
	} else {
		char nid[FG_ID_LEN + 1], loc[80];
		fg_id_format(g->r, old ? old : h, nid);
		snprintf(loc, sizeof(loc), "/v1/sessions/%s", nid);
		json_t *j = fg_inspect_session(g->r, old ? old : h, 0, g->cfg);
		if (!j)
			j = json_pack("{s:s}", "id", nid);
		json_object_set_new(j, "forked_from", json_string(id));
		rc = reply2(c, old ? 200 : 201, "application/json", json_dumps(j, JSON_COMPACT),
			    "Location", loc, old ? "Idempotent-Replayed" : NULL, "true");
		json_decref(j);
	}
	free(rb.p);
	fg_gwreq_free(&q);
	return rc;
}

/* (fg_approval_decide's gone) */
static int client_gone(void *c)
{
	return gw_client_gone(c);
}

/*
 * POST /v1/sessions/{id}/approval {decision, reason?, arguments?, answer?,
 * call_id?}: a person's answer to a call that waits for one (an agent's
 * approve: tool, or its ask_human).  202 with the decision as recorded and
 * the session, queued to act on it; the same answer again (a retry) is 200
 * with Idempotent-Replayed, another answer to a decided call 409.
 */
int gw_approval(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	fg_handle_t h;
	char err[300] = "";
	json_error_t je;
	if (fg_id_parse(g->r, id, &h) < 0)
		return reply_error(c, 404, "id", "no session %.40s", id);
	json_t *in = b->n ? json_loadb(b->p, b->n, 0, &je) : NULL;
	if (!json_is_object(in)) {
		json_decref(in);
		return reply_error(c, 400, NULL, "the body must be a JSON object {\"call_id\": ..., "
				   "\"decision\": \"approve\" | \"reject\" | \"edit\" | \"answer\", "
				   "...}%s%s", in || !b->n ? "" : ": ", in || !b->n ? "" : je.text);
	}
	const char *k;
	json_t *val;
	json_object_foreach(in, k, val) {
		if (strcmp(k, "decision") && strcmp(k, "reason") && strcmp(k, "arguments") &&
		    strcmp(k, "answer") && strcmp(k, "call_id")) {
			int rc = reply_error(c, 400, k, "unknown field \"%.40s\" (decision, reason, "
					     "arguments, answer, call_id)", k);
			json_decref(in);
			return rc;
		}
	}
	/* named, always: a retry of an answer whose reply was lost must not
	 * answer the next question the model asked meanwhile */
	json_t *cid = json_object_get(in, "call_id");
	if (!json_is_string(cid)) {
		json_decref(in);
		return reply_error(c, 400, "call_id", "call_id is required (a string: the call "
				   "that waits, as GET /v1/sessions/%.40s lists it in waiting_for)", id);
	}
	json_t *rec = NULL;
	/* (a session still running its turn takes it once it waits: for
	 * http.idle_timeout_s at most, as long as a quiet connection lives) */
	int e = fg_approval_decide(&g->a, &g->submit_lock, h, json_string_value(cid), in, "api",
				   (long)g->cfg->http_idle_timeout_s * 1000, client_gone, c, &rec, err,
				   sizeof(err));
	json_decref(in);
	if (e == -ECANCELED) {   /* (nobody to answer: the connection is closed) */
		log_info("an answer to session %.40s was not given: %s", id, err);
		return MHD_NO;
	}
	if (e == -ENOMEM)
		return reply_oom(c);
	if (e == -ENOENT)
		return reply_error(c, 404, "id", "no session %.40s", id);
	if (e == -ESRCH)
		return reply_error(c, 404, "call_id", "session %.40s: %s", id, err);
	if (e == -EINVAL)
		return reply_error(c, 400, !strncmp(err, "arguments ", 10) ? "arguments" :
				   !strncmp(err, "answer ", 7) ? "answer" : !strncmp(err, "reason ", 7) ?
				   "reason" : "decision", "session %.40s: %s", id, err);   /* (whose
				   * message begins with the field's name) */
	if (e == -E2BIG)
		return reply_error(c, 413, NULL, "session %.40s is full: %s", id, err);
	if (e == -EBUSY)   /* (503: with Retry-After) */
		return reply_error(c, 503, NULL, "session %.40s: it is still running, not waiting "
				   "(an answer waits for it %u s at most: http.idle_timeout_s, or "
				   "until a drain): answer again later", id, g->cfg->http_idle_timeout_s);
	if (e < 0)
		return reply_error(c, 409, NULL, "session %.40s: %s", id, err);
	int fe = e == 0 ? fg_durable_wait(g->r, g->a.slot) : 0;
	if (fe < 0) {
		json_decref(rec);
		return reply_error(c, 503, NULL, "the answer could not be made durable (flushing "
				   "the region failed: %s)", strerror(-fe));
	}
	json_t *j = fg_inspect_session(g->r, h, 0, g->cfg);
	if (!j) {
		json_decref(rec);
		return reply_error(c, 404, "id", "no session %.40s", id);
	}
	json_object_set_new(j, "decision", rec);
	char loc[80];
	snprintf(loc, sizeof(loc), "/v1/sessions/%.40s", id);
	if (e == 1)
		return reply2(c, 200, "application/json", json_dumps(j, JSON_COMPACT), "Location", loc,
			      "Idempotent-Replayed", "true");
	return reply(c, 202, "application/json", json_dumps(j, JSON_COMPACT), "Location", loc);
}
