/*
 * cli.h — what forgectl's files share (private to src/cli/): the parsed
 * options, the region and configuration they act on, and the commands.
 * forgectl.c parses arguments and dispatches from its command table;
 * read.c holds the reading commands (the region mapped read-only), and
 * steer.c the ones that change something (submit, cancel, purge, signals).
 */
#ifndef FORGE_CLI_H
#define FORGE_CLI_H

#include "forge/config.h"
#include "forge/region.h"
#include "forge/session.h"

#include <jansson.h>

struct cli_opts {
	const char *config, *region;
	int json;
	int state;
	long limit, count, steps, delay_us, timeout_s;
	int count_set;
	long jobs;            /* submit --jobs J (1: none)             */
	const char *workflow, *signal, *prompt, *system, *provider, *child_provider, *agent;
	long max_steps, max_parts;
	long older_than_s;
	long at;              /* fork --at N (-1: all)                  */
	const char *call, *args, *reason;   /* approve / reject / answer   */
};

/* submit --jobs: at most (of FG_CLIENT_SLOTS client slots; the gateway
 * takes one) */
#define FG_MAX_JOBS 8

extern struct cli_opts o;
extern fg_region_t R;
extern fg_config_t CFG;      /* loaded when -c (or /etc/forge/forge.yaml) is there */
extern int have_cfg;

int die_usage(const char *fmt, const char *arg);
int parse_id(const char *id, fg_handle_t *h);
long num_arg(const char *opt, const char *s, long lo, long hi);
void print_json(json_t *j);
const char *sup_state_name(uint32_t s);
int sup_alive(void);
json_t *session_json(fg_handle_t h, int full);

/* reading commands (read.c) */
int cmd_status(const char *arg);
int cmd_workers(const char *arg);
int cmd_sessions(const char *arg);
int cmd_session(const char *id);
int cmd_stats(const char *arg);
int cmd_check(const char *arg);
int cmd_wait(const char *arg);
int cmd_watch(const char *id);
int cmd_top(const char *arg);
/* steering commands (steer.c) */
int cmd_submit(const char *arg);
int cmd_kill_worker(const char *slot);
int cmd_cancel(const char *id);
int cmd_say(const char *id);
int cmd_fork(const char *id);
int cmd_resume(const char *id);
int cmd_pending(const char *arg);
int cmd_approve(const char *id);
int cmd_reject(const char *id);
int cmd_answer(const char *id);
extern const char *say_text;   /* say ID TEXT */
int cmd_reload(const char *arg);
int cmd_purge(const char *arg);
int cmd_drain(const char *arg);

#endif
