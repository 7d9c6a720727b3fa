/*
 * sse.c — GET /v1/sessions/{id}/events: one event per committed
 * conversation record (id: its ordinal, from 1), then "event: end" with
 * the final state.  The events come from the session's checkpoint in the
 * region, so a client that reconnects with Last-Event-ID, to this gateway
 * or to a restarted one, gets exactly the events after that id.  Each
 * stream has its own thread (libmicrohttpd's thread-per-connection mode);
 * each read is a snapshot, so a purged session ends its stream.
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

/* ---- Server-Sent Events -------------------------------------------------
 * GET /v1/sessions/{id}/events: one event per committed conversation record
 * (id: its ordinal, from 1), then "event: end" with the final state.  With
 * a streaming provider, "event: delta" (no id) carries the text of the
 * model turn under way as it comes ({"text", "message": the ordinal its
 * message will have}); the committed message follows as usual.  The
 * events come from the session's checkpoint in the region, so a client that
 * reconnects with Last-Event-ID — to this gateway or to a restarted one —
 * gets exactly the events after that id.  Each stream has its own thread
 * (libmicrohttpd's thread-per-connection mode), so a thousand subscribers
 * do not hold other requests back; a client that went away is noticed
 * within 100 ms (POLLRDHUP on its socket: gw_client_gone). */
typedef struct sse {
	gw_t *g;
	struct MHD_Connection *c;
	uint32_t idx, gen;
	uint32_t next;          /* ordinal of the next event to send (from 1) */
	uint32_t synth_step;
	int ended;
	uint64_t last_write_ns;
	uint32_t live_seq;      /* live text sent: of the turn after checkpoint */
	uint64_t live_sent;     /* live_seq, this many bytes                    */
	int live_any;
	uint64_t asked_ckpt;    /* the checkpoint whose waits were announced    */
	char *pend;             /* an event bigger than a read's buffer: the
				 * rest of it, sent by the next reads            */
	size_t pend_n, pend_off;
} sse_t;

static size_t ev_put(char *buf, size_t max, size_t n, uint32_t id, const char *event, json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	json_decref(data);   /* (every caller hands its reference over) */
	if (!d)
		return n;   /* out of memory: next call */
	/* (id 0: an event that is not part of the record, such as live text:
	 * no id, so Last-Event-ID is the last committed message's) */
	int k = id ? snprintf(buf + n, max - n, "id: %u\nevent: %s\ndata: %s\n\n", id, event, d)
		   : snprintf(buf + n, max - n, "event: %s\ndata: %s\n\n", event, d);
	free(d);
	if (k < 0 || (size_t)k >= max - n)
		return n;   /* does not fit: next call */
	return n + (size_t)k;
}

static size_t pend_copy(sse_t *e, char *buf, size_t max)
{
	size_t k = e->pend_n - e->pend_off;
	if (k > max)
		k = max;
	memcpy(buf, e->pend + e->pend_off, k);
	e->pend_off += k;
	if (e->pend_off == e->pend_n) {
		free(e->pend);
		e->pend = NULL;
	}
	return k;
}

/* An event that does not fit a read's whole buffer (a long answer, a big
 * tool result): formatted whole, its first part in buf now, the rest by
 * the next reads.  0 if memory ran out (the next read tries again). */
