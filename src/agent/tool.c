/* tool.c — see include/forge/tool.h. */
#include "forge/tool.h"

#include "forge/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <curl/curl.h>
#include <math.h>
#include <strings.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALC_DEPTH 64
#define CALC_STACK 256

static int prec(char op)
{
	switch (op) {
	case '+': case '-': return 1;
	case '*': case '/': case '%': return 2;
	case 'u': return 3;      /* unary minus */
	case '^': return 4;
	}
	return 0;
}

static int apply(double *vals, int *nv, char op, char *err, size_t errlen)
{
	if (op == 'u') {
		if (*nv < 1)
			goto missing;
		vals[*nv - 1] = -vals[*nv - 1];
		return 0;
	}
	if (*nv < 2)
		goto missing;
	double b = vals[--*nv], a = vals[*nv - 1], r;
	switch (op) {
	case '+': r = a + b; break;
	case '-': r = a - b; break;
	case '*': r = a * b; break;
	case '/':
		if (b == 0) {
			snprintf(err, errlen, "division by zero");
			return -1;
		}
		r = a / b;
		break;
	case '%':
		if (b == 0) {
			snprintf(err, errlen, "modulo by zero");
			return -1;
		}
		r = fmod(a, b);
		break;
	default: r = pow(a, b); break;
	}
	if (!isfinite(r)) {
		snprintf(err, errlen, "result is not a finite number");
		return -1;
	}
	vals[*nv - 1] = r;
	return 0;
missing:
	snprintf(err, errlen, "operator '%c' is missing an operand", op == 'u' ? '-' : op);
	return -1;
}

int fg_calc(const char *s, size_t n, double *out, char *err, size_t errlen)
{
	double vals[CALC_STACK];
	char ops[CALC_STACK];
	int nv = 0, no = 0, depth = 0, expect_operand = 1;
	size_t i = 0;

	while (i < n) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\n') {
			i++;
			continue;
		}
		if (expect_operand) {
			if (c == '(') {
				if (++depth > CALC_DEPTH) {
					snprintf(err, errlen, "expression nested deeper than %d parentheses",
						 CALC_DEPTH);
					return -1;
				}
				if (no == CALC_STACK)
					goto too_long;
				ops[no++] = '(';
				i++;
			} else if (c == '-' || c == '+') {
				if (c == '-') {
					if (no == CALC_STACK)
						goto too_long;
					ops[no++] = 'u';
				}
				i++;
			} else if ((c >= '0' && c <= '9') || c == '.') {
				char buf[64];
				size_t k = 0;
				while (i < n && k < sizeof(buf) - 1 &&
				       ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' ||
					s[i] == 'E' || ((s[i] == '-' || s[i] == '+') && k > 0 &&
							(buf[k - 1] == 'e' || buf[k - 1] == 'E'))))
					buf[k++] = s[i++];
				buf[k] = '\0';
				char *end = buf;
				double v = 0;
				/* (digits alone, up to 15 of them, are exact as an
				 * integer: strtod's general path was a tenth of a
				 * scripted session's time) */
				while (*end >= '0' && *end <= '9' && end - buf < 15)
					v = v * 10 + (*end++ - '0');
				if (*end || k == 0)
					v = strtod(buf, &end);
				if (*end || k == 0) {
					snprintf(err, errlen, "bad number '%s' at offset %zu", buf, i - k);
					return -1;
				}
				if (nv == CALC_STACK)
					goto too_long;
				vals[nv++] = v;
				expect_operand = 0;
			} else {
				snprintf(err, errlen, "unexpected '%c' at offset %zu", c, i);
				return -1;
			}
			continue;
		}
		if (c == ')') {
			while (no > 0 && ops[no - 1] != '(')
				if (apply(vals, &nv, ops[--no], err, errlen) < 0)
					return -1;
			if (no == 0) {
				snprintf(err, errlen, "unbalanced ')' at offset %zu", i);
				return -1;
			}
			no--;
			depth--;
			i++;
			continue;
		}
		if (!prec(c) || c == 'u') {
			snprintf(err, errlen, "unexpected '%c' at offset %zu", c, i);
			return -1;
		}
		/* ^ is right-associative; the others left */
		while (no > 0 && ops[no - 1] != '(' &&
		       (prec(ops[no - 1]) > prec(c) || (prec(ops[no - 1]) == prec(c) && c != '^')))
			if (apply(vals, &nv, ops[--no], err, errlen) < 0)
				return -1;
		if (no == CALC_STACK)
			goto too_long;
		ops[no++] = c;
		expect_operand = 1;
		i++;
	}
	if (expect_operand) {
		snprintf(err, errlen, nv == 0 && no == 0 ? "empty expression"
							 : "expression ends with an operator");
		return -1;
	}
	while (no > 0) {
		if (ops[no - 1] == '(') {
			snprintf(err, errlen, "unbalanced '('");
			return -1;
		}
		if (apply(vals, &nv, ops[--no], err, errlen) < 0)
			return -1;
	}
	if (nv != 1) {
		snprintf(err, errlen, "malformed expression");
		return -1;
	}
	*out = vals[0];
	return 0;
