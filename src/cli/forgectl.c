/*
 * forgectl — inspect and steer forge straight from its region.  This file
 * parses arguments and dispatches from the command table; the commands are
 * in read.c and steer.c.
 * Reading commands map the region read-only; submit maps it read-write and
 * takes a client slot (so a forgectl killed mid-submit is recovered like a
 * worker); kill-worker only signals, after checking the pid.
 */

#include "cli/cli.h"
#include "forge/config.h"
#include "forge/log.h"
#include "forge/region.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/crash.h"
#include "forge/util.h"
#include "forge/conv.h"
#include "forge/views.h"
#include "forge/inspect.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
"Usage: forgectl [-c FILE | --region PATH] COMMAND [ARGS] [--json]\n"
"\n"
"Inspects and steers a running (or stopped) forge through its shared region.\n"
"\n"
"Region selection:\n"
"  -c, --config FILE   read region.path from FILE\n"
"  -r, --region PATH   the region file (default /dev/shm/forge, or\n"
"                      region.path of /etc/forge/forge.yaml if it exists)\n"
"\n"
"Commands:\n"
"  status                      supervisor state and a summary\n"
"  workers                     one line per worker slot\n"
"  sessions [--state S] [--limit N]\n"
"                              sessions, optionally in state S\n"
"                              (queued, running, done, failed, cancelled)\n"
"  session ID                  one session (ID as printed by submit)\n"
"  stats                       counts by state, workers, recovery timings\n"
"  check                       verify every invariant of the region;\n"
"                              exit 1 naming each violation\n"
"  submit --workflow synthetic --steps K [--count N] [--delay-us U]\n"
"  submit --workflow react --prompt TEXT [--system TEXT] [--provider NAME]\n"
"         [--max-steps N] [--count N]\n"
"  submit --workflow map_reduce|plan_execute --prompt TEXT [--provider NAME]\n"
"         [--child-provider NAME] [--max-parts N] [--count N]\n"
"  submit --agent NAME --prompt TEXT [--system TEXT] [--provider NAME]\n"
"         [--max-steps N] [--count N]\n"
"                              submit N sessions; prints one ID per line\n"
"                              (--jobs J: J processes submit N/J each,\n"
"                              for many workers; at most 8)\n"
"                              (react: a tool-using agent; NAME from\n"
"                              llm.providers, default llm.default; an\n"
"                              agent (agents.NAME) brings its workflow,\n"
"                              prompts, model parameters, tools and limits)\n"
"  wait [--timeout S]          exit 0 once nothing is queued or running,\n"
"                              1 on timeout (default: wait forever)\n"
"  kill-worker SLOT [--signal SIG]\n"
"                              signal worker SLOT (default KILL) after\n"
"                              checking that its pid is that worker\n"
"  watch ID [--timeout S]      follow a session's messages (or steps) live;\n"
"                              exit 0 when it is done, 1 if it failed\n"
"  top [--count N]             a live view of workers, sessions, rates and\n"
"                              ring depths, every second (N frames)\n"
"  say ID TEXT                 a thread's next message: a finished react\n"
"                              session takes TEXT as its next user message\n"
"                              and runs again with its whole conversation\n"
"                              (forgectl watch ID follows it)\n"
"  fork ID [--at N] [TEXT]     a new session from a past point of ID (its\n"
"                              first N messages, as session ID --json\n"
"                              numbers them; default all), then TEXT as a\n"
"                              user message; runs on from there and prints\n"
"                              its id (ID is left as it is)\n"
"  pending                     calls that wait for a person: session, call,\n"
"                              tool and arguments (or question), timeout\n"
"  approve ID [--call C] [--args JSON]\n"
"                              approve the call that session ID waits for\n"
"                              (C: which one, if several); with --args it\n"
"                              runs with these arguments instead (edit)\n"
"  reject ID [--call C] [--reason TEXT]\n"
"                              the call is not run; the model is told so,\n"
"                              with TEXT\n"
"  answer ID TEXT [--call C]   answer an ask_human question with TEXT\n"
"                              (approve, reject, answer: while the session\n"
"                              still runs a tool of its turn, they wait for\n"
"                              it to wait, --timeout S, default 60)\n"
"  resume ID                   a failed session runs again from its last\n"
"                              commit (after a provider outage, say)\n"
"  cancel ID                   cancel a session: a queued one at once, a\n"
"                              running one within milliseconds (its LLM\n"
"                              request aborted, its tools killed)\n"
"  reload                      validate the configuration (-c FILE) and ask\n"
"                              forged to apply it (workers restart one at a\n"
"                              time); waits for forged's answer: a file it\n"
"                              refuses (invalid, or changing the region's\n"
"                              geometry) exits 78 with the reason\n"
"  purge [--older-than S] [--state S]\n"
"                              free finished sessions (done, failed and\n"
"                              cancelled; or state S) that ended more than\n"
"                              S seconds ago (default 0) for reuse; their\n"
"                              IDs are then unknown.  Children of a running\n"
"                              parent are kept.  forged does this itself\n"
"                              for sessions older than region.retain_s\n"
"  drain | stop [--timeout S]  ask forged to stop taking work and exit;\n"
"                              with --timeout, wait until it has\n"
"\n"
"Every reading command takes --json for machine-readable output.\n"
"Exit status: 0 success, 1 failure (check violations, wait timeout),\n"
"2 usage error, 3 region cannot be opened.\n";

