/*
 * log.h — a small log module in the manner of OpenBSD daemons.
 * Everything goes to stderr (journald captures it), one line per call,
 * prefixed with the program name and pid.  The level is checked before
 * formatting, so a disabled log_debug costs one compare.
 */
#ifndef FORGE_LOG_H
#define FORGE_LOG_H

#include <stdarg.h>

enum fg_log_level { FG_LOG_ERROR = 0, FG_LOG_WARN, FG_LOG_INFO, FG_LOG_DEBUG };

extern int fg_log_level;

void fg_log_init(const char *progname, int level);
/* Parses "error", "warn", "info", "debug"; returns -1 on anything else. */
int  fg_log_parse_level(const char *s);
void fg_log_set_prog(const char *progname);

void fg_log(int level, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
_Noreturn void fg_fatal(int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_warn(...)  do { if (fg_log_level >= FG_LOG_WARN)  fg_log(FG_LOG_WARN, 1, __VA_ARGS__); } while (0)
#define log_warnx(...) do { if (fg_log_level >= FG_LOG_WARN)  fg_log(FG_LOG_WARN, 0, __VA_ARGS__); } while (0)
#define log_errx(...)  fg_log(FG_LOG_ERROR, 0, __VA_ARGS__)
#define log_info(...)  do { if (fg_log_level >= FG_LOG_INFO)  fg_log(FG_LOG_INFO, 0, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (fg_log_level >= FG_LOG_DEBUG) fg_log(FG_LOG_DEBUG, 0, __VA_ARGS__); } while (0)
#define fatal(...)     fg_fatal(1, __VA_ARGS__)
#define fatalx(...)    fg_fatal(0, __VA_ARGS__)

#endif
