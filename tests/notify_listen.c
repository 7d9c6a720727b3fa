/*
 * notify-listen PATH — a stand-in for systemd's notification socket in
 * tests: binds a datagram socket at PATH and prints every message it
 * receives as one line ("READY=1\nSTATUS=..." becomes "READY=1|STATUS=..."),
 * prefixed with a millisecond timestamp.  Runs until killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: notify-listen PATH\n");
		return 2;
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("notify-listen");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		buf[n] = '\0';
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%lld %s\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, buf);
	}
}
