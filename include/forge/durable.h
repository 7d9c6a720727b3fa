/*
 * durable.h — what a commit survives (region.durability).
 *
 *   none:  the region's pages, as the kernel keeps them: every process
 *          death (tmpfs is fine), not a kernel crash or a power loss.
 *   batch: the supervisor flushes the region file every
 *          region.sync_interval_ms: a kernel crash or a power loss loses
 *          at most that interval's commits, and a log torn by it is cut
 *          back to its last whole commit.
 *   sync:  as batch, and a commit is durable before anything depends on
 *          it: before a non-idempotent tool runs, before a new session is
 *          acknowledged (201, forgectl submit's ids), before an event about
 *          it is sent (SSE, chat completions).  Many commits share a flush
 *          (group commit, region.h).
 * batch and sync need region.path on a disk file system (not tmpfs).
 */
#ifndef FORGE_DURABLE_H
#define FORGE_DURABLE_H

#include "forge/region.h"

#include <stddef.h>
#include <stdint.h>

#define FG_SYNC_PATIENCE_MS 50   /* a waiter flushes itself after this long */

uint32_t fg_crc32c(uint32_t crc, const void *p, size_t n);

/* Where the CRC chain of a session of generation sgen starts. */
uint32_t fg_crc_seed(uint32_t sgen);

/* Builds a COMMIT record (FG_COMMIT_BYTES bytes, conv.h). */
void fg_commit_rec(uint8_t *out, uint32_t crc, uint32_t seq, const fg_wstate_t *st);

/* Parses durability names ("none", "batch", "sync"); -1 if unknown. */
int fg_durability_parse(const char *s);
const char *fg_durability_name(uint32_t d);

/*
 * 0 if PATH's directory can hold a durable region; else -1 with why in err
 * (tmpfs and ramfs lose everything at a reboot).
 */
int fg_durable_fs_ok(const char *path, char *err, size_t errlen);

/* This boot's id (/proc/sys/kernel/random/boot_id; FORGE_TEST_BOOT_ID in
 * test builds), NUL-terminated, at most 39 characters. */
void fg_boot_id(char out[40]);

/*
 * Makes every write made to the region before the call durable (one
 * fdatasync, shared with whoever else waits: group commit).  slot is the
 * caller's registry slot.  0, or -errno of a failed flush.
 */
int fg_durable_flush(fg_region_t *r, uint32_t slot);

/* fg_durable_flush only when region.durability is sync; 0 otherwise. */
int fg_durable_wait(fg_region_t *r, uint32_t slot);

/* The recovery pass: a dead slot's leadership of the flush is cleared. */
void fg_durable_recover(fg_region_t *r, uint32_t slot);

/*
 * After a reboot (a power loss, a kernel crash), with every forge process
 * gone: each session's log is checked against its COMMIT records (a CRC32C
 * chain seeded with its generation) and cut back to its last whole commit,
 * its state with it, the bytes after it zeroed (a done or failed session
 * cut back is QUEUED again; a cancelled one stays cancelled); a log with
 * records but no COMMIT at all, every record whole, is from before
 * durability and kept; one with no whole commit was never acknowledged
 * under sync and is freed.  Counts in the out parameters.
 */
void fg_durable_verify_unsafe(fg_region_t *r, uint32_t *checked, uint32_t *cut,
			      uint32_t *freed);

/*
 * After a reboot, every forge process gone: the rings start empty, every
 * slot's intents and lease entries are cleared, client slots freed, and
 * each free record's next generation skips 65,536 (ids a lost session may
 * have handed out are never handed out again).
 */
void fg_durable_reboot_unsafe(fg_region_t *r);

#endif