struct cli_opts o = { .at = -1, .max_steps = -1, .max_parts = 8, .state = -1, .limit = -1, .count = 1, .jobs = 1, .steps = -1, .timeout_s = -1 };

fg_region_t R;
fg_config_t CFG;
int have_cfg;

int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "forgectl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nRun 'forgectl --help' for usage.\n");
	exit(2);
}

/* A session id from the command line: a malformed one is a usage error
 * (exit 2); one of another region (or a recreated one) is said, -1. */
int parse_id(const char *id, fg_handle_t *h)
{
	int pe = fg_id_parse(&R, id, h);
	if (pe == -EINVAL)
		die_usage("'%s' is not a session id (32 hex digits, as printed by submit)", id);
	if (pe < 0) {
		fprintf(stderr, "forgectl: no session %s (an id of another region)\n", id);
		return -1;
	}
	return 0;
}

long num_arg(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "forgectl: %s: '%s' is not a number in [%ld, %ld]\n", opt, s, lo, hi);
		exit(2);
	}
	return v;
}

static void open_region(int writable)
{
	char path[4096], err[1024];
	const char *file = o.config;
	struct stat st;
	if (!file && !o.region && stat("/etc/forge/forge.yaml", &st) == 0)
		file = "/etc/forge/forge.yaml";
	if (file) {
		fg_config_defer_files = 1;   /* (read by submit --agent, when used) */
		if (fg_config_load(&CFG, file, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			exit(FG_EX_CONFIG);
		}
		have_cfg = 1;
	} else {
		fg_config_defaults(&CFG);
	}
	snprintf(path, sizeof(path), "%s", o.region ? o.region : CFG.region_path);
	/* (2: writable if this user may, to wait on sessions' bells; else
	 * read-only, polling) */
	if (writable == 2 && fg_region_open(path, 1, &R, err, sizeof(err)) == 0)
		return;
	if (fg_region_open(path, writable == 1, &R, err, sizeof(err)) < 0) {
		fprintf(stderr, "forgectl: cannot open region %s\n", err);
		exit(3);
	}
}

void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	puts(s);
	free(s);
	json_decref(j);
}

/* The commands: name, whether it maps the region writable (2: if it may),
 * whether it takes an argument (an id or a slot), and what runs it. */
static const struct command {
	const char *name;
	int writable, needs_arg;
	int (*fn)(const char *arg);
} commands[] = {
	{ "status",      0, 0, cmd_status },
	{ "workers",     0, 0, cmd_workers },
	{ "sessions",    0, 0, cmd_sessions },
	{ "session",     0, 1, cmd_session },
	{ "stats",       0, 0, cmd_stats },
	{ "check",       0, 0, cmd_check },
	{ "wait",        2, 0, cmd_wait },
	{ "watch",       2, 1, cmd_watch },
	{ "top",         0, 0, cmd_top },
	{ "submit",      1, 0, cmd_submit },
	{ "cancel",      1, 1, cmd_cancel },
	{ "say",         1, 1, cmd_say },
	{ "resume",      1, 1, cmd_resume },
	{ "pending",     0, 0, cmd_pending },
	{ "approve",     1, 1, cmd_approve },
	{ "reject",      1, 1, cmd_reject },
	{ "answer",      1, 1, cmd_answer },
	{ "fork",        1, 1, cmd_fork },
	{ "purge",       1, 0, cmd_purge },
	{ "kill-worker", 0, 1, cmd_kill_worker },
	{ "reload",      0, 0, cmd_reload },
	{ "drain",       0, 0, cmd_drain },
	{ "stop",        0, 0, cmd_drain },
};

