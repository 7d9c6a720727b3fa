/*
 * config.c — the YAML loader.  Two passes: libyaml's event stream is built
 * into a small tree that keeps each node's line and column (refusing
 * aliases, anchors, tags on the way, and limiting depth and size), then the
 * tree is walked against the schema table below.  The table is the single
 * list of keys: a key not in it is "unknown key".
 */

#include "forge/config.h"
#include "forge/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <yaml.h>

#define MAX_DEPTH 32
#define MAX_NODES 10000
#define MAX_FILE  (1 << 20)

enum ntype { N_SCALAR, N_MAP, N_SEQ };

typedef struct node {
	enum ntype type;
	int line, col;
	char *val;              /* scalar */
	int quoted;             /* scalar was quoted: never a number/bool/null */
	struct node *kids;      /* map: key, value, key, value ...; seq: items */
	int nkids, cap;
} node_t;

typedef struct ctx {
	const char *file;
	char *err;
	size_t errlen;
	int nnodes;
} ctx_t;

static void errat(ctx_t *x, int line, int col, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void errat(ctx_t *x, int line, int col, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(x->err, x->errlen, "%s:%d:%d: %s%s", x->file, line, col,
			 path ? path : "", path && *path ? ": " : "");
	if (n < 0 || (size_t)n >= x->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void node_free(node_t *n)
{
	for (int i = 0; i < n->nkids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
	free(n->val);
}

static node_t *node_add(node_t *parent)
{
	if (parent->nkids == parent->cap) {
		int nc = parent->cap ? parent->cap * 2 : 8;
		node_t *k = realloc(parent->kids, sizeof(node_t) * (size_t)nc);
		if (!k)
			return NULL;
		parent->kids = k;
		parent->cap = nc;
	}
	node_t *n = &parent->kids[parent->nkids++];
	memset(n, 0, sizeof(*n));
	return n;
}

/* Builds the node for the event just read; returns 0 or -1 (err set). */
static int build(ctx_t *x, yaml_parser_t *p, yaml_event_t *ev, node_t *out, int depth)
{
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
	out->line = line;
	out->col = col;
	if (++x->nnodes > MAX_NODES) {
		errat(x, line, col, NULL, "document has more than %d nodes", MAX_NODES);
		return -1;
	}
	if (depth > MAX_DEPTH) {
		errat(x, line, col, NULL, "nesting deeper than %d levels", MAX_DEPTH);
		return -1;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		errat(x, line, col, NULL, "aliases (*%s) are not allowed in forge configuration",
		      (char *)ev->data.alias.anchor);
		return -1;
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor) {
			errat(x, line, col, NULL, "anchors (&%s) are not allowed in forge configuration",
			      (char *)ev->data.scalar.anchor);
			return -1;
		}
		out->type = N_SCALAR;
		out->val = strndup((char *)ev->data.scalar.value, ev->data.scalar.length);
		out->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		if (strlen(out->val) != ev->data.scalar.length) {
			errat(x, line, col, NULL, "NUL byte in a scalar");
			return -1;
		}
		return 0;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: {
		int map = ev->type == YAML_MAPPING_START_EVENT;
		yaml_char_t *anchor = map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
		if (anchor) {
			errat(x, line, col, NULL, "anchors (&%s) are not allowed in forge configuration",
			      (char *)anchor);
			return -1;
		}
		out->type = map ? N_MAP : N_SEQ;
		for (;;) {
			yaml_event_t e;
			if (!yaml_parser_parse(p, &e)) {
				errat(x, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
				      NULL, "YAML syntax error: %s%s%s", p->problem ? p->problem : "?",
				      p->context ? " " : "", p->context ? p->context : "");
				return -1;
			}
			if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&e);
				return 0;
			}
			node_t *k = node_add(out);
			if (!k) {
				yaml_event_delete(&e);
				errat(x, line, col, NULL, "out of memory");
				return -1;
			}
			int rc = build(x, p, &e, k, depth + 1);
			yaml_event_delete(&e);
			if (rc < 0)
				return -1;
			if (map && (out->nkids % 2) == 1 && k->type != N_SCALAR) {
				errat(x, k->line, k->col, NULL, "mapping keys must be plain scalars");
				return -1;
			}
		}
	}
	default:
		errat(x, line, col, NULL, "unexpected YAML event");
		return -1;
	}
}

static int parse_tree(ctx_t *x, const char *buf, size_t len, node_t *root)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = -1, have_doc = 0;

	memset(root, 0, sizeof(*root));
	root->type = N_MAP;
	root->line = root->col = 1;
	if (!yaml_parser_initialize(&p)) {
		errat(x, 1, 1, NULL, "cannot initialise the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			errat(x, (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1, NULL,
			      "YAML syntax error: %s%s%s", p.problem ? p.problem : "?",
			      p.context ? " " : "", p.context ? p.context : "");
			goto out;
		}
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (t == YAML_DOCUMENT_START_EVENT && have_doc) {
			errat(x, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1, NULL,
			      "more than one YAML document in the file");
			yaml_event_delete(&ev);
			goto out;
		}
		if (t == YAML_DOCUMENT_START_EVENT)
			have_doc = 1;
		if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
		    t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
			node_free(root);
			memset(root, 0, sizeof(*root));
			int r = build(x, &p, &ev, root, 0);
			yaml_event_delete(&ev);
			if (r < 0)
				goto out;
			if (root->type == N_SCALAR && root->val[0] == '\0') {
				/* empty document */
				free(root->val);
				root->val = NULL;
				root->type = N_MAP;
			} else if (root->type != N_MAP) {
				errat(x, root->line, root->col, NULL,
				      "the top level must be a mapping of sections");
				goto out;
			}
			continue;
		}
		yaml_event_delete(&ev);
	}
	rc = 0;
out:
	yaml_parser_delete(&p);
	return rc;
}

/* ---- schema ---------------------------------------------------------- */

enum ktype { K_SECTION, K_UINT, K_STR, K_WORKERS, K_LEVEL, K_BOOL, K_DURABILITY, K_MODE,
	     K_MONEY };

typedef struct key {
	const char *path;       /* dotted; a section's children follow it */
	enum ktype type;
	size_t off;             /* into fg_config_t */
	size_t size;            /* for strings */
	uint64_t min, max;      /* for numbers */
} key_t_;

#define U(p, f, lo, hi)  { p, K_UINT, offsetof(fg_config_t, f), 0, lo, hi }
#define S(p, f)          { p, K_STR, offsetof(fg_config_t, f), sizeof(((fg_config_t *)0)->f), 0, 0 }
#define SEC(p)           { p, K_SECTION, 0, 0, 0, 0 }

static const key_t_ schema[] = {
	SEC("supervisor"),
	{ "supervisor.workers", K_WORKERS, offsetof(fg_config_t, workers), 0, 1, 64 },
	U("supervisor.watchdog_ms", watchdog_ms, 50, 3600000),
	U("supervisor.heartbeat_ms", heartbeat_ms, 1, 60000),
	U("supervisor.shutdown_timeout_ms", shutdown_timeout_ms, 0, 3600000),
	U("supervisor.sweep_after_ms", sweep_after_ms, 10, 3600000),
	SEC("supervisor.restart"),
	U("supervisor.restart.backoff_initial_ms", backoff_initial_ms, 0, 600000),
	U("supervisor.restart.backoff_max_ms", backoff_max_ms, 0, 3600000),
	U("supervisor.restart.intensity", restart_intensity, 1, 100000),
	U("supervisor.restart.period_s", restart_period_s, 1, 86400),
	SEC("region"),
	S("region.path", region_path),
	U("region.sessions", sessions, 1, 1u << 24),
	U("region.checkpoint_bytes", checkpoint_bytes, 0, 1u << 20),
	U("region.session_max_bytes", session_max_bytes, 0, 1u << 30),
	U("region.retain_s", retain_s, 0, 1u << 30),
	{ "region.durability", K_DURABILITY, offsetof(fg_config_t, durability), 0, 0, 2 },
	U("region.sync_interval_ms", sync_interval_ms, 1, 3600000),
	{ "region.mode", K_MODE, offsetof(fg_config_t, region_mode), 0, 0, 0 },
	SEC("worker"),
	U("worker.max_inflight", max_inflight, 1, 65536),
	U("worker.memory_limit_mb", memory_limit_mb, 0, 1u << 20),
	SEC("log"),
	{ "log.level", K_LEVEL, offsetof(fg_config_t, log_level), sizeof(((fg_config_t *)0)->log_level), 0, 0 },
	SEC("llm"),
	S("llm.default", llm_default),
	/* llm.providers is a map of names: handled in walk_providers() */
	SEC("http"),
	S("http.listen", http_listen),
	{ "http.enabled", K_BOOL, offsetof(fg_config_t, http_enabled), 0, 0, 1 },
	U("http.max_body_bytes", http_max_body, 64, 64u << 20),
	U("http.idle_timeout_s", http_idle_timeout_s, 2, 3600),
	U("http.max_connections", http_max_conns, 1, 60000),
	U("http.max_connections_per_ip", http_max_conns_ip, 0, 1000000),
	U("http.max_header_bytes", http_max_header, 4096, 1u << 20),
	U("http.max_batch", http_max_batch, 1, 100000),
	SEC("workflows"),
	U("workflows.max_steps", max_steps, 1, 1000),
	U("workflows.context_max_bytes", context_max_bytes, 0, 1u << 30),
	S("workflows.interrupted", interrupted),
	U("workflows.deadline_s", deadline_s, 0, 30 * 86400),
	U("workflows.child_alloc_timeout_s", child_alloc_timeout_s, 1, 30 * 86400),
	{ NULL, 0, 0, 0, 0, 0 }
};

