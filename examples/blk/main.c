/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-blk: a vhost-user-blk backend serving a regular file or a block device.
 *
 *   vre-blk --socket PATH [--client] --file IMG [--readonly] [--queues N]
 *           [--workers CPULIST] [--serial STR] [--poll MODE] [--log-level L]
 *
 * Requests run with io_uring on pinned workers and may finish out of order;
 * the inflight region (INFLIGHT_SHMFD) lets a restarted vre-blk finish the
 * requests a killed one had taken. SIGINT/SIGTERM stop it cleanly: every
 * queue is drained before the image is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blk_dev.h"
#include "vre_log.h"
#include "vre_version.h"

#define PROG "vre-blk"

struct opts {
	const char *socket;
	const char *file;
	const char *workers;
	const char *serial;
	const char *log_level;
	bool client;
	bool readonly;
	bool no_inflight;
	bool direct;
	unsigned queues;
	unsigned test_delay_us;
	unsigned drain_grace_ms;
	unsigned msg_timeout_ms;
	enum vre_poll_mode poll;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " --socket PATH [--client] --file IMG [--readonly] [--direct] [--queues N]\n"
		"               [--workers CPULIST] [--serial STR] [--poll MODE] [--log-level LEVEL]\n"
		"  --socket PATH      vhost-user socket (listened on, or connected to with --client)\n"
		"  --client           connect to a listening frontend, reconnecting when it goes\n"
		"  --file IMG         regular file or block device to serve\n"
		"  --readonly         offer a read-only disk (VIRTIO_BLK_F_RO)\n"
		"  --direct           read and write with O_DIRECT (bypass the host page cache;\n"
		"                     requests the file system refuses that way go buffered)\n"
		"  --queues N         request queues, 1..%d (default 1)\n"
		"  --workers CPULIST  one pinned worker per CPU, e.g. 1 or 0-1 (default: the last CPU)\n"
		"  --serial STR       disk id for GET_ID, up to 20 bytes (default vre-blk)\n"
		"  --poll MODE        poll, adaptive or interrupt (default adaptive)\n"
		"  --log-level LEVEL  err, warn, info or debug\n"
		"  --no-inflight      do not offer INFLIGHT_SHMFD (shows what a restart loses\n"
		"                     without it; for tests)\n"
		"  --test-delay-us N  delay every read, write and flush by a random 0..N us in\n"
		"                     the kernel, so restart tests find requests in flight\n"
		"  --drain-grace-ms N stopping a queue waits N ms for I/O in flight, then cancels\n"
		"                     the rest (it completes with an I/O error; default %d)\n"
		"  --msg-timeout-ms N drop a frontend that stays in the middle of a message\n"
		"                     longer than N ms (default %d; 0: never)\n"
		"  --version          print the version and exit\n",
		VRE_BLK_MAX_QUEUES, VRE_BLK_DRAIN_GRACE_MS, VRE_MSG_TIMEOUT_MS);
}