too_long:
	snprintf(err, errlen, "expression has more than %d terms pending", CALC_STACK);
	return -1;
}

/* calculator {"expression": "..."} */
static int run_calculator(const fg_tool_t *t, const char *args, size_t n, char *out, size_t outlen)
{
	(void)t;
	json_error_t je;
	json_t *j = json_loadb(args, n, 0, &je);
	const char *expr = json_string_value(json_object_get(j, "expression"));
	int rc = -1;
	if (!json_is_object(j)) {
		snprintf(out, outlen, "error: arguments are not a JSON object: %s", je.text);
	} else if (!expr) {
		snprintf(out, outlen, "error: \"expression\" (a string) is required");
	} else {
		double v;
		char err[128];
		if (fg_calc(expr, strlen(expr), &v, err, sizeof(err)) < 0) {
			snprintf(out, outlen, "error: %s", err);
		} else {
			/* (an integer below 1e15 prints as %.15g would, without
			 * its general floating-point path) */
			if (fabs(v) < 1e15 && v == (double)(long long)v && !(v == 0 && signbit(v)))
				snprintf(out, outlen, "%lld", (long long)v);
			else
				snprintf(out, outlen, "%.15g", v);
			rc = 0;
		}
	}
	json_decref(j);
	return rc;
}

/* file_read {"path": "relative/path"}: confined to tools.file_read.root by
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): no escape by "..", an
 * absolute path or a symlink, checked by the kernel, not by string tests. */
static int root_fd = -1;

static int run_file_read(const fg_tool_t *t, const char *args, size_t n, char *out, size_t outlen)
{
	json_t *j = json_loadb(args, n, 0, NULL);
	const char *path = json_string_value(json_object_get(j, "path"));
	int rc = -1, fd = -1;
	if (!path || !*path) {
		snprintf(out, outlen, "error: \"path\" (a non-empty string) is required");
		goto done;
	}
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	if (fd < 0) {
		snprintf(out, outlen, "error: cannot open %s: %s", path,
			 errno == EXDEV || errno == ELOOP ? "outside the allowed directory"
							  : strerror(errno));
		goto done;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(out, outlen, "error: %s is not a regular file", path);
		goto done;
	}
	size_t cap = t->max_output < outlen - 64 ? t->max_output : outlen - 64;
	ssize_t got = read(fd, out, cap);
	if (got < 0) {
		snprintf(out, outlen, "error: cannot read %s: %s", path, strerror(errno));
		goto done;
	}
	out[got] = '\0';
	if (memchr(out, '\0', (size_t)got)) {
		snprintf(out, outlen, "error: %s is a binary file", path);
		goto done;
	}
	if ((off_t)got < st.st_size)
		snprintf(out + got, outlen - (size_t)got, "\n[truncated: %lld of %lld bytes shown]",
			 (long long)got, (long long)st.st_size);
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	json_decref(j);
	return rc;
}