static void fg_provider_defaults(fg_provider_cfg_t *p)
{
	snprintf(p->type_name, sizeof(p->type_name), "openai");
	p->type = FG_PROV_OPENAI;
	p->connect_timeout_ms = 5000;
	p->timeout_ms = 120000;
	p->max_retries = 5;
	p->give_up_after_s = 300;
	p->retry_base_ms = 200;
	p->max_reply_bytes = 1u << 20;
}

void fg_config_defaults(fg_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->workers = 2;
	c->watchdog_ms = 2000;
	c->heartbeat_ms = 100;
	c->backoff_initial_ms = 100;
	c->backoff_max_ms = 5000;
	c->restart_intensity = 10;
	c->restart_period_s = 60;
	c->shutdown_timeout_ms = 10000;
	c->sweep_after_ms = 2000;
	snprintf(c->region_path, sizeof(c->region_path), "/dev/shm/forge");
	c->sync_interval_ms = 1000;
	c->region_mode = 0600;
	c->sessions = 65536;
	c->checkpoint_bytes = 896;
	c->session_max_bytes = 16u << 20;
	c->max_inflight = 1024;
	snprintf(c->log_level, sizeof(c->log_level), "info");
	snprintf(c->llm_default, sizeof(c->llm_default), "mock");
	c->nproviders = 1;
	fg_provider_cfg_t *p = &c->providers[0];
	snprintf(p->name, sizeof(p->name), "mock");
	snprintf(p->base_url, sizeof(p->base_url), "http://127.0.0.1:8089/v1");
	snprintf(p->model, sizeof(p->model), "mock");
	snprintf(p->api_key_env, sizeof(p->api_key_env), "OPENAI_API_KEY");
	snprintf(c->http_listen, sizeof(c->http_listen), "127.0.0.1:8080");
	c->max_steps = 10;
	c->child_alloc_timeout_s = 60;
	c->http_enabled = 1;
	c->http_max_body = 1u << 20;
	c->retain_s = 3600;
	c->http_idle_timeout_s = 30;
	c->http_max_conns = 10000;
	c->http_max_conns_ip = 0;
	c->http_max_batch = 10000;
	c->http_max_header = 32768;
	c->file_read_max = 65536;
	c->shell_timeout_ms = 5000;
	c->shell_max_output = 65536;
	c->http_timeout_ms = 10000;
	c->http_max_bytes = 65536;
	snprintf(c->interrupted, sizeof(c->interrupted), "result");
	fg_provider_defaults(p);
}

/* Expands ${VAR} from the environment into out. */
static int expand(ctx_t *x, const node_t *n, const char *path, char *out, size_t outlen)
{
	const char *s = n->val;
	size_t o = 0;
	while (*s) {
		if (s[0] == '$' && s[1] == '$' && s[2] == '{') {   /* $${: a literal ${ */
			if (o + 2 >= outlen) {
				errat(x, n->line, n->col, path, "value longer than %zu bytes", outlen - 1);
				return -1;
			}
			out[o++] = '$';
			out[o++] = '{';
			s += 3;
			continue;
		}
		if (s[0] == '$' && s[1] == '{') {
			const char *end = strchr(s + 2, '}');
			if (!end) {
				errat(x, n->line, n->col, path, "unterminated ${ in \"%s\"", n->val);
				return -1;
			}
			char var[256];
			size_t vl = (size_t)(end - s - 2);
			if (vl == 0 || vl >= sizeof(var)) {
				errat(x, n->line, n->col, path, "bad variable name in \"%s\"", n->val);
				return -1;
			}
			memcpy(var, s + 2, vl);
			var[vl] = '\0';
			const char *v = getenv(var);
			if (!v) {
				errat(x, n->line, n->col, path, "environment variable %s is not set", var);
				return -1;
			}
			size_t l = strlen(v);
			if (o + l >= outlen) {
				errat(x, n->line, n->col, path, "value longer than %zu bytes", outlen - 1);
				return -1;
			}
			memcpy(out + o, v, l);
			o += l;
			s = end + 1;
			continue;
		}
		if (o + 1 >= outlen) {
			errat(x, n->line, n->col, path, "value longer than %zu bytes", outlen - 1);
			return -1;
		}
		out[o++] = *s++;
	}
	out[o] = '\0';
	return 0;
}

static int set_value(ctx_t *x, const key_t_ *k, const node_t *v, fg_config_t *c)
{
	char buf[4096];
	if (v->type != N_SCALAR) {
		errat(x, v->line, v->col, k->path, "expected a %s, got a %s",
		      k->type == K_STR || k->type == K_LEVEL || k->type == K_DURABILITY ||
		      k->type == K_MODE ? "string" : "number",
		      v->type == N_MAP ? "mapping" : "sequence");
		return -1;
	}
	if (expand(x, v, k->path, buf, sizeof(buf)) < 0)
		return -1;
	switch (k->type) {
	case K_STR:
		if (strlen(buf) >= k->size) {
			errat(x, v->line, v->col, k->path, "value longer than %zu bytes", k->size - 1);
			return -1;
		}
		if (buf[0] == '\0') {
			errat(x, v->line, v->col, k->path, "must not be empty");
			return -1;
		}
		memcpy((char *)c + k->off, buf, strlen(buf) + 1);
		return 0;
	case K_BOOL:
		if (!strcmp(buf, "true") || !strcmp(buf, "yes") || !strcmp(buf, "on")) {
			*(uint32_t *)((char *)c + k->off) = 1;
		} else if (!strcmp(buf, "false") || !strcmp(buf, "no") || !strcmp(buf, "off")) {
			*(uint32_t *)((char *)c + k->off) = 0;
		} else {
			errat(x, v->line, v->col, k->path, "expected true or false, got \"%s\"", buf);
			return -1;
		}
		return 0;
	case K_DURABILITY: {
		static const char *const names[] = { "none", "batch", "sync" };
		for (uint32_t i = 0; i < 3; i++)
			if (!strcmp(buf, names[i])) {
				*(uint32_t *)((char *)c + k->off) = i;
				return 0;
			}
		errat(x, v->line, v->col, k->path, "\"%s\" is not none, batch or sync", buf);
		return -1;
	}
	case K_MODE: {
		/* the region file's permission bits: the owner reads and writes
		 * it; the group may too (forgectl for members), others never */
		char *end;
		unsigned long m = strtoul(buf, &end, 8);
		if (!*buf || *end || (m != 0600 && m != 0640 && m != 0660)) {
			errat(x, v->line, v->col, k->path, "\"%s\" is not 0600, 0640 or 0660 (the "
			      "region file's permissions: 0660 lets the file's group use forgectl "
			      "submit, say and purge; 0640 only read)", buf);
			return -1;
		}
		*(uint32_t *)((char *)c + k->off) = (uint32_t)m;
		return 0;
	}
	case K_MONEY: {   /* a decimal amount of USD, into a double */
		char *end;
		errno = 0;
		double d = strtod(buf, &end);
		if (!buf[0] || *end || errno || !(d >= 0 && d <= (double)k->max)) {
			errat(x, v->line, v->col, k->path, "\"%s\" is not an amount in [0, %llu] "
			      "(USD, a decimal number)", buf, (unsigned long long)k->max);
			return -1;
		}
		*(double *)(void *)((char *)c + k->off) = d;
		return 0;
	}
	case K_LEVEL:
		if (fg_log_parse_level(buf) < 0) {
			errat(x, v->line, v->col, k->path,
			      "\"%s\" is not a log level (error, warn, info, debug)", buf);
			return -1;
		}
		snprintf((char *)c + k->off, k->size, "%s", buf);
		return 0;
	case K_WORKERS:
		if (strcmp(buf, "auto") == 0) {
			long n = sysconf(_SC_NPROCESSORS_ONLN);
			*(uint32_t *)((char *)c + k->off) = (uint32_t)(n < 1 ? 1 : n > 64 ? 64 : n);
			return 0;
		}
		/* fallthrough */
	case K_UINT: {
		char *end;
		if (v->quoted && k->type == K_UINT) {
			errat(x, v->line, v->col, k->path, "expected a number, got the string \"%s\"", buf);
			return -1;
		}
		errno = 0;
		unsigned long long n = strtoull(buf, &end, 10);
		if (buf[0] == '\0' || buf[0] == '-' || buf[0] == '+' || *end || errno) {
			errat(x, v->line, v->col, k->path, "expected a%s number, got \"%s\"",
			      k->type == K_WORKERS ? " whole" : " non-negative whole", buf);
			if (k->type == K_WORKERS)
				snprintf(x->err + strlen(x->err), x->errlen - strlen(x->err),
					 " (or \"auto\")");
			return -1;
		}
		if (n < k->min || n > k->max) {
			errat(x, v->line, v->col, k->path, "%llu is out of range [%llu, %llu]", n,
			      (unsigned long long)k->min, (unsigned long long)k->max);
			return -1;
		}
		*(uint32_t *)((char *)c + k->off) = (uint32_t)n;
		return 0;
	}
	default:
		return -1;
	}
}

