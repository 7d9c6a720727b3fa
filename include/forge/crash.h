/*
 * crash.h — crash points (SQLite's test6.c in spirit).
 *
 * FG_CRASHPOINT("ring.enq.after_claim") marks a step of a shared operation.
 * In builds made with -DFG_CRASHPOINTS (build/test/), the process kills
 * itself with SIGKILL at the Nth hit of the point named by the environment
 * variable FORGE_CRASHPOINT="name:N" once fg_crash_arm() has armed it.
 * In release builds the macro is empty.
 *
 * Stall points (README.md: a stall is as safe as a death) are the same names: with
 * FORGE_STALLPOINT="name:N" the process stops itself (SIGSTOP) at the Nth
 * hit instead, after writing its pid to FORGE_STALL_FILE (when set, by
 * rename, so a test that sees the file may read a whole pid), and goes on
 * where it stopped when the test sends SIGCONT.  A test holds process A at
 * a step of a shared operation that way while B proceeds.
 */
#ifndef FORGE_CRASH_H
#define FORGE_CRASH_H

#include <stdint.h>

#ifdef FG_CRASHPOINTS
extern int fg_points_armed;
void fg_crash_hit(const char *name);
/* Reads FORGE_CRASHPOINT and FORGE_STALLPOINT; call where the process
 * should become killable (or stoppable). */
void fg_crash_arm(void);
/*
 * Arms only the process that FORGE_CRASH_SLOT names ("0".."63" for a
 * worker slot, "supervisor"), in its generation FORGE_CRASH_GEN (default 1,
 * the first process in that slot), so that the restarted one runs clean.
 */
void fg_crash_arm_if(const char *who, uint32_t gen);
void fg_crash_disarm(void);
#define FG_CRASHPOINT(name) do { if (fg_points_armed) fg_crash_hit(name); } while (0)
#else
#define FG_CRASHPOINT(name) do { } while (0)
static inline void fg_crash_arm(void) { }
static inline void fg_crash_arm_if(const char *who, uint32_t gen) { (void)who; (void)gen; }
static inline void fg_crash_disarm(void) { }
#endif

/*
 * Fatal-signal reports, in every build: on SIGSEGV, SIGBUS, SIGFPE, SIGILL
 * or SIGABRT the process writes "PROG[PID]: fatal signal SIGx; backtrace:"
 * and its stack (addresses for addr2line) to stderr, then dies of the same
 * signal, so its supervisor sees the real cause.  Only async-signal-safe
 * calls in the handler; backtrace() is primed at install time.
 */
void fg_crash_report_install(const char *prog);

/* Every crash point compiled into forge, for the crash-point test. */
extern const char *const fg_crash_points[];

#endif