static const fg_config_t *tcfg;

/* shell {"command": ["prog", "arg", ...]}: argv, never a shell. */
static int prep_shell(const fg_tool_t *t, const char *args, size_t n, char **argv, char *buf,
		      size_t buflen, const char **in, size_t *in_n, char *err, size_t errlen)
{
	(void)t;
	json_t *j = json_loadb(args, n, 0, NULL);
	json_t *cmd = json_object_get(j, "command");
	size_t k = json_array_size(cmd), used = 0;
	int rc = -1;
	*in = NULL;
	*in_n = 0;
	if (!json_is_array(cmd) || k == 0 || k >= FG_TOOL_MAX_ARGS) {
		snprintf(err, errlen, "error: \"command\" must be an array of 1 to %d strings",
			 FG_TOOL_MAX_ARGS - 1);
		goto done;
	}
	for (size_t i = 0; i < k; i++) {
		const char *a = json_string_value(json_array_get(cmd, i));
		size_t l = a ? strlen(a) : 0;
		if (!a || used + l + 1 > buflen) {
			snprintf(err, errlen, "error: argument %zu is not a string or is too long", i);
			goto done;
		}
		memcpy(buf + used, a, l + 1);
		argv[i] = buf + used;
		used += l + 1;
	}
	argv[k] = NULL;
	int allowed = 0;
	for (uint32_t i = 0; i < tcfg->shell_nallow; i++)
		if (!strcmp(argv[0], tcfg->shell_allow[i]))
			allowed = 1;
	if (!allowed || strchr(argv[0], '/')) {
		snprintf(err, errlen, "error: \"%s\" is not an allowed command", argv[0]);
		goto done;
	}
	rc = 0;
done:
	json_decref(j);
	return rc;
}

/* external tool: the configured argv; the arguments JSON on stdin */
static int prep_external(const fg_tool_t *t, const char *args, size_t n, char **argv, char *buf,
			 size_t buflen, const char **in, size_t *in_n, char *err, size_t errlen)
{
	(void)buf;
	(void)buflen;
	json_t *j = json_loadb(args, n, 0, NULL);
	int ok = json_is_object(j);
	json_decref(j);
	if (!ok) {
		snprintf(err, errlen, "error: arguments are not a JSON object");
		return -1;
	}
	for (uint32_t i = 0; i < t->ext->argc; i++)
		argv[i] = (char *)t->ext->argv[i];
	argv[t->ext->argc] = NULL;
	*in = args;
	*in_n = n;
	return 0;
}

int fg_tool_http_url(const char *args, size_t n, char *url, size_t urllen, char *err,
		     size_t errlen)
{
	json_t *j = json_loadb(args, n, 0, NULL);
	const char *u = json_string_value(json_object_get(j, "url"));
	int rc = -1;
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL;
	if (!u || strlen(u) >= urllen) {
		snprintf(err, errlen, "error: \"url\" (a string under %zu bytes) is required", urllen);
		goto done;
	}
	if (curl_url_set(h, CURLUPART_URL, u, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "error: \"%s\" is not a URL", u);
		goto done;
	}
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		snprintf(err, errlen, "error: only http and https URLs are fetched");
		goto done;
	}
	int ok = 0;
	for (uint32_t i = 0; i < tcfg->http_nallow; i++)
		if (!strcasecmp(host, tcfg->http_allow[i]))
			ok = 1;
	if (!ok) {
		snprintf(err, errlen, "error: host %s is not allowed", host);
		goto done;
	}
	snprintf(url, urllen, "%s", u);
	rc = 0;
done:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	json_decref(j);
	return rc;
}

static fg_tool_t reg[5 + FG_MAX_EXTERNAL];
static size_t nreg;