static int check_dups(ctx_t *x, const node_t *map, const char *path)
{
	for (int i = 0; i < map->nkids; i += 2)
		for (int j = i + 2; j < map->nkids; j += 2)
			if (strcmp(map->kids[i].val, map->kids[j].val) == 0) {
				char p[512];
				snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", map->kids[j].val);
				errat(x, map->kids[j].line, map->kids[j].col, p,
				      "duplicate key (first at line %d)", map->kids[i].line);
				return -1;
			}
	return 0;
}

#define PU(n, f, lo, hi) { n, K_UINT, offsetof(fg_provider_cfg_t, f), 0, lo, hi }
#define PS(n, f) { n, K_STR, offsetof(fg_provider_cfg_t, f), sizeof(((fg_provider_cfg_t *)0)->f), 0, 0 }
static const key_t_ pschema[] = {
	PS("type", type_name),
	PS("base_url", base_url),
	PS("model", model),
	PS("api_key_env", api_key_env),
	{ "stream", K_BOOL, offsetof(fg_provider_cfg_t, stream), 0, 0, 1 },
	PU("connect_timeout_ms", connect_timeout_ms, 1, 600000),
	PU("timeout_ms", timeout_ms, 1, 3600000),
	PU("max_retries", max_retries, 0, 100),
	PU("give_up_after_s", give_up_after_s, 0, 7 * 86400),
	PU("retry_base_ms", retry_base_ms, 0, 600000),
	PU("max_reply_bytes", max_reply_bytes, 1024, 64u << 20),
	PU("rate_limit_rps", rate_rps, 0, 1000000),
	PU("rate_limit_tpm", rate_tpm, 0, 1000000000),
	{ "price_prompt_per_mtok", K_MONEY, offsetof(fg_provider_cfg_t, price_prompt), 0, 0, 1000000 },
	{ "price_completion_per_mtok", K_MONEY, offsetof(fg_provider_cfg_t, price_completion), 0, 0,
	  1000000 },
	{ NULL, 0, 0, 0, 0, 0 }
};

/* script: a sequence of {tool: NAME, arguments: JSON} or {content: TEXT} */
static int walk_script(ctx_t *x, const node_t *seq, const char *path, fg_provider_cfg_t *p)
{
	if (seq->type != N_SEQ || seq->nkids == 0) {
		errat(x, seq->line, seq->col, path, "expected a non-empty sequence of replies");
		return -1;
	}
	if (seq->nkids > FG_MAX_SCRIPT) {
		errat(x, seq->line, seq->col, path, "more than %d replies", FG_MAX_SCRIPT);
		return -1;
	}
	p->nscript = 0;
	for (int i = 0; i < seq->nkids; i++) {
		const node_t *m = &seq->kids[i];
		char ip[700];
		snprintf(ip, sizeof(ip), "%s[%d]", path, i);
		if (m->type != N_MAP) {
			errat(x, m->line, m->col, ip, "expected {tool, arguments} or {content}");
			return -1;
		}
		if (check_dups(x, m, ip) < 0)
			return -1;
		memset(&p->script[i], 0, sizeof(p->script[i]));
		for (int j = 0; j < m->nkids; j += 2) {
			const node_t *k = &m->kids[j], *v = &m->kids[j + 1];
			char kp[800];
			snprintf(kp, sizeof(kp), "%s.%s", ip, k->val);
			char *dst;
			size_t dl;
			if (!strcmp(k->val, "tool")) {
				dst = p->script[i].tool;
				dl = sizeof(p->script[i].tool);
			} else if (!strcmp(k->val, "arguments")) {
				dst = p->script[i].arguments;
				dl = sizeof(p->script[i].arguments);
			} else if (!strcmp(k->val, "content")) {
				dst = p->script[i].content;
				dl = sizeof(p->script[i].content);
			} else if (!strcmp(k->val, "calls")) {
				key_t_ ku = { kp, K_UINT, offsetof(fg_provider_cfg_t, script[0].calls) -
					      offsetof(fg_provider_cfg_t, script[0]), 0, 1, 16 };
				if (set_value(x, &ku, v, (fg_config_t *)(void *)&p->script[i]) < 0)
					return -1;
				continue;
			} else {
				errat(x, k->line, k->col, kp,
				      "unknown key (tool, arguments, calls or content)");
				return -1;
			}
			key_t_ kk = { kp, K_STR, 0, dl, 0, 0 };
			if (set_value(x, &kk, v, (fg_config_t *)(void *)dst) < 0)
				return -1;
		}
		if (!!p->script[i].tool[0] == !!p->script[i].content[0]) {
			errat(x, m->line, m->col, ip, "needs either tool (with arguments) or content");
			return -1;
		}
		if (p->script[i].tool[0]) {
			if (!p->script[i].arguments[0])
				snprintf(p->script[i].arguments, sizeof(p->script[i].arguments), "{}");
			json_error_t je;
			json_t *j = json_loads(p->script[i].arguments, 0, &je);
			if (!json_is_object(j)) {
				errat(x, m->line, m->col, ip, "arguments are not a JSON object: %s",
				      j ? "not an object" : je.text);
				json_decref(j);
				return -1;
			}
			json_decref(j);
		}
		p->nscript++;
	}
	return 0;
}

