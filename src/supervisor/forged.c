/*
 * forged — the forge supervisor.  Thin: parses arguments, loads the
 * configuration, and hands over to src/supervisor.c.
 */
#include "forge/config.h"
#include "forge/crash.h"
#include "forge/durable.h"
#include "forge/log.h"
#include "forge/supervisor.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
"Usage: forged -c FILE [--check-config] [--reset] [-v]\n"
"\n"
"Runs the forge supervisor in the foreground: creates or re-attaches the\n"
"shared region named in FILE, forks the workers, restarts any that die\n"
"(their sessions resume from their last checkpoint), and drains on SIGTERM.\n"
"\n"
"Options:\n"
"  -c, --config FILE   configuration file (YAML); see config/forge.yaml\n"
"      --check-config  validate FILE and exit: 0 if valid, 78 if not\n"
"      --reset         if the region at region.path is invalid or was made\n"
"                      for another size, delete it and create a new one\n"
"                      (its sessions are lost).  Without it forged refuses\n"
"                      an invalid region, and resizes one made for another\n"
"                      size (region.sessions, checkpoint_bytes,\n"
"                      session_max_bytes, worker.max_inflight), keeping\n"
"                      every session\n"
"  -v, --verbose       log at debug level (overrides log.level)\n"
"  -h, --help          this text\n"
"\n"
"Exit status: 0 after a clean drain, 1 on a runtime error, 78 (EX_CONFIG)\n"
"for an invalid configuration.  Errors name FILE:LINE:COL and the key.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "reset", no_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *file = NULL;
	int check = 0, verbose = 0, c;
	fg_sup_opts_t so = { 0 };

	fg_log_init("forged", FG_LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': file = optarg; break;
		case 'C': check = 1; break;
		case 'R': so.reset = 1; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "forged: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 64;
	}
	if (!file) {
		fprintf(stderr, "forged: -c FILE is required\n");
		usage(stderr);
		return 64;
	}
	static fg_config_t cfg;
	char err[1024];
	if (fg_config_load(&cfg, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return FG_EX_CONFIG;
	}
	if (cfg.durability != FG_DUR_NONE &&
	    fg_durable_fs_ok(cfg.region_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: region.durability: %s: %s\n", file,
			fg_durability_name(cfg.durability), err);
		return FG_EX_CONFIG;
	}
	if (check) {
		printf("%s: configuration is valid\n", file);
		return 0;
	}
	fg_log_level = verbose ? FG_LOG_DEBUG : fg_log_parse_level(cfg.log_level);
	/* once, before any fork: every worker's libcurl shares this setup */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "forged: curl_global_init failed\n");
		return 1;
	}
	fg_crash_report_install("forged");
	return fg_supervisor_run(&cfg, &so);
}