/* One line on stderr, exit 2: the contract for bad usage and bad input. */
__attribute__((format(printf, 1, 2), noreturn)) static void bad(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static unsigned long parse_num(const char *s, unsigned long lo, unsigned long hi,
			       const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		bad("%s: '%s' is not a number in %lu..%lu", what, s, lo, hi);
	return v;
}

static const char *default_cpu(void)
{
	static char buf[16];

	snprintf(buf, sizeof(buf), "%d", vre_cpu_last_allowed());
	return buf;
}

static void check_cpus(const char *list)
{
	char why[96];
	const char *problem = vre_cpulist_problem(list, why, sizeof(why));

	if (problem)
		bad("--workers: %s", problem);
}

/* Catches the usual socket path mistakes before anything starts, so they
 * are one clean line instead of a failure deep in control. */
static void check_socket_path(const char *path)
{
	struct sockaddr_un sun;
	char dir[sizeof(sun.sun_path)];
	struct stat st;
	const char *d;

	if (strlen(path) >= sizeof(sun.sun_path))
		bad("--socket: '%s' is longer than %zu bytes", path, sizeof(sun.sun_path) - 1);
	snprintf(dir, sizeof(dir), "%s", path);
	d = dirname(dir);
	if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
		bad("--socket %s: directory %s does not exist", path, d);
}

static void parse(struct opts *o, int argc, char **argv)
{
	enum { O_SOCKET = 256, O_CLIENT, O_FILE, O_RO, O_QUEUES, O_WORKERS, O_SERIAL,
	       O_POLL, O_LOG, O_NO_INFLIGHT, O_TEST_DELAY, O_DIRECT_IO, O_DRAIN_GRACE,
	       O_MSG_TIMEOUT, O_HELP, O_VERSION };
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "client", no_argument, NULL, O_CLIENT },
		{ "file", required_argument, NULL, O_FILE },
		{ "readonly", no_argument, NULL, O_RO },
		{ "direct", no_argument, NULL, O_DIRECT_IO },
		{ "queues", required_argument, NULL, O_QUEUES },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "serial", required_argument, NULL, O_SERIAL },
		{ "poll", required_argument, NULL, O_POLL },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "no-inflight", no_argument, NULL, O_NO_INFLIGHT },
		{ "test-delay-us", required_argument, NULL, O_TEST_DELAY },
		{ "drain-grace-ms", required_argument, NULL, O_DRAIN_GRACE },
		{ "msg-timeout-ms", required_argument, NULL, O_MSG_TIMEOUT },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->queues = 1;
	o->poll = VRE_POLL_ADAPTIVE;
	o->drain_grace_ms = VRE_BLK_DRAIN_GRACE_MS;
	o->msg_timeout_ms = VRE_MSG_TIMEOUT_MS;
	o->serial = PROG;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case O_SOCKET: o->socket = optarg; break;
		case O_CLIENT: o->client = true; break;
		case O_FILE: o->file = optarg; break;
		case O_RO: o->readonly = true; break;
		case O_DIRECT_IO: o->direct = true; break;
		case O_QUEUES:
			o->queues = (unsigned)parse_num(optarg, 1, VRE_BLK_MAX_QUEUES, "--queues");
			break;
		case O_WORKERS: o->workers = optarg; break;
		case O_SERIAL:
			if (strlen(optarg) > VRE_BLK_ID_BYTES)
				bad("--serial: '%s' is longer than %d bytes", optarg,
				    VRE_BLK_ID_BYTES);
			o->serial = optarg;
			break;
		case O_POLL:
			if (vre_poll_mode_parse(optarg) < 0)
				bad("--poll: '%s' is not poll, adaptive or interrupt", optarg);
			o->poll = (enum vre_poll_mode)vre_poll_mode_parse(optarg);
			break;
		case O_LOG:
			if (vre_log_parse_level(optarg) < 0)
				bad("--log-level: '%s' is not err, warn, info or debug", optarg);
			o->log_level = optarg;
			break;
		case O_NO_INFLIGHT: o->no_inflight = true; break;
		case O_TEST_DELAY:
			o->test_delay_us = (unsigned)parse_num(optarg, 0, 300000000,
							       "--test-delay-us");
			break;
		case O_DRAIN_GRACE:
			o->drain_grace_ms = (unsigned)parse_num(optarg, 1, 3600000,
								"--drain-grace-ms");
			break;
		case O_MSG_TIMEOUT:
			o->msg_timeout_ms = (unsigned)parse_num(optarg, 0, 3600000,
								"--msg-timeout-ms");
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		case O_VERSION:
			printf(PROG " %s\n", VRE_VERSION);
			exit(0);
		case ':':
			bad("%s needs an argument", argv[optind - 1]);
		default:
			bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad("unexpected argument '%s'", argv[optind]);
	if (!o->socket)
		bad("--socket PATH is required");
	if (!o->file)
		bad("--file IMG is required");
	check_socket_path(o->socket);
	if (!o->workers)
		o->workers = default_cpu();
	check_cpus(o->workers);
}