static int walk_providers(ctx_t *x, const node_t *map, fg_config_t *c)
{
	if (map->type != N_MAP) {
		errat(x, map->line, map->col, "llm.providers", "expected a mapping of provider names");
		return -1;
	}
	if (check_dups(x, map, "llm.providers") < 0)
		return -1;
	c->nproviders = 0;
	for (int i = 0; i < map->nkids; i += 2) {
		const node_t *k = &map->kids[i], *v = &map->kids[i + 1];
		char path[512];
		snprintf(path, sizeof(path), "llm.providers.%s", k->val);
		if (c->nproviders == FG_MAX_PROVIDERS) {
			errat(x, k->line, k->col, path, "more than %d providers", FG_MAX_PROVIDERS);
			return -1;
		}
		fg_provider_cfg_t *p = &c->providers[c->nproviders++];
		memset(p, 0, sizeof(*p));
		fg_provider_defaults(p);
		if (strlen(k->val) >= sizeof(p->name) || !k->val[0]) {
			errat(x, k->line, k->col, path, "provider name must be 1 to %zu bytes",
			      sizeof(p->name) - 1);
			return -1;
		}
		snprintf(p->name, sizeof(p->name), "%s", k->val);
		if (v->type != N_MAP) {
			errat(x, v->line, v->col, path, "expected a mapping");
			return -1;
		}
		if (check_dups(x, v, path) < 0)
			return -1;
		for (int j = 0; j < v->nkids; j += 2) {
			const node_t *pk = &v->kids[j], *pv = &v->kids[j + 1];
			char kp[640];
			snprintf(kp, sizeof(kp), "%s.%s", path, pk->val);
			if (!strcmp(pk->val, "script")) {
				if (walk_script(x, pv, kp, p) < 0)
					return -1;
				continue;
			}
			const key_t_ *found = NULL;
			for (const key_t_ *q = pschema; q->path; q++)
				if (!strcmp(q->path, pk->val))
					found = q;
			if (!found) {
				errat(x, pk->line, pk->col, kp, "unknown key");
				return -1;
			}
			key_t_ kk = *found;
			kk.path = kp;
			if (set_value(x, &kk, pv, (fg_config_t *)(void *)p) < 0)
				return -1;
		}
		if (!strcmp(p->type_name, "scripted")) {
			p->type = FG_PROV_SCRIPTED;
			if (p->nscript == 0) {
				/* the mock LLM's script */
				p->nscript = 2;
				snprintf(p->script[0].tool, sizeof(p->script[0].tool), "calculator");
				snprintf(p->script[0].arguments, sizeof(p->script[0].arguments),
					 "{\"expression\":\"2+2\"}");
				snprintf(p->script[1].content, sizeof(p->script[1].content),
					 "The answer is 4.");
			}
		} else if (!strcmp(p->type_name, "openai")) {
			p->type = FG_PROV_OPENAI;
			if (!p->base_url[0]) {
				errat(x, v->line, v->col, path, "missing required key base_url");
				return -1;
			}
			if (strncmp(p->base_url, "http://", 7) && strncmp(p->base_url, "https://", 8)) {
				errat(x, v->line, v->col, path, "base_url must start with http:// or https://");
				return -1;
			}
			if (p->nscript) {
				errat(x, v->line, v->col, path, "script is only for type: scripted");
				return -1;
			}
		} else {
			errat(x, v->line, v->col, path, "type \"%s\" is not openai or scripted", p->type_name);
			return -1;
		}
		if (!p->model[0])
			memcpy(p->model, p->name, sizeof(p->name));
	}
	return 0;
}

/* A sequence of strings into a fixed array; returns the count or -1. */
static int str_list(ctx_t *x, const node_t *seq, const char *path, char *out, size_t width,
		    uint32_t max)
{
	if (seq->type != N_SEQ) {
		errat(x, seq->line, seq->col, path, "expected a sequence of strings");
		return -1;
	}
	if ((uint32_t)seq->nkids > max) {
		errat(x, seq->line, seq->col, path, "more than %u entries", max);
		return -1;
	}
	for (int i = 0; i < seq->nkids; i++) {
		char ip[600];
		snprintf(ip, sizeof(ip), "%s[%d]", path, i);
		key_t_ kk = { ip, K_STR, 0, width, 0, 0 };
		if (set_value(x, &kk, &seq->kids[i], (fg_config_t *)(void *)(out + (size_t)i * width)) < 0)
			return -1;
	}
	return seq->nkids;
}

#define EU(n, f, lo, hi) { n, K_UINT, offsetof(fg_external_cfg_t, f), 0, lo, hi }
#define ES(n, f) { n, K_STR, offsetof(fg_external_cfg_t, f), sizeof(((fg_external_cfg_t *)0)->f), 0, 0 }
static const key_t_ eschema[] = {
	ES("description", description),
	ES("schema", schema),
	EU("timeout_ms", timeout_ms, 1, 3600000),
	EU("max_output", max_output, 16, 16u << 20),
	{ "idempotent", K_BOOL, offsetof(fg_external_cfg_t, idempotent), 0, 0, 1 },
	{ NULL, 0, 0, 0, 0, 0 }
};

/* tools.mcp.NAME: {command | url, env, timeout_ms, max_output, idempotent} */
#define MU(n, f, lo, hi) { n, K_UINT, offsetof(fg_mcp_cfg_t, f), 0, lo, hi }
static const key_t_ mschema[] = {
	{ "url", K_STR, offsetof(fg_mcp_cfg_t, url), sizeof(((fg_mcp_cfg_t *)0)->url), 0, 0 },
	MU("timeout_ms", timeout_ms, 1, 3600000),
	MU("max_output", max_output, 256, 16u << 20),
	{ "idempotent", K_BOOL, offsetof(fg_mcp_cfg_t, idempotent), 0, 0, 1 },
	{ NULL, 0, 0, 0, 0, 0 }
};

/* A server's name: [A-Za-z0-9_-], 1 to 47 bytes, without "__" and not
 * ending in "_", so that NAME__TOOL splits at its first "__". */
static int mcp_name_ok(const char *n)
{
	size_t l = strlen(n);
	return l > 0 && l < sizeof(((fg_mcp_cfg_t *)0)->name) &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == l &&
	       !strstr(n, "__") && n[l - 1] != '_';
}

