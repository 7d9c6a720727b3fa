/*
 * tear — what a power loss leaves of a file, for tests/integration/durability.sh.
 *
 *   tear SYNCED LATER OUT SEED
 *
 * SYNCED is the file as the last completed flush left it on disk (the
 * region's recorder copies it there: FORGE_TEST_SYNC_SHADOW); LATER is the
 * file as the processes left it when they were killed (writes never
 * synced).  OUT gets SYNCED, with each 4 KiB page that differs in LATER
 * taken from LATER with probability 1/2, and one in four of those torn:
 * only its first k x 512-byte sectors from LATER (a write cut by the power
 * loss).  Prints how many pages it took whole and torn.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096

static int open_or_die(const char *p, int flags)
{
	int fd = open(p, flags, 0600);
	if (fd < 0) {
		perror(p);
		exit(2);
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: tear SYNCED LATER OUT SEED\n");
		return 64;
	}
	int a = open_or_die(argv[1], O_RDONLY), b = open_or_die(argv[2], O_RDONLY);
	int o = open_or_die(argv[3], O_RDWR | O_CREAT | O_TRUNC);
	srandom((unsigned)strtoul(argv[4], NULL, 10));
	struct stat sa, sb;
	fstat(a, &sa);
	fstat(b, &sb);
	off_t size = sa.st_size > sb.st_size ? sa.st_size : sb.st_size;
	if (ftruncate(o, size) < 0) {
		perror("ftruncate");
		return 2;
	}
	static char pa[PAGE], pb[PAGE];
	unsigned long whole = 0, torn = 0, diff = 0;
	off_t at = 0;
	while (at < size) {
		/* skip what is a hole in both */
		off_t da = lseek(a, at, SEEK_DATA), db = lseek(b, at, SEEK_DATA);
		if (da < 0 && db < 0)
			break;
		off_t d = da < 0 ? db : db < 0 ? da : (da < db ? da : db);
		at = d & ~(off_t)(PAGE - 1);
		ssize_t ka = pread(a, pa, PAGE, at), kb = pread(b, pb, PAGE, at);
		if (ka < PAGE)
			memset(pa + (ka > 0 ? ka : 0), 0, (size_t)(PAGE - (ka > 0 ? ka : 0)));
		if (kb < PAGE)
			memset(pb + (kb > 0 ? kb : 0), 0, (size_t)(PAGE - (kb > 0 ? kb : 0)));
		if (memcmp(pa, pb, PAGE) != 0) {
			diff++;
			if (random() & 1) {
				if (random() % 4 == 0) {
					size_t k = (size_t)(1 + random() % 7) * 512;
					memcpy(pa, pb, k);
					torn++;
				} else {
					memcpy(pa, pb, PAGE);
					whole++;
				}
			}
		}
		if (pwrite(o, pa, PAGE, at) != PAGE) {
			perror("pwrite");
			return 2;
		}
		at += PAGE;
	}
	printf("%lu pages differed: %lu taken whole, %lu torn\n", diff, whole, torn);
	return 0;
}