void fg_tools_init(const fg_config_t *cfg)
{
	tcfg = cfg;
	nreg = 0;
	reg[nreg++] = (fg_tool_t){ "calculator",
		"Evaluate an arithmetic expression (+ - * / % ^ and parentheses).",
		"{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\","
		"\"description\":\"for example (2+3)*4\"}},\"required\":[\"expression\"]}",
		1, FG_TOOL_INLINE, 0, 0, run_calculator, NULL, NULL };
	if (cfg && cfg->file_read_root[0]) {
		if (root_fd >= 0)
			close(root_fd);
		root_fd = open(cfg->file_read_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0)
			log_warn("tools.file_read.root %s: file_read disabled", cfg->file_read_root);
		else
			reg[nreg++] = (fg_tool_t){ "file_read",
				"Read a text file under the allowed directory.",
				"{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\","
				"\"description\":\"path relative to the allowed directory\"}},"
				"\"required\":[\"path\"]}",
				1, FG_TOOL_INLINE, 0, cfg->file_read_max, run_file_read, NULL, NULL };
	}
	if (cfg && cfg->shell_nallow)
		reg[nreg++] = (fg_tool_t){ "shell",
			"Run an allowed program with arguments (no shell syntax).",
			"{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"array\","
			"\"items\":{\"type\":\"string\"},\"description\":\"program and arguments\"}},"
			"\"required\":[\"command\"]}",
			0, FG_TOOL_PROCESS, cfg->shell_timeout_ms, cfg->shell_max_output, NULL,
			prep_shell, NULL };
	if (cfg && cfg->http_nallow)
		reg[nreg++] = (fg_tool_t){ "http_get",
			"Fetch a URL on an allowed host (GET; no redirects).",
			"{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\"}},"
			"\"required\":[\"url\"]}",
			1, FG_TOOL_HTTP, cfg->http_timeout_ms, cfg->http_max_bytes, NULL, NULL, NULL };
	for (uint32_t i = 0; cfg && i < cfg->nexternal; i++) {
		const fg_external_cfg_t *e = &cfg->external[i];
		fg_tool_t t = { "", e->description[0] ? e->description : e->name, e->schema,
				(int)e->idempotent, FG_TOOL_PROCESS, e->timeout_ms, e->max_output,
				NULL, prep_external, e };
		snprintf(t.name, sizeof(t.name), "%s", e->name);
		reg[nreg++] = t;
	}
}

const fg_tool_t *fg_tool_find(const char *name, size_t n)
{
	if (nreg == 0)
		fg_tools_init(NULL);
	for (size_t i = 0; i < nreg; i++)
		if (strlen(reg[i].name) == n && memcmp(reg[i].name, name, n) == 0)
			return &reg[i];
	return NULL;
}

json_t *fg_tools_json(void)
{
	if (nreg == 0)
		fg_tools_init(NULL);
	json_t *a = json_array();
	for (size_t i = 0; i < nreg; i++) {
		json_t *schema = json_loads(reg[i].schema, 0, NULL);
		json_array_append_new(a, json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function",
			"function", "name", reg[i].name, "description", reg[i].description,
			"parameters", schema ? schema : json_object()));
	}
	return a;
}