static int walk_mcp(ctx_t *x, const node_t *v, fg_config_t *c)
{
	if (v->type == N_SCALAR && !v->val[0] && !v->quoted)
		return 0;   /* "mcp:" with everything under it commented out */
	if (v->type != N_MAP) {
		errat(x, v->line, v->col, "tools.mcp", "expected a mapping of server names");
		return -1;
	}
	if (check_dups(x, v, "tools.mcp") < 0)
		return -1;
	c->nmcp = 0;
	for (int j = 0; j < v->nkids; j += 2) {
		const node_t *mk = &v->kids[j], *mv = &v->kids[j + 1];
		char mp[600];
		snprintf(mp, sizeof(mp), "tools.mcp.%s", mk->val);
		if (c->nmcp == FG_MAX_MCP) {
			errat(x, mk->line, mk->col, mp, "more than %d MCP servers", FG_MAX_MCP);
			return -1;
		}
		fg_mcp_cfg_t *m = &c->mcp[c->nmcp++];
		memset(m, 0, sizeof(*m));
		m->timeout_ms = 30000;
		m->max_output = 65536;
		if (!mcp_name_ok(mk->val)) {
			errat(x, mk->line, mk->col, mp, "a server's name is 1 to %zu of [A-Za-z0-9_-], "
			      "without \"__\" and not ending in \"_\" (its tools are NAME__TOOL)",
			      sizeof(m->name) - 1);
			return -1;
		}
		snprintf(m->name, sizeof(m->name), "%s", mk->val);
		if (mv->type != N_MAP) {
			errat(x, mv->line, mv->col, mp, "expected a mapping (command or url, ...)");
			return -1;
		}
		if (check_dups(x, mv, mp) < 0)
			return -1;
		for (int q = 0; q < mv->nkids; q += 2) {
			const node_t *pk = &mv->kids[q], *pv = &mv->kids[q + 1];
			char kp[700];
			snprintf(kp, sizeof(kp), "%s.%s", mp, pk->val);
			if (!strcmp(pk->val, "command")) {
				int n = str_list(x, pv, kp, &m->argv[0][0], sizeof(m->argv[0]),
						 FG_MCP_ARGV - 1);
				if (n < 0)
					return -1;
				if (n == 0) {
					errat(x, pv->line, pv->col, kp, "must name a program");
					return -1;
				}
				m->argc = (uint32_t)n;
				continue;
			}
			if (!strcmp(pk->val, "env")) {
				if (pv->type != N_MAP) {
					errat(x, pv->line, pv->col, kp, "expected a mapping of "
					      "variable names to values");
					return -1;
				}
				if (check_dups(x, pv, kp) < 0)
					return -1;
				if (pv->nkids / 2 > FG_MCP_ENV) {
					errat(x, pv->line, pv->col, kp, "more than %d variables",
					      FG_MCP_ENV);
					return -1;
				}
				for (int e = 0; e < pv->nkids; e += 2) {
					const node_t *ek = &pv->kids[e];
					char ekp[800], val[512];
					snprintf(ekp, sizeof(ekp), "%s.%s", kp, ek->val);
					size_t kl = strlen(ek->val);
					if (!kl || ek->val[0] == '=' || strchr(ek->val, '=') ||
					    strspn(ek->val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != kl) {
						errat(x, ek->line, ek->col, ekp, "not a variable name "
						      "([A-Za-z0-9_])");
						return -1;
					}
					key_t_ kk = { ekp, K_STR, 0, sizeof(val), 0, 0 };
					if (set_value(x, &kk, &pv->kids[e + 1], (fg_config_t *)(void *)val) < 0)
						return -1;
					if (kl + 1 + strlen(val) >= sizeof(m->env[0])) {
						errat(x, ek->line, ek->col, ekp, "longer than %zu bytes",
						      sizeof(m->env[0]) - 1);
						return -1;
					}
					char *d = m->env[m->nenv++];
					memcpy(d, ek->val, kl);
					d[kl] = '=';
					memcpy(d + kl + 1, val, strlen(val) + 1);
				}
				continue;
			}
			const key_t_ *found = NULL;
			for (const key_t_ *s = mschema; s->path; s++)
				if (!strcmp(s->path, pk->val))
					found = s;
			if (!found) {
				errat(x, pk->line, pk->col, kp, "unknown key (command, url, env, "
				      "timeout_ms, max_output or idempotent)");
				return -1;
			}
			key_t_ kk = *found;
			kk.path = kp;
			if (set_value(x, &kk, pv, (fg_config_t *)(void *)m) < 0)
				return -1;
		}
		if (!m->argc == !m->url[0]) {
			errat(x, mv->line, mv->col, mp, "needs either command (a stdio server) or "
			      "url (Streamable HTTP), not both");
			return -1;
		}
		if (m->url[0] && strncmp(m->url, "http://", 7) && strncmp(m->url, "https://", 8)) {
			errat(x, mv->line, mv->col, mp, "url must start with http:// or https://");
			return -1;
		}
		if (m->nenv && !m->argc) {
			errat(x, mv->line, mv->col, mp, "env is for a command (stdio server)");
			return -1;
		}
	}
	return 0;
}

static int walk_tools(ctx_t *x, const node_t *map, fg_config_t *c)
{
	if (map->type != N_MAP) {
		errat(x, map->line, map->col, "tools", "expected a mapping");
		return -1;
	}
	if (check_dups(x, map, "tools") < 0)
		return -1;
	for (int i = 0; i < map->nkids; i += 2) {
		const node_t *k = &map->kids[i], *v = &map->kids[i + 1];
		char path[512];
		snprintf(path, sizeof(path), "tools.%s", k->val);
		if (v->type != N_MAP) {
			errat(x, v->line, v->col, path, "expected a mapping");
			return -1;
		}
		if (check_dups(x, v, path) < 0)
			return -1;
		if (!strcmp(k->val, "http_get")) {
			for (int j = 0; j < v->nkids; j += 2) {
				const node_t *pk = &v->kids[j], *pv = &v->kids[j + 1];
				char kp[640];
				snprintf(kp, sizeof(kp), "%s.%s", path, pk->val);
				key_t_ kk = { kp, K_UINT, 0, 0, 1, 1u << 30 };
				if (!strcmp(pk->val, "allow")) {
					int n = str_list(x, pv, kp, &c->http_allow[0][0],
							 sizeof(c->http_allow[0]), FG_MAX_ALLOW);
					if (n < 0)
						return -1;
					c->http_nallow = (uint32_t)n;
					continue;
				} else if (!strcmp(pk->val, "timeout_ms")) {
					kk.off = offsetof(fg_config_t, http_timeout_ms);
				} else if (!strcmp(pk->val, "max_bytes")) {
					kk.off = offsetof(fg_config_t, http_max_bytes);
				} else {
					errat(x, pk->line, pk->col, kp, "unknown key");
					return -1;
				}
				if (set_value(x, &kk, pv, c) < 0)
					return -1;
			}
			continue;
		}
		if (!strcmp(k->val, "file_read") || !strcmp(k->val, "shell")) {
			int fr = k->val[0] == 'f';
			for (int j = 0; j < v->nkids; j += 2) {
				const node_t *pk = &v->kids[j], *pv = &v->kids[j + 1];
				char kp[640];
				snprintf(kp, sizeof(kp), "%s.%s", path, pk->val);
				key_t_ kk = { kp, K_UINT, 0, 0, 1, 1u << 30 };
				if (fr && !strcmp(pk->val, "root")) {
					kk = (key_t_){ kp, K_STR, offsetof(fg_config_t, file_read_root),
						       sizeof(c->file_read_root), 0, 0 };
				} else if (fr && !strcmp(pk->val, "max_bytes")) {
					kk.off = offsetof(fg_config_t, file_read_max);
				} else if (!fr && !strcmp(pk->val, "allow")) {
					int n = str_list(x, pv, kp, &c->shell_allow[0][0],
							 sizeof(c->shell_allow[0]), FG_MAX_ALLOW);
					if (n < 0)
						return -1;
					c->shell_nallow = (uint32_t)n;
					for (int q = 0; q < n; q++)
						if (strchr(c->shell_allow[q], ' ')) {
							errat(x, pv->line, pv->col, kp,
							      "\"%s\" is not a program name", c->shell_allow[q]);
							return -1;
						}
					continue;
				} else if (!fr && !strcmp(pk->val, "timeout_ms")) {
					kk.off = offsetof(fg_config_t, shell_timeout_ms);
				} else if (!fr && !strcmp(pk->val, "max_output")) {
					kk.off = offsetof(fg_config_t, shell_max_output);
				} else {
					errat(x, pk->line, pk->col, kp, "unknown key");
					return -1;
				}
				if (set_value(x, &kk, pv, c) < 0)
					return -1;
			}
			if (fr && c->file_read_root[0] != '/') {
				errat(x, v->line, v->col, path, "root must be an absolute directory path");
				return -1;
			}
			continue;
		}
		if (!strcmp(k->val, "mcp")) {
			if (walk_mcp(x, v, c) < 0)
				return -1;
			continue;
		}
		if (strcmp(k->val, "external") != 0) {
			errat(x, k->line, k->col, path,
			      "unknown key (file_read, shell, http_get, external or mcp)");
			return -1;
		}
		c->nexternal = 0;
		for (int j = 0; j < v->nkids; j += 2) {
			const node_t *ek = &v->kids[j], *ev = &v->kids[j + 1];
			char ep[600];
			snprintf(ep, sizeof(ep), "tools.external.%s", ek->val);
			if (c->nexternal == FG_MAX_EXTERNAL) {
				errat(x, ek->line, ek->col, ep, "more than %d external tools", FG_MAX_EXTERNAL);
				return -1;
			}
			fg_external_cfg_t *e = &c->external[c->nexternal++];
			memset(e, 0, sizeof(*e));
			e->timeout_ms = 10000;
			e->max_output = 65536;
			e->idempotent = 1;
			snprintf(e->schema, sizeof(e->schema), "{\"type\":\"object\"}");
			if (strlen(ek->val) >= sizeof(e->name) || !ek->val[0] ||
			    strspn(ek->val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
				    strlen(ek->val)) {
				errat(x, ek->line, ek->col, ep, "a tool name is 1 to 63 of [A-Za-z0-9_-]");
				return -1;
			}
			snprintf(e->name, sizeof(e->name), "%s", ek->val);
			if (ev->type != N_MAP) {
				errat(x, ev->line, ev->col, ep, "expected a mapping");
				return -1;
			}
			if (check_dups(x, ev, ep) < 0)
				return -1;
			for (int q = 0; q < ev->nkids; q += 2) {
				const node_t *pk = &ev->kids[q], *pv = &ev->kids[q + 1];
				char kp[700];
				snprintf(kp, sizeof(kp), "%s.%s", ep, pk->val);
				if (!strcmp(pk->val, "command")) {
					int n = str_list(x, pv, kp, &e->argv[0][0], sizeof(e->argv[0]),
							 FG_MAX_ARGV);
					if (n < 0)
						return -1;
					e->argc = (uint32_t)n;
					continue;
				}
				const key_t_ *found = NULL;
				for (const key_t_ *s = eschema; s->path; s++)
					if (!strcmp(s->path, pk->val))
						found = s;
				if (!found) {
					errat(x, pk->line, pk->col, kp, "unknown key");
					return -1;
				}
				key_t_ kk = *found;
				kk.path = kp;
				if (set_value(x, &kk, pv, (fg_config_t *)(void *)e) < 0)
					return -1;
			}
			if (e->argc == 0) {
				errat(x, ev->line, ev->col, ep, "missing required key command");
				return -1;
			}
			json_t *sj = json_loads(e->schema, 0, NULL);
			int okschema = json_is_object(sj);
			json_decref(sj);
			if (!okschema) {
				errat(x, ev->line, ev->col, ep, "schema is not a JSON object");
				return -1;
			}
		}
	}
	return 0;
}

/* ---- agents.NAME ------------------------------------------------------ */

/* A scalar string into out (outlen bytes, ${VAR} expanded); -1 named. */
static int agent_str(ctx_t *x, const node_t *v, const char *path, char *out, size_t outlen)
{
	if (v->type != N_SCALAR) {
		errat(x, v->line, v->col, path, "expected a string, got a %s",
		      v->type == N_MAP ? "mapping" : "sequence");
		return -1;
	}
	if (expand(x, v, path, out, outlen) < 0)
		return -1;
	if (!out[0]) {
		errat(x, v->line, v->col, path, "must not be empty");
		return -1;
	}
	return 0;
}

/* model: {temperature, top_p, max_tokens, seed} into a JSON object */
static int agent_model(ctx_t *x, const node_t *map, const char *path, fg_agent_cfg_t *a)
{
	if (map->type != N_MAP) {
		errat(x, map->line, map->col, path, "expected a mapping of model parameters "
		      "(temperature, top_p, max_tokens, seed)");
		return -1;
	}
	if (check_dups(x, map, path) < 0)
		return -1;
	json_t *o = json_object();
	for (int i = 0; i < map->nkids; i += 2) {
		const node_t *k = &map->kids[i], *v = &map->kids[i + 1];
		char kp[1400], buf[64], *end;
		snprintf(kp, sizeof(kp), "%s.%s", path, k->val);
		int isint = !strcmp(k->val, "max_tokens") || !strcmp(k->val, "seed");
		double hi = !strcmp(k->val, "temperature") ? 2 : !strcmp(k->val, "top_p") ? 1 : -1;
		if (!isint && hi < 0) {
			errat(x, k->line, k->col, kp, "unknown key (temperature, top_p, max_tokens, seed)");
			json_decref(o);
			return -1;
		}
		if (agent_str(x, v, kp, buf, sizeof(buf)) < 0) {
			json_decref(o);
			return -1;
		}
		errno = 0;
		if (isint) {
			long long n = strtoll(buf, &end, 10);
			if (*end || errno || n < 0 || n > 0x7fffffff || (n == 0 && buf[0] != '0') ||
			    (n < 1 && !strcmp(k->val, "max_tokens"))) {
				errat(x, v->line, v->col, kp, "\"%s\" is not an integer in [%d, %d]", buf,
				      !strcmp(k->val, "max_tokens"), 0x7fffffff);
				json_decref(o);
				return -1;
			}
			json_object_set_new(o, k->val, json_integer(n));
		} else {
			double d = strtod(buf, &end);
			if (*end || errno || !(d >= 0 && d <= hi)) {
				errat(x, v->line, v->col, kp, "\"%s\" is not a number in [0, %g]", buf, hi);
				json_decref(o);
				return -1;
			}
			json_object_set_new(o, k->val, json_real(d));
		}
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s || strlen(s) >= sizeof(a->params)) {
		free(s);
		errat(x, map->line, map->col, path, "too many parameters");
		return -1;
	}
	snprintf(a->params, sizeof(a->params), "%s", s);
	free(s);
	return 0;
}

/* system_file: the file's text, up to FG_AGENT_SYSTEM - 1 bytes */
/* A prompt file's text into out (outlen bytes); -1 with why. */
static int read_prompt(const char *file, char *out, size_t outlen, char *why, size_t whylen)
{
	/* (a FIFO or a device would hang the load: a regular file only) */
	int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "cannot read %s: %s", file,
			 fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read %s: %s", file, strerror(errno));
		close(fd);
		return -1;
	}
	size_t n = fread(out, 1, outlen, f);
	int bad = ferror(f);
	fclose(f);
	if (bad || n == outlen) {
		if (bad)
			snprintf(why, whylen, "cannot read %s", file);
		else
			snprintf(why, whylen, "%s is longer than %zu bytes (the most a system prompt "
				 "holds)", file, outlen - 1);
		return -1;
	}
	out[n] = '\0';
	json_t *utf8 = n ? json_stringn(out, n) : NULL;   /* (NULL: not UTF-8, or a NUL) */
	if (!utf8) {
		snprintf(why, whylen, "%s is %s", file, n ? "not UTF-8 text" : "empty");
		return -1;
	}
	json_decref(utf8);
	return 0;
}

int fg_config_defer_files;

/* system_file: the file's text, up to FG_AGENT_SYSTEM - 1 bytes; with
 * fg_config_defer_files, only its name (fg_config_agent_system reads it) */
static int agent_file(ctx_t *x, const node_t *v, const char *path, fg_agent_cfg_t *a)
{
	char why[600];
	if (agent_str(x, v, path, a->system_file, sizeof(a->system_file)) < 0)
		return -1;
	if (fg_config_defer_files)
		return 0;
	if (read_prompt(a->system_file, a->system, sizeof(a->system), why, sizeof(why)) < 0) {
		errat(x, v->line, v->col, path, "%s", why);
		return -1;
	}
	return 0;
}

int fg_config_agent_system(fg_agent_cfg_t *a, char *err, size_t errlen)
{
	if (a->system[0] || !a->system_file[0])
		return 0;
	char why[600];
	if (read_prompt(a->system_file, a->system, sizeof(a->system), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "agents.%s.system_file: %s", a->name, why);
		return -1;
	}
	return 0;
}

static int walk_agents(ctx_t *x, const node_t *map, fg_config_t *c)
{
	if (map->type == N_SCALAR && !map->val[0] && !map->quoted)
		return 0;   /* "agents:" with everything under it commented out */
	if (map->type != N_MAP) {
		errat(x, map->line, map->col, "agents", "expected a mapping of agent names");
		return -1;
	}
	if (check_dups(x, map, "agents") < 0)
		return -1;
	c->nagents = 0;
	for (int i = 0; i < map->nkids; i += 2) {
		const node_t *k = &map->kids[i], *v = &map->kids[i + 1];
		char path[512];
		snprintf(path, sizeof(path), "agents.%s", k->val);
		if (c->nagents == FG_MAX_AGENTS) {
			errat(x, k->line, k->col, path, "more than %d agents", FG_MAX_AGENTS);
			return -1;
		}
		int ok = k->val[0] && strlen(k->val) < sizeof(c->agents[0].name);
		for (const char *q = k->val; ok && *q; q++)
			ok = isalnum((unsigned char)*q) || *q == '-' || *q == '_' || *q == '.';
		if (!ok) {
			errat(x, k->line, k->col, path, "an agent's name is 1 to 63 letters, digits, "
			      "'-', '_' or '.'");
			return -1;
		}
		if (!strcmp(k->val, "react") || !strcmp(k->val, "map_reduce") ||
		    !strcmp(k->val, "plan_execute")) {
			errat(x, k->line, k->col, path, "\"%s\" names a workflow (chat completions' "
			      "model forge/%s): give the agent another name", k->val, k->val);
			return -1;
		}
		fg_agent_cfg_t *a = &c->agents[c->nagents++];
		memset(a, 0, sizeof(*a));
		snprintf(a->name, sizeof(a->name), "%s", k->val);
		a->workflow = 2;
		a->line = k->line;
		a->col = k->col;
		if (v->type != N_MAP) {
			errat(x, v->line, v->col, path, "expected a mapping (workflow, system, provider, "
			      "model, tools, max_steps, deadline_s, token_budget, ...)");
			return -1;
		}
		if (check_dups(x, v, path) < 0)
			return -1;
		int have_system = 0;
		for (int j = 0; j < v->nkids; j += 2) {
			const node_t *ak = &v->kids[j], *av = &v->kids[j + 1];
			char kp[640], buf[64];
			snprintf(kp, sizeof(kp), "%s.%s", path, ak->val);
			int rc;
			if (!strcmp(ak->val, "workflow")) {
				if ((rc = agent_str(x, av, kp, buf, sizeof(buf))) == 0) {
					a->workflow = !strcmp(buf, "react") ? 2 : !strcmp(buf, "map_reduce") ? 3 :
						      !strcmp(buf, "plan_execute") ? 4 : 0;
					if (!a->workflow) {
						errat(x, av->line, av->col, kp, "\"%s\" is not react, "
						      "plan_execute or map_reduce", buf);
						rc = -1;
					}
				}
			} else if (!strcmp(ak->val, "system") || !strcmp(ak->val, "system_file")) {
				if (have_system++) {
					errat(x, ak->line, ak->col, kp, "give system or system_file, not both");
					return -1;
				}
				rc = ak->val[6] ? agent_file(x, av, kp, a)
						: agent_str(x, av, kp, a->system, sizeof(a->system));
			} else if (!strcmp(ak->val, "provider")) {
				rc = agent_str(x, av, kp, a->provider, sizeof(a->provider));
				a->kline[0] = av->line;   /* (the cross-check's errors point here) */
				a->kcol[0] = av->col;
			} else if (!strcmp(ak->val, "model")) {
				rc = agent_model(x, av, kp, a);
			} else if (!strcmp(ak->val, "tools")) {
				a->kline[1] = av->line;
				a->kcol[1] = av->col;
				int n = av->type == N_SEQ && av->nkids == 0 ? 0 :
					str_list(x, av, kp, &a->tools[0][0], sizeof(a->tools[0]), FG_AGENT_TOOLS);
				rc = n < 0 ? -1 : 0;
				a->ntools = n < 0 ? 0 : (uint32_t)n;
				a->tools_set = 1;
			} else if (!strcmp(ak->val, "approve")) {
				a->kline[3] = av->line;
				a->kcol[3] = av->col;
				int n = av->type == N_SEQ && av->nkids == 0 ? 0 :
					str_list(x, av, kp, &a->approve[0][0], sizeof(a->approve[0]),
						 FG_AGENT_TOOLS);
				rc = n < 0 ? -1 : 0;
				a->napprove = n < 0 ? 0 : (uint32_t)n;
			} else if (!strcmp(ak->val, "approval_default")) {
				if ((rc = agent_str(x, av, kp, buf, sizeof(buf))) == 0) {
					if (!strcmp(buf, "reject") || !strcmp(buf, "approve")) {
						a->approval_default = buf[0] == 'a';
					} else {
						errat(x, av->line, av->col, kp, "\"%s\" is not reject or "
						      "approve", buf);
						rc = -1;
					}
				}
			} else if (!strcmp(ak->val, "planner") || !strcmp(ak->val, "synthesis") ||
				   !strcmp(ak->val, "splitter") || !strcmp(ak->val, "reducer")) {
				char *dst = ak->val[0] == 'p' ? a->planner : ak->val[1] == 'y' ? a->synthesis :
					    ak->val[1] == 'p' ? a->splitter : a->reducer;
				rc = agent_str(x, av, kp, dst, FG_AGENT_PROMPT);
			} else {
				static const key_t_ nums[] = {
					{ "max_steps", K_UINT, offsetof(fg_agent_cfg_t, max_steps), 0, 1, 1000 },
					{ "deadline_s", K_UINT, offsetof(fg_agent_cfg_t, deadline_s), 0, 1, 30 * 86400 },
					{ "token_budget", K_UINT, offsetof(fg_agent_cfg_t, token_budget), 0, 1, 0xffffffffu },
					{ "cost_budget", K_MONEY, offsetof(fg_agent_cfg_t, cost_budget), 0, 0, 1000000 },
					{ "approval_timeout_s", K_UINT, offsetof(fg_agent_cfg_t, approval_timeout_s), 0, 1, 365 * 86400 },
					{ NULL, 0, 0, 0, 0, 0 } };
				const key_t_ *q = nums;
				while (q->path && strcmp(q->path, ak->val))
					q++;
				if (!q->path) {
					errat(x, ak->line, ak->col, kp, "unknown key (workflow, system, "
					      "system_file, provider, model, tools, max_steps, deadline_s, "
					      "token_budget, cost_budget, approve, approval_timeout_s, "
					      "approval_default, planner, synthesis, splitter, reducer)");
					return -1;
				}
				if (!strcmp(q->path, "cost_budget")) {
					a->kline[2] = av->line;
					a->kcol[2] = av->col;
				}
				key_t_ kk = *q;
				kk.path = kp;
				rc = set_value(x, &kk, av, (fg_config_t *)(void *)a);
			}
			if (rc < 0)
				return -1;
		}
		if ((a->planner[0] || a->synthesis[0]) && a->workflow != 4) {
			errat(x, v->line, v->col, path, "planner and synthesis are prompts of "
			      "workflow: plan_execute");
			return -1;
		}
		if ((a->splitter[0] || a->reducer[0]) && a->workflow != 3) {
			errat(x, v->line, v->col, path, "splitter and reducer are prompts of "
			      "workflow: map_reduce");
			return -1;
		}
	}
	return 0;
}

const fg_agent_cfg_t *fg_config_agent(const fg_config_t *c, const char *name, size_t n)
{
	for (uint32_t i = 0; i < c->nagents; i++)
		if (strlen(c->agents[i].name) == n && !memcmp(c->agents[i].name, name, n))
			return &c->agents[i];
	return NULL;
}

static int walk(ctx_t *x, const node_t *map, const char *prefix, fg_config_t *c)
{
	if (check_dups(x, map, prefix) < 0)
		return -1;
	for (int i = 0; i < map->nkids; i += 2) {
		const node_t *k = &map->kids[i], *v = &map->kids[i + 1];
		char path[512];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k->val);
		if (strcmp(path, "llm.providers") == 0) {
			if (walk_providers(x, v, c) < 0)
				return -1;
			continue;
		}
		if (strcmp(path, "http.tokens") == 0) {
			int n = str_list(x, v, path, &c->http_tokens[0][0], sizeof(c->http_tokens[0]), 8);
			if (n < 0)
				return -1;
			c->http_ntokens = (uint32_t)n;
			continue;
		}
		if (strcmp(path, "agents") == 0) {
			if (walk_agents(x, v, c) < 0)
				return -1;
			continue;
		}
		if (strcmp(path, "tools") == 0) {
			if (v->type == N_SCALAR && !v->val[0] && !v->quoted)
				continue;   /* "tools:" with everything under it commented out */
			if (walk_tools(x, v, c) < 0)
				return -1;
			continue;
		}
		const key_t_ *found = NULL;
		for (const key_t_ *s = schema; s->path; s++)
			if (strcmp(s->path, path) == 0)
				found = s;
		if (!found) {
			errat(x, k->line, k->col, path, "unknown key");
			return -1;
		}
		if (found->type == K_SECTION) {
			if (v->type == N_SCALAR && v->val[0] == '\0' && !v->quoted)
				continue;   /* "section:" with nothing under it */
			if (v->type != N_MAP) {
				errat(x, v->line, v->col, path, "expected a mapping");
				return -1;
			}
			if (walk(x, v, path, c) < 0)
				return -1;
			continue;
		}
		if (set_value(x, found, v, c) < 0)
			return -1;
	}
	return 0;
}