int main(int argc, char **argv)
{
	enum { O_JSON = 256, O_STATE, O_LIMIT, O_WORKFLOW, O_STEPS, O_COUNT, O_DELAY,
	       O_TIMEOUT, O_SIGNAL, O_PROMPT, O_SYSTEM, O_PROVIDER, O_MAXSTEPS, O_CHILDPROV,
	       O_MAXPARTS, O_OLDER, O_AT, O_AGENT, O_CALL, O_ARGS, O_REASON, O_JOBS };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, O_JSON },
		{ "state", required_argument, NULL, O_STATE },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "workflow", required_argument, NULL, O_WORKFLOW },
		{ "steps", required_argument, NULL, O_STEPS },
		{ "count", required_argument, NULL, O_COUNT },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "delay-us", required_argument, NULL, O_DELAY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "signal", required_argument, NULL, O_SIGNAL },
		{ "prompt", required_argument, NULL, O_PROMPT },
		{ "system", required_argument, NULL, O_SYSTEM },
		{ "provider", required_argument, NULL, O_PROVIDER },
		{ "max-steps", required_argument, NULL, O_MAXSTEPS },
		{ "child-provider", required_argument, NULL, O_CHILDPROV },
		{ "max-parts", required_argument, NULL, O_MAXPARTS },
		{ "older-than", required_argument, NULL, O_OLDER },
		{ "at", required_argument, NULL, O_AT },
		{ "agent", required_argument, NULL, O_AGENT },
		{ "call", required_argument, NULL, O_CALL },
		{ "args", required_argument, NULL, O_ARGS },
		{ "reason", required_argument, NULL, O_REASON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;
	const char *cmd = NULL, *arg = NULL;
	fg_log_init("forgectl", FG_LOG_WARN);
	/* GNU getopt permutes: options may come before or after the command. */
	while ((c = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'r': o.region = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case O_JSON: o.json = 1; break;
		case O_STATE:
			if ((o.state = fg_state_parse(optarg)) < 0)
				die_usage("--state: unknown state '%s'", optarg);
			break;
		case O_LIMIT: o.limit = num_arg("--limit", optarg, 0, 1L << 30); break;
		case O_WORKFLOW: o.workflow = optarg; break;
		case O_STEPS: o.steps = num_arg("--steps", optarg, 0, 1000000); break;
		case O_COUNT: o.count = num_arg("--count", optarg, 1, 1L << 24); o.count_set = 1; break;
		case O_JOBS: o.jobs = num_arg("--jobs", optarg, 1, FG_MAX_JOBS); break;
		case O_DELAY: o.delay_us = num_arg("--delay-us", optarg, 0, 3600000000L); break;
		case O_TIMEOUT: o.timeout_s = num_arg("--timeout", optarg, 0, 1L << 30); break;
		case O_SIGNAL: o.signal = optarg; break;
		case O_PROMPT: o.prompt = optarg; break;
		case O_SYSTEM: o.system = optarg; break;
		case O_PROVIDER: o.provider = optarg; break;
		case O_MAXSTEPS: o.max_steps = num_arg("--max-steps", optarg, 1, 1000); break;
		case O_CHILDPROV: o.child_provider = optarg; break;
		case O_MAXPARTS: o.max_parts = num_arg("--max-parts", optarg, 1, FG_MAX_PARTS); break;
		case O_OLDER: o.older_than_s = num_arg("--older-than", optarg, 0, 1L << 30); break;
		case O_AT: o.at = num_arg("--at", optarg, 0, 0x7fffffffL); break;
		case O_AGENT: o.agent = optarg; break;
		case O_CALL: o.call = optarg; break;
		case O_ARGS: o.args = optarg; break;
		case O_REASON: o.reason = optarg; break;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (optind < argc)
		arg = argv[optind++];
	if (!strcmp(cmd, "say")) {   /* say ID TEXT: the text is the second argument */
		if (optind >= argc)
			die_usage("say: missing TEXT (%s)", "forgectl say ID TEXT");
		say_text = argv[optind++];
	} else if (!strcmp(cmd, "answer")) {   /* answer ID TEXT */
		if (optind >= argc)
			die_usage("answer: missing TEXT (%s)", "forgectl answer ID TEXT");
		say_text = argv[optind++];
	} else if (!strcmp(cmd, "fork") && optind < argc) {   /* fork ID [TEXT] */
		say_text = argv[optind++];
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	const struct command *k = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !k; i++)
		if (!strcmp(cmd, commands[i].name))
			k = &commands[i];
	if (!k)
		die_usage("unknown command '%s'", cmd);
	if (k->needs_arg && !arg)
		die_usage("%s: missing argument", cmd);
	if (!k->needs_arg && arg)
		die_usage("unexpected argument '%s'", arg);
	open_region(k->writable);
	return k->fn(arg);
}