int fg_spawn(char *const argv[], char *const envp[], const fg_spawn_limits_t *lim, int err_to_out,
	     pid_t *pid, int *pidfd, int *infd, int *outfd, char *err, size_t errlen)
{
	int op[2] = { -1, -1 }, ip[2] = { -1, -1 }, ep[2] = { -1, -1 };
	if (pipe2(op, O_CLOEXEC) < 0 || pipe2(ip, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	pid_t parent = getpid();
	pid_t p = fork();
	if (p < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (p == 0) {
		/* child: only async-signal-safe calls until exec */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		setpgid(0, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(ip[0], 0);
		dup2(op[1], 1);
		if (err_to_out)
			dup2(op[1], 2);
		/* the exec-failure pipe at 3 (closed by a successful exec), then
		 * every other descriptor closed, the region lock included */
		if (ep[1] != 3 && dup3(ep[1], 3, O_CLOEXEC) < 0)
			_exit(127);
		syscall(SYS_close_range, 4u, ~0u, 0u);
		if (lim) {
			struct rlimit cpu = { lim->cpu_s, lim->cpu_s + 1 };
			struct rlimit as = { lim->as_bytes, lim->as_bytes };
			struct rlimit fsz = { lim->fsize_bytes, lim->fsize_bytes };
			struct rlimit nofile = { lim->nofile, lim->nofile };
			setrlimit(RLIMIT_CPU, &cpu);
			setrlimit(RLIMIT_AS, &as);
			setrlimit(RLIMIT_FSIZE, &fsz);
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
		if (envp)
			execvpe(argv[0], argv, envp);
		else
			execvp(argv[0], argv);
		int e = errno;   /* the exec failure, through the close-on-exec pipe */
		ssize_t wr = write(3, &e, sizeof(e));
		(void)wr;
		_exit(127);
	}
	close(ep[1]);
	ep[1] = -1;
	int e = 0;
	ssize_t r;
	do
		r = read(ep[0], &e, sizeof(e));   /* EOF at exec, or the errno */
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof(e)) {
		waitpid(p, NULL, 0);
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(e));
		goto fail;
	}
	*pidfd = (int)syscall(SYS_pidfd_open, p, 0);
	if (*pidfd < 0) {
		snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
		kill(-p, SIGKILL);
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		goto fail;
	}
	close(ep[0]);
	close(ip[0]);
	close(op[1]);
	*pid = p;
	*infd = ip[1];
	*outfd = op[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (op[i] >= 0) close(op[i]);
		if (ip[i] >= 0) close(ip[i]);
		if (ep[i] >= 0) close(ep[i]);
	}
	return -1;
}

int fg_tool_spawn(char *const argv[], const char *in, size_t in_n, uint32_t timeout_ms,
		  pid_t *pid, int *pidfd, int *outfd, char *err, size_t errlen)
{
	if (in_n > 65536) {
		snprintf(err, errlen, "error: arguments longer than 64 KiB");
		return -1;
	}
	const fg_spawn_limits_t lim = { timeout_ms / 1000 + 1, 1ull << 30, 16u << 20, 64 };
	char why[300];
	int infd;
	if (fg_spawn(argv, NULL, &lim, 1, pid, pidfd, &infd, outfd, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "error: %s", why);
		return -1;
	}
	/* the arguments fit the pipe buffer (64 KiB): written at once */
	if (in_n) {
		ssize_t w = write(infd, in, in_n);
		(void)w;
	}
	close(infd);
	fcntl(*outfd, F_SETFL, O_NONBLOCK);
	return 0;
}

void fg_tool_result(const fg_tool_t *t, int exited, int code, int timed_out, int truncated,
		    const char *out, size_t n, char *res, size_t reslen)
{
	if (timed_out) {
		snprintf(res, reslen, "error: %s timed out after %u ms and was killed; output so far: %.*s",
			 t->name, t->timeout_ms, (int)(n < 512 ? n : 512), out);
		return;
	}
	if (!exited) {
		snprintf(res, reslen, "error: %s was killed by signal %d (%s)", t->name, code,
			 code == SIGXCPU ? "CPU time limit" : strsignal(code));
		return;
	}
	if (t->ext) {
		json_error_t je;
		json_t *j = json_loadb(out, n, 0, &je);
		if (code != 0)
			snprintf(res, reslen, "error: %s exited with status %d: %.*s", t->name, code,
				 (int)(n < 512 ? n : 512), out);
		else if (!j || truncated)
			snprintf(res, reslen, "error: %s did not answer JSON on stdout (%s)", t->name,
				 truncated ? "output over its cap" : je.text);
		else
			snprintf(res, reslen, "%.*s", (int)n, out);
		json_decref(j);
		return;
	}
	snprintf(res, reslen, "exit status %d%s\n%.*s", code,
		 truncated ? " (output truncated)" : "", (int)n, out);
}