static int cross_check(ctx_t *x, fg_config_t *c)
{
	int found = 0;
	for (uint32_t i = 0; i < c->nproviders; i++)
		if (strcmp(c->providers[i].name, c->llm_default) == 0)
			found = 1;
	if (!found) {
		errat(x, 1, 1, "llm.default", "names provider \"%s\", which is not in llm.providers",
		      c->llm_default);
		return -1;
	}
	if (c->backoff_max_ms < c->backoff_initial_ms) {
		errat(x, 1, 1, "supervisor.restart.backoff_max_ms",
		      "%u is less than backoff_initial_ms (%u)", c->backoff_max_ms,
		      c->backoff_initial_ms);
		return -1;
	}
	if ((uint64_t)c->sessions * c->session_max_bytes > (16ull << 40)) {
		errat(x, 1, 1, "region.session_max_bytes", "%u sessions x %u bytes is %llu GiB of "
		      "region file (sparse, but ext4 stops at 16 TiB and the address space "
		      "too): lower region.sessions or region.session_max_bytes", c->sessions,
		      c->session_max_bytes,
		      (unsigned long long)((uint64_t)c->sessions * c->session_max_bytes >> 30));
		return -1;
	}
	if (c->session_max_bytes < c->checkpoint_bytes) {
		errat(x, 1, 1, "region.session_max_bytes", "%u is less than region.checkpoint_bytes "
		      "(%u)", c->session_max_bytes, c->checkpoint_bytes);
		return -1;
	}
	if (c->checkpoint_bytes % 8) {
		errat(x, 1, 1, "region.checkpoint_bytes", "%u is not a multiple of 8",
		      c->checkpoint_bytes);
		return -1;
	}
	{
		const char *colon = strrchr(c->http_listen, ':');
		char *end;
		long port = colon ? strtol(colon + 1, &end, 10) : -1;
		if (!colon || colon == c->http_listen || !colon[1] || *end || port < 1 || port > 65535) {
			errat(x, 1, 1, "http.listen", "\"%s\" is not HOST:PORT", c->http_listen);
			return -1;
		}
	}
	if (strcmp(c->interrupted, "result") && strcmp(c->interrupted, "fail")) {
		errat(x, 1, 1, "workflows.interrupted", "\"%s\" is not result or fail", c->interrupted);
		return -1;
	}
	for (uint32_t i = 0; i < c->nagents; i++) {
		const fg_agent_cfg_t *a = &c->agents[i];
		char path[128];
		int pfound = !a->provider[0];
		for (uint32_t k = 0; !pfound && k < c->nproviders; k++)
			pfound = !strcmp(c->providers[k].name, a->provider);
		if (!pfound) {
			snprintf(path, sizeof(path), "agents.%s.provider", a->name);
			errat(x, a->kline[0], a->kcol[0], path, "names provider \"%s\", which is not in "
			      "llm.providers", a->provider);
			return -1;
		}
		const char *pn = a->provider[0] ? a->provider : c->llm_default;
		for (uint32_t k = 0; a->cost_budget > 0 && k < c->nproviders; k++)
			if (!strcmp(c->providers[k].name, pn) && !c->providers[k].price_prompt &&
			    !c->providers[k].price_completion) {
				snprintf(path, sizeof(path), "agents.%s.cost_budget", a->name);
				errat(x, a->kline[2] ? a->kline[2] : a->line, a->kline[2] ? a->kcol[2] : a->col,
				      path, "provider %s has no prices "
				      "(llm.providers.%s.price_prompt_per_mtok, "
				      "price_completion_per_mtok)", pn, pn);
				return -1;
			}
		for (uint32_t t = 0; t < a->ntools; t++) {
			const char *n = a->tools[t];
			int have = !strcmp(n, "calculator") || !strcmp(n, FG_ASK_HUMAN) ||
				   (!strcmp(n, "file_read") && c->file_read_root[0]) ||
				   (!strcmp(n, "shell") && c->shell_nallow) ||
				   (!strcmp(n, "http_get") && c->http_nallow);
			for (uint32_t e = 0; !have && e < c->nexternal; e++)
				have = !strcmp(c->external[e].name, n);
			/* an MCP server's tool (SERVER__TOOL) or all of them
			 * (SERVER__*): its tools are known only when a worker
			 * lists them, so only the server is checked here */
			const char *sep = strstr(n, "__");
			for (uint32_t e = 0; !have && sep && sep[2] && e < c->nmcp; e++)
				have = strlen(c->mcp[e].name) == (size_t)(sep - n) &&
				       !memcmp(c->mcp[e].name, n, (size_t)(sep - n));
			if (!have) {
				snprintf(path, sizeof(path), "agents.%s.tools", a->name);
				errat(x, a->kline[1], a->kcol[1], path, "\"%s\" is not a configured tool "
				      "(calculator; file_read, shell and http_get once tools.* enables "
				      "them; tools.external.NAME; SERVER__TOOL or SERVER__* of "
				      "tools.mcp.SERVER; ask_human)", n);
				return -1;
			}
		}
		for (uint32_t t = 0; t < a->napprove; t++) {
			const char *n = a->approve[t];
			int have = 0;
			for (uint32_t k = 0; !have && k < a->ntools; k++)
				have = !strcmp(a->tools[k], n);
			if (!a->tools_set)
				have = !strcmp(n, "calculator") ||
				       (!strcmp(n, "file_read") && c->file_read_root[0]) ||
				       (!strcmp(n, "shell") && c->shell_nallow) ||
				       (!strcmp(n, "http_get") && c->http_nallow);
			for (uint32_t e = 0; !have && !a->tools_set && e < c->nexternal; e++)
				have = !strcmp(c->external[e].name, n);
			/* an MCP server's tool, or all of them: its server among
			 * the agent's tools (SERVER__*), or configured */
			const char *sep = strstr(n, "__");
			size_t sl = sep ? (size_t)(sep - n) : 0;
			for (uint32_t k = 0; !have && sep && sep[2] && k < a->ntools; k++)
				have = strlen(a->tools[k]) == sl + 3 && !memcmp(a->tools[k], n, sl + 2) &&
				       a->tools[k][sl + 2] == '*';
			for (uint32_t e = 0; !have && !a->tools_set && sep && sep[2] && e < c->nmcp; e++)
				have = strlen(c->mcp[e].name) == sl && !memcmp(c->mcp[e].name, n, sl);
			snprintf(path, sizeof(path), "agents.%s.approve", a->name);
			if (!strcmp(n, FG_ASK_HUMAN)) {
				errat(x, a->kline[3], a->kcol[3], path, "ask_human always waits for a "
				      "person: name it under tools, not approve");
				return -1;
			}
			if (!have) {
				errat(x, a->kline[3], a->kcol[3], path, "\"%s\" is not one of the agent's "
				      "tools", n);
				return -1;
			}
		}
	}
	if (c->heartbeat_ms * 2 > c->watchdog_ms) {
		errat(x, 1, 1, "supervisor.watchdog_ms",
		      "%u must be at least twice heartbeat_ms (%u)", c->watchdog_ms, c->heartbeat_ms);
		return -1;
	}
	return 0;
}

int fg_config_load_buf(fg_config_t *c, const char *name, const char *buf, size_t len,
		       char *err, size_t errlen)
{
	ctx_t x = { name, err, errlen, 0 };
	node_t root;
	fg_config_defaults(c);
	snprintf(c->file, sizeof(c->file), "%s", name);
	if (len > MAX_FILE) {
		errat(&x, 1, 1, NULL, "file is larger than %d bytes", MAX_FILE);
		return -1;
	}
	int rc = parse_tree(&x, buf, len, &root);
	if (rc == 0)
		rc = walk(&x, &root, "", c);
	if (rc == 0)
		rc = cross_check(&x, c);
	node_free(&root);
	return rc;
}

int fg_config_load(fg_config_t *c, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		snprintf(err, errlen, "%s:0:0: cannot open: %s", file, strerror(errno));
		return -1;
	}
	char *buf = malloc(MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s:0:0: out of memory", file);
		return -1;
	}
	size_t n = fread(buf, 1, MAX_FILE + 1, f);
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		free(buf);
		snprintf(err, errlen, "%s:0:0: read error", file);
		return -1;
	}
	int rc = fg_config_load_buf(c, file, buf, n, err, errlen);
	free(buf);
	return rc;
}