static size_t ev_pend(sse_t *e, char *buf, size_t max, uint32_t id, const char *event,
		      json_t *data)
{
	char *d = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	size_t need = d ? strlen(d) + strlen(event) + 48 : 0;
	char *p = d ? malloc(need) : NULL;
	if (!p) {
		free(d);
		return 0;
	}
	int k = id ? snprintf(p, need, "id: %u\nevent: %s\ndata: %s\n\n", id, event, d)
		   : snprintf(p, need, "event: %s\ndata: %s\n\n", event, d);
	free(d);
	e->pend = p;
	e->pend_n = (size_t)k;
	e->pend_off = 0;
	return pend_copy(e, buf, max);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	sse_t *e = cls;
	gw_t *g = e->g;
	for (;;) {
		if (e->pend) {
			e->last_write_ns = fg_now_ns();
			return (ssize_t)pend_copy(e, buf, max);
		}
		if (e->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* read before the snapshot: a commit after it rings a later seq */
		uint32_t seq = fg_bell_seq(g->r, e->idx);
		/* one snapshot, re-validated after the copy: a record purged and
		 * reused meanwhile ends the stream, never shows another session */
		fg_snap_t sn;
		if (fg_session_snapshot(g->r, FG_HANDLE(e->idx, e->gen), &sn, 1) < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;   /* purged or reused */
		uint32_t st = FG_CTL_STATE(sn.ctl);
		size_t n = 0;
		if (sn.workflow == FG_WF_SYNTHETIC) {
			while (e->synth_step < sn.st.step && e->next <= sn.st.step) {
				uint32_t k = e->next;
				size_t m = ev_put(buf, max, n, k, "step", json_pack("{s:i}", "step", (int)k));
				if (m == n)
					break;
				n = m;
				e->next++;
				e->synth_step = k;
			}
		} else {
			json_t *all = fg_conv_json(sn.log, sn.len, NULL, NULL), *msgs, *in;
			/* (the OpenAI messages only: forge's own records are for
			 * operators, in GET /v1/sessions/{id}'s "internal") */
			fg_conv_split(all, &msgs, &in);
			json_decref(all);
			json_decref(in);
			size_t total = json_array_size(msgs);
			while (e->next <= total) {
				json_t *msg = json_array_get(msgs, e->next - 1);
				size_t m = ev_put(buf, max, n, e->next, "message", json_incref(msg));
				if (m == n && n == 0)   /* (alone bigger than the buffer) */
					m = ev_pend(e, buf, max, e->next, "message", json_incref(msg));
				if (m == n)
					break;
				n = m;
				e->next++;
				if (e->pend)
					break;
			}
			json_decref(msgs);
		}
		if (n == 0 && !FG_S_FINISHED(st) && sn.workflow != FG_WF_SYNTHETIC) {
			/* live text of the turn under way (a streaming provider):
			 * "delta" events with no id, beside the committed messages */
			char text[4096];
			uint64_t w;
			uint32_t att;
			size_t cap = max > 1024 ? (max - 1024) / 6 : 0;
			if (cap > sizeof(text))
				cap = sizeof(text);
			int64_t k = fg_live_read(g->r, FG_HANDLE(e->idx, e->gen), &w, &att,
						 e->live_sent, text, cap);
			if (k >= 0 && (!e->live_any || FG_CKPT_SEQ(w) != e->live_seq)) {
				e->live_any = 1;
				e->live_seq = FG_CKPT_SEQ(w);
				e->live_sent = 0;
				k = fg_live_read(g->r, FG_HANDLE(e->idx, e->gen), &w, &att, 0, text, cap);
				if (FG_CKPT_SEQ(w) != e->live_seq)
					k = 0;
			}
			size_t b = k > 0 ? (size_t)k : 0;
			if (b == cap && ((uint8_t)text[b - 1] & 0x80)) {   /* whole characters */
				while (b > 0 && ((uint8_t)text[b - 1] & 0xc0) == 0x80)
					b--;
				if (b > 0)
					b--;
			}
			if (b > 0) {
				size_t m = ev_put(buf, max, n, 0, "delta", json_pack("{s:s%,s:i}", "text",
						  text, b, "message", (int)e->next));
				if (m > n) {
					n = m;
					e->live_sent += b;
				} else {
					e->live_sent += (uint64_t)k;   /* (not UTF-8: the commit carries it) */
				}
			}
		}
		if (n == 0 && st == FG_S_WAITING && sn.workflow == FG_WF_REACT &&
		    sn.ckpt != e->asked_ckpt) {
			/* waiting for a person: "approval" (no id) with the calls
			 * that wait, once per stream and question */
			json_t *p = fg_approval_pending(&sn);
			size_t np = json_array_size(p);
			if (np)
				n = ev_put(buf, max, 0, 0, "approval", json_pack("{s:o}", "waiting_for", p));
			else
				json_decref(p);
			if (n > 0 || np == 0)
				e->asked_ckpt = sn.ckpt;   /* (else: it did not fit, next call) */
		}
		if (n == 0 && FG_S_FINISHED(st)) {
			json_t *fin = fg_inspect_snap(&sn, 0, g->cfg);
			if (fin) {
				/* no id: a thread's next message will take e->next, and
				 * a client that reconnects from "end" must get it */
				n = ev_put(buf, max, 0, 0, "end", json_incref(fin));
				if (n == 0)
					n = ev_pend(e, buf, max, 0, "end", json_incref(fin));
				json_decref(fin);
				e->ended = n > 0;
			}
		}
		fg_snap_free(&sn);
		/* region.durability: sync: nothing is told before it is durable */
		int fe = n > 0 ? fg_durable_wait(g->r, g->a.slot) : 0;
		if (fe < 0) {   /* not durable: not told (the stream ends in error) */
			log_errx("region flush failed: %s", strerror(-fe));
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		uint64_t now = fg_now_ns();
		if (n == 0 && now - e->last_write_ns > keepalive_ns(g)) {
			n = (size_t)snprintf(buf, max, ": keep-alive\n\n");
		}
		if (n > 0) {
			e->last_write_ns = now;
			return (ssize_t)n;
		}
		/* the session's next commit or its end rings its bell; every
		 * 100 ms we also look whether the client left */
		fg_bell_wait(g->r, e->idx, seq, 100);
		if (gw_client_gone(e->c))
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

void sse_free(void *cls)
{
	sse_t *e = cls;
	free(e->pend);
	free(e);
}

/* An SSE stream's end: it no longer waits on its session's bell. */
static void sse_end(void *cls)
{
	sse_t *e = cls;
	fg_bell_leave(e->g->r, e->idx, FG_BELL_STEPS);
	free(e);
}

int gw_events(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)b;
	uint32_t idx = lookup(g, id);
	if (idx == UINT32_MAX)
		return reply_error(c, 404, "id", "no session %.40s", id);
	sse_t *e = calloc(1, sizeof(*e));
	if (!e)
		return reply_oom(c);
	e->g = g;
	e->c = c;
	e->idx = idx;
	fg_handle_t h;
	fg_id_parse(g->r, id, &h);
	e->gen = FG_HANDLE_GEN(h);
	fg_bell_enter(g->r, idx, FG_BELL_STEPS);   /* left in sse_end */
	e->next = 1;
	e->last_write_ns = fg_now_ns();
	const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	if (last) {
		char *end;
		unsigned long v = strtoul(last, &end, 10);
		if (*last && !*end && v < UINT32_MAX)
			e->next = (uint32_t)v + 1;
	}
	e->synth_step = e->next - 1;
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read,
								   e, sse_end);
	if (!r) {
		sse_end(e);
		return reply_oom(c);
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	int rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}