/* Opens the image and finds its size in bytes. */
static int open_image(const struct opts *o, uint64_t *size)
{
	struct stat st;
	int fd = open(o->file, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0)
		bad("--file %s: %s", o->file, strerror(errno));
	if (fstat(fd, &st) < 0)
		bad("--file %s: %s", o->file, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			bad("--file %s: cannot read the device size: %s", o->file,
			    strerror(errno));
	} else {
		bad("--file %s: not a regular file or block device", o->file);
	}
	if (*size < VRE_BLK_SECTOR_SIZE)
		bad("--file %s: smaller than one 512-byte sector", o->file);
	if (*size % VRE_BLK_SECTOR_SIZE)
		VRE_WARN("blk", "%s: the last %llu bytes (not a whole sector) are not served",
			 o->file, (unsigned long long)(*size % VRE_BLK_SECTOR_SIZE));
	return fd;
}

/* A second descriptor of the image with O_DIRECT, for --direct. */
static int open_direct(const struct opts *o)
{
	int fd = open(o->file, (o->readonly ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);

	if (fd < 0)
		bad("--direct: cannot open %s with O_DIRECT: %s", o->file, strerror(errno));
	return fd;
}

static int wait_signal(const sigset_t *set)
{
	int sig;

	do
		sig = sigwaitinfo(set, NULL);
	while (sig < 0 && errno == EINTR);
	return sig;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct vre_worker_config tmpl = { 0 };
	struct vre_worker_pool pool = { 0 };
	struct vre_server *server = NULL;
	struct vre_blk_dev *blk = NULL;
	struct vre_dev *dev = NULL;
	struct vre_blk_dev_config bc;
	struct vre_dev_config dc;
	uint64_t size;
	sigset_t set;
	const char *what = "device";
	int fd, dfd, err;

	parse(&o, argc, argv);
	if (o.log_level)
		vre_log_set_level((enum vre_log_level)vre_log_parse_level(o.log_level));
	fd = open_image(&o, &size);
	dfd = o.direct ? open_direct(&o) : -1;

	/* Threads started from here on inherit the blocked set, so SIGINT and
	 * SIGTERM reach only sigwaitinfo below. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	tmpl.mode = o.poll;
	err = vre_worker_pool_create(&pool, o.workers, &tmpl);
	if (err < 0)
		bad("cannot start workers on CPUs %s: %s", o.workers, strerror(-err));
	bc = (struct vre_blk_dev_config){ .fd = fd, .size = size, .readonly = o.readonly,
					  .num_queues = (uint16_t)o.queues,
					  .serial = o.serial, .pool = &pool,
					  .direct = o.direct, .direct_fd = dfd,
					  .no_inflight = o.no_inflight,
					  .test_delay_us = o.test_delay_us,
					  .drain_grace_ms = o.drain_grace_ms };
	err = vre_blk_dev_create(&bc, &blk);
	if (err == 0) {
		what = "control server";
		err = vre_server_create(&server);
	}
	if (err == 0)
		vre_server_set_msg_timeout(server, o.msg_timeout_ms);
	if (err == 0) {
		dc = (struct vre_dev_config){ .path = o.socket, .client = o.client,
					      .ops = vre_blk_dev_ops(blk), .ctx = blk };
		what = o.socket;
		err = vre_dev_create(server, &dc, &dev);
	}
	if (err == 0) {
		what = "control thread";
		err = vre_server_start(server);
	}
	if (err == 0) {
		printf(PROG ": ready: %s (%llu sectors%s%s), %u queue(s), workers on CPUs %s, %s\n",
		       o.file, (unsigned long long)(size >> VRE_BLK_SECTOR_SHIFT),
		       o.readonly ? ", read-only" : "", o.direct ? ", O_DIRECT" : "",
		       o.queues, o.workers,
		       o.client ? "client" : "server");
		fflush(stdout);
		wait_signal(&set);
		printf(PROG ": signal received, stopping\n");
		fflush(stdout);
	}
	/* The server stops and drains every running queue before it goes. */
	if (server)
		vre_server_destroy(server);
	vre_blk_dev_destroy(blk);
	vre_worker_pool_destroy(&pool);
	close(fd);
	if (dfd >= 0)
		close(dfd);
	if (err < 0)
		bad("cannot start: %s: %s", what, strerror(-err));
	return 0;
}
