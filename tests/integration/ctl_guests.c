/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl-guests: test frontends (tests/support/vguest) driven together with
 * vre-switch's control channel (JSON-RPC, jansson), for switch_ctl.sh.
 *
 *   ctl-guests churn CTL DIR CYCLES
 *     CYCLES times: port-add a vhost port, attach a guest (memory mapped,
 *     both rings running on a worker), send a frame and see it completed,
 *     port-del the port while the guest is attached (the switch must close
 *     the connection). The switch's fds, mappings and heap (its process
 *     method) are sampled every CYCLES/10 cycles after a warm-up of
 *     CYCLES/10: they must not grow from the first sample to the last
 *     (heap: by more than HEAP_SLACK bytes).
 *
 *   ctl-guests learn CTL SOCK...
 *     One guest per socket (ports that exist already; their MACs are
 *     02:00:00:00:01:XX, XX its index here), learn mode: a broadcast from
 *     each guest reaches every other guest exactly once and never its
 *     sender; then every MAC is known and a unicast frame from guest i to
 *     guest i+1 reaches only that guest; an unknown unicast floods; every
 *     frame's bytes are checked; the fdb holds one entry per guest.
 *
 *   ctl-guests learnmw CTL SOCK0 SOCK1 SOCK2 SOCK3
 *     learn over the 4 ports (which sit on different workers), then: a MAC
 *     moves to another port and back and unicast follows it; fdb-flush
 *     between the frames of a flow loses and reorders none; rxq-pin of a
 *     pair to the other worker and back; port-del of a port that a guest
 *     keeps sending to, on another thread.
 *
 *   ctl-guests ethmq CTL SOCK0 SOCK1 IFACE ETHPORT
 *     learn mode on two workers with guests on ports 0 and 1 (one per
 *     worker) and ethdev port ETHPORT, a net_tap with two queue pairs whose
 *     kernel side IFACE this program reads and writes (AF_PACKET; run it in
 *     the switch's network namespace): IPv4/UDP frames of 64 flows from a
 *     station behind the tap reach both guests byte for byte and came in
 *     through both RX queues (the kernel's multi-queue tap spreads flows as
 *     RSS would); each guest's frames to the station leave on its own
 *     worker's TX queue (the PMD's per-queue counters); the workers count
 *     every packet once (their packets = the ports' taken packets);
 *     rxq-pin and rebalance move the RX queues under traffic;
 *     port-del of the ethdev port while a guest and the station stream
 *     through it; the guests still reach each other afterwards.
 *
 * Prints one line per phase and exits 0 when everything held, 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "vfront.h"
#include "vguest.h"

/* The switch's heap is flat to the byte once warm: 0 bytes over 1,000
 * cycles under ASan (its allocator's count is exact) and over 3,000 with
 * glibc's per-thread cache off. With that cache on, mallinfo2 counts the
 * chunks each thread keeps for reuse as in use, and they wander by a few
 * KiB from sample to sample (+3 KiB measured; up to ~234 KiB per thread in
 * theory), which is why switch_ctl.sh turns it off for churn
 * (GLIBC_TUNABLES=glibc.malloc.tcache_count=0) instead of allowing
 * 256 KiB, which hid any leak under 290 bytes a cycle. The slack left
 * takes a one-off lazy allocation after the warm-up; a leak of even the
 * smallest chunk (32 B) per cycle is 28 KiB over the 900 cycles sampled. */
#define HEAP_SLACK (4 * 1024)

static const char *ctl;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("ctl-guests: FAIL: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	exit(1);
}

/* One JSON-RPC call; the result (new reference), or dies on an error. */
static json_t *rpc(const char *method, json_t *params)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 7, "method", method,
				"params", params ? params : json_object());
	char *line = json_dumps(req, JSON_COMPACT), buf[1 << 16];
	size_t have = 0;
	json_error_t err;
	json_t *reply, *res;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	json_decref(req);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("%s: cannot connect to %s: %s", method, ctl, strerror(errno));
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		die("%s: send: %s", method, strerror(errno));
	free(line);
	while (!memchr(buf, '\n', have)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 30000) <= 0)
			die("%s: no answer in 30 s", method);
		n = recv(fd, buf + have, sizeof(buf) - have - 1, 0);
		if (n <= 0)
			die("%s: connection closed", method);
		have += (size_t)n;
		if (have >= sizeof(buf) - 1)
			die("%s: answer too large", method);
	}
	close(fd);
	reply = json_loadb(buf, (size_t)((char *)memchr(buf, '\n', have) - buf), 0, &err);
	if (!reply)
		die("%s: bad answer: %s", method, err.text);
	res = json_object_get(reply, "result");
	if (!res)
		die("%s: error %s", method,
		    json_string_value(json_object_get(json_object_get(reply, "error"), "message")));
	json_incref(res);
	json_decref(reply);
	return res;
}

static long long geti(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* ---- churn ---- */

struct sample { long long fds, maps, heap; };

static struct sample sample(void)
{
	json_t *r = rpc("process", NULL);
	struct sample s = { geti(r, "fds"), geti(r, "maps"), geti(r, "heap_bytes") };

	json_decref(r);
	return s;
}

static void frame(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint32_t tag, size_t len)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88, f[13] = 0xb5; /* local experimental ethertype */
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(tag * 31 + i);
	memcpy(f + 14, &tag, 4);
}

static int churn(const char *dir, unsigned cycles)
{
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t src[6] = { 0x02, 0, 0, 0, 0x02, 0x01 }, f[64];
	char path[108];
	unsigned every = cycles / 10 ? cycles / 10 : 1;
	struct sample first = { 0 }, last = { 0 }, max = { 0 };
	bool have_first = false;

	snprintf(path, sizeof(path), "%s/churn.sock", dir);
	for (unsigned i = 1; i <= cycles; i++) {
		json_t *r = rpc("port-add", json_pack("{s:s, s:s, s:s}", "kind", "vhost", "path", path,
						     "name", "churn"));
		struct vguest *g;

		json_decref(r);
		g = vguest_open(path, 5000);
		if (!g)
			die("cycle %u: the guest could not attach", i);
		frame(f, bc, src, i, sizeof(f));
		if (vguest_send_wait(g, f, sizeof(f), 5000) < 0)
			die("cycle %u: the frame was not completed (queue not running?)", i);
		json_decref(rpc("port-del", json_pack("{s:s}", "port", "churn")));
		if (!vfront_closed(vguest_fd(g), 5000))
			die("cycle %u: port-del left the frontend connected", i);
		vguest_close(g);
		if (i % every == 0 && i > every - 1) {
			struct sample s = sample();

			if (!have_first) {
				first = max = s;
				have_first = true;
			}
			last = s;
			max.fds = s.fds > max.fds ? s.fds : max.fds;
			max.maps = s.maps > max.maps ? s.maps : max.maps;
			max.heap = s.heap > max.heap ? s.heap : max.heap;
			printf("cycle %u: fds %lld maps %lld heap %lld\n", i, s.fds, s.maps, s.heap);
			fflush(stdout);
		}
	}
	printf("churn: %u port-add/port-del cycles with a guest attached; fds %lld -> %lld, maps %lld "
	       "-> %lld, heap %lld -> %lld bytes (max %lld)\n", cycles, first.fds, last.fds,
	       first.maps, last.maps, first.heap, last.heap, max.heap);
	if (last.fds > first.fds || last.maps > first.maps)
		die("fds or mappings grew");
	if (last.heap > first.heap + HEAP_SLACK)
		die("heap grew by %lld bytes", last.heap - first.heap);
	return 0;
}

/* ---- learn across N guests ---- */

static void mac_of(unsigned i, uint8_t m[6])
{
	const uint8_t base[6] = { 0x02, 0, 0, 0, 0x01, 0 };

	memcpy(m, base, 6);
	m[4] = (uint8_t)(1 + i / 256);
	m[5] = (uint8_t)i;
}

/* Everything each guest holds now; its count and the tags it got. */
static unsigned drain(struct vguest *g, uint32_t *tags, unsigned max, const uint8_t me[6])
{
	uint8_t buf[VGUEST_BUF];
	unsigned n = 0;
	size_t len;

	while ((len = vguest_recv(g, buf, sizeof(buf))) > 0) {
		uint32_t tag;
		uint8_t want[64];

		if (len != 64)
			die("a frame of %zu bytes, want 64", len);
		memcpy(&tag, buf + 14, 4);
		/* the bytes are what the sender wrote (dst/src checked by the caller's tags) */
		frame(want, buf, buf + 6, tag, 64);
		if (memcmp(want, buf, 64) != 0)
			die("frame %u arrived corrupted", tag);
		if (memcmp(buf + 6, me, 6) == 0)
			die("frame %u came back to its sender", tag);
		if (n < max)
			tags[n] = tag;
		n++;
	}
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* drain until at least want frames came (up to 2 s): a frame the switch
 * took is completed before it reaches its destination, and when the
 * destination's RX queue is another worker's it is still on its way */
static unsigned drain_want(struct vguest *g, uint32_t *tags, unsigned max, const uint8_t me[6],
			   unsigned want)
{
	uint64_t end = now_ms() + 2000;
	unsigned got = drain(g, tags, max, me);

	while (got < want && now_ms() < end) {
		struct timespec ts = { 0, 1000 * 1000 };

		nanosleep(&ts, NULL); /* polling the ring for a condition, bounded */
		got += drain(g, tags + (got < max ? got : max), got < max ? max - got : 0, me);
	}
	return got;
}

static int learn(int n, char **socks)
{
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct vguest **g = calloc((size_t)n, sizeof(*g));
	uint32_t *tags = calloc((size_t)n * (size_t)n, sizeof(*tags));
	uint8_t f[64], mac[6], dst[6];
	unsigned got;
	json_t *r;

	if (!g || !tags)
		die("out of memory");
	for (int i = 0; i < n; i++)
		if (!(g[i] = vguest_open(socks[i], 5000)))
			die("guest %d could not attach to %s", i, socks[i]);
	/* 1. a broadcast from each: everyone else gets each exactly once */
	for (int i = 0; i < n; i++) {
		mac_of((unsigned)i, mac);
		frame(f, bc, mac, 1000u + (unsigned)i, 64);
		if (vguest_send_wait(g[i], f, 64, 5000) < 0)
			die("broadcast from guest %d not completed", i);
	}
	for (int i = 0; i < n; i++) {
		mac_of((unsigned)i, mac);
		got = drain_want(g[i], tags, (unsigned)n, mac, (unsigned)n - 1);
		if (got != (unsigned)n - 1)
			die("guest %d got %u broadcasts, want %d", i, got, n - 1);
		for (unsigned k = 0; k < got; k++)
			for (unsigned j = 0; j < k; j++)
				if (tags[j] == tags[k])
					die("guest %d got broadcast %u twice", i, tags[k]);
	}
	printf("learn: %d broadcasts, each delivered to the %d other guests exactly once\n", n, n - 1);
	/* 2. unicast i -> i+1 (every MAC is learned now): only the target */
	for (int i = 0; i < n; i++) {
		mac_of((unsigned)i, mac);
		mac_of((unsigned)((i + 1) % n), dst);
		frame(f, dst, mac, 2000u + (unsigned)i, 64);
		if (vguest_send_wait(g[i], f, 64, 5000) < 0)
			die("unicast from guest %d not completed", i);
	}
	for (int i = 0; i < n; i++) {
		mac_of((unsigned)i, mac);
		got = drain_want(g[i], tags, 1, mac, 1);
		if (got != 1 || tags[0] != 2000u + (unsigned)((i + n - 1) % n))
			die("guest %d got %u unicast frame(s) (first tag %u), want only %d's", i, got,
			    got ? tags[0] : 0, (i + n - 1) % n);
	}
	printf("learn: %d unicast frames, each only to its destination\n", n);
	/* 3. an unknown unicast floods */
	mac_of(0, mac);
	memcpy(dst, (uint8_t[6]){ 0x02, 0x99, 0x99, 0x99, 0x99, 0x99 }, 6);
	frame(f, dst, mac, 3000, 64);
	if (vguest_send_wait(g[0], f, 64, 5000) < 0)
		die("unknown unicast not completed");
	for (int i = 0; i < n; i++) {
		mac_of((unsigned)i, mac);
		got = drain_want(g[i], tags, 1, mac, i ? 1u : 0u);
		if (got != (i ? 1u : 0u))
			die("unknown unicast: guest %d got %u", i, got);
	}
	printf("learn: an unknown unicast flooded to the %d others\n", n - 1);
	r = rpc("fdb-show", NULL);
	if (geti(r, "count") != n)
		die("fdb holds %lld entries, want %d", geti(r, "count"), n);
	json_decref(r);
	printf("learn: the fdb holds the %d guests' MACs\n", n);
	for (int i = 0; i < n; i++)
		vguest_close(g[i]);
	free(g);
	free(tags);
	return 0;
}

/* ---- learn mode on several workers ---- */

/* Sends a frame from guest g (src) to dst, tag, waiting for completion. */
static void send_one(struct vguest *g, const uint8_t dst[6], const uint8_t src[6], uint32_t tag)
{
	uint8_t f[64];

	frame(f, dst, src, tag, 64);
	if (vguest_send_wait(g, f, 64, 5000) < 0)
		die("frame %u not completed", tag);
}

/* Only guest `to` got exactly the frames [first, first + n), in order;
 * every other guest but the sender got none (flood = 0) or each of them
 * once (flood = 1). */
static void expect_only(struct vguest **g, int ng, int from, int to, uint32_t first, unsigned n,
			bool flood, const char *what)
{
	uint32_t *tags = calloc(n + 1, sizeof(*tags));
	uint8_t mac[6];
	unsigned got;

	if (!tags)
		die("out of memory");
	for (int i = 0; i < ng; i++) {
		if (!g[i])
			continue;
		mac_of((unsigned)i, mac);
		got = drain_want(g[i], tags, n + 1, mac, i == to || (flood && i != from) ? n : 0);
		if (i == to || (flood && i != from)) {
			if (got != n)
				die("%s: guest %d got %u frames, want %u", what, i, got, n);
			for (unsigned k = 0; k < n; k++)
				if (tags[k] != first + k)
					die("%s: guest %d: frame %u where %u was due (lost or reordered)",
					    what, i, tags[k], first + k);
		} else if (got) {
			die("%s: guest %d got %u frame(s) (first tag %u), want none", what, i, got,
			    tags[0]);
		}
	}
	free(tags);
}

struct streamer {
	struct vguest *g;
	uint8_t src[6], dst[6];
	unsigned sent;
	int stop;
};

static void *stream(void *arg)
{
	struct streamer *st = arg;
	uint8_t f[64];

	while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
		frame(f, st->dst, st->src, 50000u + st->sent, 64);
		if (vguest_send_wait(st->g, f, 64, 5000) < 0)
			die("streaming frame %u not completed", st->sent);
		st->sent++;
	}
	return NULL;
}

/* The ports' queues sit on different workers (the switch spreads them
 * round-robin over two): learn (above) across workers, then a MAC that
 * moves between ports, fdb-flush between frames of a flow, and port-del of
 * a port that another guest keeps sending to. Needs 4 guests. */
static int learnmw(int n, char **socks)
{
	struct vguest *g[4];
	uint8_t mac[4][6];
	struct streamer st;
	pthread_t th;
	json_t *r;

	if (n != 4)
		die("learnmw wants 4 sockets");
	learn(n, socks);
	for (int i = 0; i < 4; i++) {
		mac_of((unsigned)i, mac[i]);
		if (!(g[i] = vguest_open(socks[i], 5000)))
			die("guest %d could not attach again", i);
	}
	/* the table survived the reconnects: unicast 2 -> 3, 3 -> 0 */
	send_one(g[2], mac[3], mac[2], 4000);
	expect_only(g, 4, 2, 3, 4000, 1, false, "unicast after reconnect");
	/* 1. guest 0's MAC moves to port 1, and back */
	send_one(g[1], mac[3], mac[0], 4100); /* MAC 0 now on port 1 */
	expect_only(g, 4, 1, 3, 4100, 1, false, "frame from the moved MAC");
	for (unsigned k = 0; k < 8; k++)
		send_one(g[2], mac[0], mac[2], 4200 + k);
	expect_only(g, 4, 2, 1, 4200, 8, false, "unicast to a moved MAC");
	send_one(g[0], mac[3], mac[0], 4300); /* back on port 0 */
	expect_only(g, 4, 0, 3, 4300, 1, false, "frame from the MAC moved back");
	for (unsigned k = 0; k < 8; k++)
		send_one(g[3], mac[0], mac[3], 4400 + k);
	expect_only(g, 4, 3, 0, 4400, 8, false, "unicast to a MAC moved back");
	printf("learnmw: a MAC moved between ports on two workers and back, unicast followed it\n");
	/* 2. fdb-flush between the frames of a flow: the frames after a
	 * flush flood (every other guest gets them), the next ones are
	 * unicast again; guest 3 gets every one, in order */
	for (unsigned k = 0; k < 40; k++) {
		if (k % 10 == 5)
			json_decref(rpc("fdb-flush", NULL));
		send_one(g[2], mac[3], mac[2], 5000 + k);
		if (k % 10 == 5)
			send_one(g[3], mac[2], mac[3], 5100 + k); /* 3 is learned again */
	}
	{
		uint32_t tags[64];
		unsigned got = drain_want(g[3], tags, 64, mac[3], 40);

		if (got != 40)
			die("fdb-flush: guest 3 got %u of 40 frames", got);
		for (unsigned k = 0; k < 40; k++)
			if (tags[k] != 5000 + k)
				die("fdb-flush: frame %u where %u was due", tags[k], 5000 + k);
		/* the 4 floods after the flushes, and 3's 4 replies to 2 */
		for (int i = 0; i < 3; i++) {
			got = drain_want(g[i], tags, 64, mac[i], 4);
			if (got != 4)
				die("fdb-flush: guest %d got %u frames, want 4", i, got);
		}
	}
	r = rpc("fdb-show", NULL);
	if (geti(r, "count") != 2) /* 2 and 3 learned since the last flush */
		die("fdb holds %lld entries after the flushes, want 2", geti(r, "count"));
	json_decref(r);
	printf("learnmw: fdb-flush between frames: none lost or reordered, the flow relearned\n");
	/* 3. rxq-pin in learn mode: port 2's pair moves to the second worker
	 * (where 3's is) and back; frames keep flowing both ways */
	for (int round = 0; round < 2; round++) {
		json_decref(rpc("rxq-pin", json_pack("{s:i, s:i, s:i}", "port", 2, "pair", 0,
						     "worker", 1 - round)));
		for (unsigned k = 0; k < 8; k++)
			send_one(g[2], mac[3], mac[2], 6000 + 100 * (unsigned)round + k);
		expect_only(g, 4, 2, 3, 6000 + 100 * (unsigned)round, 8, false, "after rxq-pin");
		for (unsigned k = 0; k < 8; k++)
			send_one(g[3], mac[2], mac[3], 6050 + 100 * (unsigned)round + k);
		expect_only(g, 4, 3, 2, 6050 + 100 * (unsigned)round, 8, false, "to a pinned pair");
	}
	printf("learnmw: rxq-pin moved a pair to the other worker and back under traffic\n");
	/* 4. port-del of port 3 while guest 2 keeps sending to its MAC (its
	 * RX queue is another worker's): every frame completes, none reaches
	 * a port that is gone, and the switch stays up */
	st = (struct streamer){ .g = g[2] };
	memcpy(st.src, mac[2], 6);
	memcpy(st.dst, mac[3], 6);
	if (pthread_create(&th, NULL, stream, &st) != 0)
		die("pthread_create");
	{
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL); /* a head start; the frames' completion is the check */
		json_decref(rpc("port-del", json_pack("{s:i}", "port", 3)));
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	if (st.sent < 10)
		die("port-del: guest 2 sent only %u frames", st.sent);
	r = rpc("fdb-show", NULL);
	if (geti(r, "count") != 1) /* port 3's MAC died with it */
		die("fdb holds %lld entries after port-del, want 1 (guest 2)", geti(r, "count"));
	json_decref(r);
	{
		uint32_t tags[1];

		for (int i = 0; i < 2; i++) {
			unsigned got = drain(g[i], tags, 0, mac[i]);

			if (got > st.sent)
				die("port-del: guest %d got %u frames of %u sent", i, got, st.sent);
		}
	}
	printf("learnmw: port-del of a port another worker was sending to, %u frames streamed\n",
	       st.sent);
	for (int i = 0; i < 4; i++)
		vguest_close(g[i]);
	return 0;
}

/* ---- an ethdev port with a queue pair per worker ---- */

static const uint8_t station[6] = { 0x02, 0xee, 0, 0, 0, 0x01 };

/* A 64-byte IPv4/UDP frame of flow tag % 64 (source port), the tag in
 * the payload; the rest a pattern of the tag, checked on arrival. */
static void ipframe(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint32_t tag)
{
	static const uint8_t ip[20] = { 0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0,
					10, 98, 0, 1, 10, 98, 0, 2 };
	uint16_t sport = htons((uint16_t)(4000 + tag % 64)), dport = htons(9), ulen = htons(30);
	uint32_t sum = 0;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08, f[13] = 0x00;
	memcpy(f + 14, ip, 20);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)f[14 + i] << 8 | f[15 + i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	f[24] = (uint8_t)(~sum >> 8), f[25] = (uint8_t)~sum;
	memcpy(f + 34, &sport, 2);
	memcpy(f + 36, &dport, 2);
	memcpy(f + 38, &ulen, 2);
	f[40] = f[41] = 0;
	memcpy(f + 42, &tag, 4);
	for (int i = 46; i < 64; i++)
		f[i] = (uint8_t)(tag * 7 + (unsigned)i);
}

/* The station's frames a guest holds now, each checked byte for byte;
 * their tags in tags[] (up to max). Up to 2 s for want of them. With
 * guests set, other guests' frames (frame()) may come too: checked,
 * counted there, not returned. */
static unsigned drain_station(struct vguest *g, const uint8_t me[6], uint32_t *tags, unsigned max,
			      unsigned want, unsigned *guests)
{
	uint64_t end = now_ms() + 2000;
	uint8_t buf[VGUEST_BUF], ref[64];
	unsigned n = 0;
	size_t len;

	for (;;) {
		while ((len = vguest_recv(g, buf, sizeof(buf))) > 0) {
			uint32_t tag;

			if (len != 64)
				die("a frame of %zu bytes, want 64", len);
			if (guests && buf[12] == 0x88 && buf[13] == 0xb5) {
				memcpy(&tag, buf + 14, 4);
				frame(ref, buf, buf + 6, tag, 64);
				if (memcmp(ref, buf, 64) != 0)
					die("guest frame %u arrived corrupted", tag);
				(*guests)++;
				continue;
			}
			memcpy(&tag, buf + 42, 4);
			ipframe(ref, me, station, tag);
			if (memcmp(ref, buf, 64) != 0)
				die("station frame %u arrived corrupted or misdirected", tag);
			if (n < max)
				tags[n] = tag;
			n++;
		}
		if (n >= want || now_ms() >= end)
			return n;
		struct timespec ts = { 0, 1000 * 1000 };

		nanosleep(&ts, NULL); /* polling the ring for a condition, bounded */
	}
}

static int raw_open(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (fd < 0 || !sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("cannot open a packet socket on %s: %s", ifname, strerror(errno));
	return fd;
}

/* Guest frames (frame(): from src, any tag) the station got, checked
 * byte for byte, counted by source guest (mac_of index < 2); up to 2 s
 * for want in all. Frames the station sent itself are skipped. */
static unsigned raw_drain(int fd, unsigned got[2], unsigned want)
{
	uint64_t end = now_ms() + 2000;
	unsigned n = 0;

	while (n < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		uint8_t buf[2048], ref[64], m0[6], m1[6];
		uint32_t tag;
		ssize_t len;
		int64_t left = (int64_t)(end - now_ms());

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		len = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (len < 0 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (len != 64 || buf[12] != 0x88 || buf[13] != 0xb5)
			die("the station got an unexpected frame of %zd bytes (ethertype %02x%02x)",
			    len, buf[12], buf[13]);
		memcpy(&tag, buf + 14, 4);
		frame(ref, buf, buf + 6, tag, 64);
		if (memcmp(ref, buf, 64) != 0)
			die("frame %u reached the station corrupted", tag);
		mac_of(0, m0);
		mac_of(1, m1);
		if (memcmp(buf + 6, m0, 6) && memcmp(buf + 6, m1, 6))
			die("frame %u from an unknown source reached the station", tag);
		got[memcmp(buf + 6, m0, 6) == 0 ? 0 : 1]++;
		n++;
	}
	return n;
}

/* port-show PORT's queue_list entry with this pair (ethdev: per queue
 * pair counters), or role's entry of a vhost port (new reference). */
static json_t *queue_of(unsigned port, const char *role, int pair)
{
	json_t *r = rpc("port-show", json_pack("{s:i}", "port", (int)port)), *q, *res = NULL;
	size_t i;

	json_array_foreach(json_object_get(r, "queue_list"), i, q)
		if (strcmp(json_string_value(json_object_get(q, "role")), role) == 0 &&
		    geti(q, "pair") == pair) {
			res = json_incref(q);
			break;
		}
	json_decref(r);
	if (!res)
		die("port %u has no %s queue of pair %d", port, role, pair);
	return res;
}

static long long qget(unsigned port, int pair, const char *key)
{
	json_t *q = queue_of(port, "rx", pair);
	long long v = geti(q, key);

	if (!json_object_get(q, key))
		die("port %u queue pair %d: no %s", port, pair, key);
	json_decref(q);
	return v;
}

/* Sum of the workers' packets and of the ports' packets taken from their
 * sources (tx_pkts: guests' TX, an ethdev port's RX). */
static void packet_sums(long long *workers, long long *taken)
{
	json_t *r = rpc("worker-list", NULL), *v;
	size_t i;

	*workers = *taken = 0;
	json_array_foreach(json_object_get(r, "workers"), i, v)
		*workers += geti(v, "packets");
	json_decref(r);
	r = rpc("port-list", NULL);
	json_array_foreach(json_object_get(r, "ports"), i, v)
		*taken += geti(v, "tx_pkts");
	json_decref(r);
}

struct station_streamer {
	int fd;
	uint8_t dst[6];
	unsigned sent;
	int stop;
};

static void *station_stream(void *arg)
{
	struct station_streamer *st = arg;
	uint8_t f[64];

	while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, 100 * 1000 };

		ipframe(f, st->dst, station, 90000u + st->sent);
		if (send(st->fd, f, 64, 0) == 64)
			st->sent++;
		nanosleep(&ts, NULL); /* a pace, not a synchronisation */
	}
	return NULL;
}

static int ethmq(char **socks, const char *ifname, unsigned ethport)
{
	struct vguest *g[2];
	uint8_t mac[2][6], bc[6], f[64];
	unsigned wtx[2], rxq[2] = { 0 }, got[2] = { 0 }, nflows = 64, sent[2] = { 40, 25 };
	uint32_t tags[256];
	long long pmd0[2], sw0[2], ws, taken;
	int fd = raw_open(ifname);

	memset(bc, 0xff, 6);
	for (int i = 0; i < 2; i++) {
		json_t *q;

		mac_of((unsigned)i, mac[i]);
		if (!(g[i] = vguest_open(socks[i], 5000)))
			die("guest %d could not attach to %s", i, socks[i]);
		q = queue_of((unsigned)i, "tx", 0);
		wtx[i] = (unsigned)geti(q, "worker");
		json_decref(q);
	}
	if (wtx[0] == wtx[1])
		die("both guests' TX queues are on worker %u: want one per worker", wtx[0]);
	if (qget(ethport, 0, "worker") == qget(ethport, 1, "worker"))
		die("both ethdev RX queues are on one worker");
	/* 1. the guests announce themselves: a broadcast each, which the
	 * other guest and the station get */
	for (int i = 0; i < 2; i++) {
		frame(f, bc, mac[i], 100u + (unsigned)i, 64);
		if (vguest_send_wait(g[i], f, 64, 5000) < 0)
			die("broadcast from guest %d not completed", i);
		if (drain_want(g[1 - i], tags, 4, mac[1 - i], 1) != 1 || tags[0] != 100u + (unsigned)i)
			die("guest %d's broadcast did not reach guest %d once", i, 1 - i);
	}
	if (raw_drain(fd, got, 2) != 2 || got[0] != 1 || got[1] != 1)
		die("the station got %u/%u broadcasts, want 1/1", got[0], got[1]);
	/* 2. station -> guests over 64 flows: the tap spreads them over its
	 * two queues (RX queue k is worker k's), each reaches its guest
	 * (on the other worker for half of them: a handoff) */
	for (int k = 0; k < 2; k++)
		rxq[k] = (unsigned)qget(ethport, k, "rx_pkts");
	for (unsigned t = 0; t < 2 * nflows; t++) {
		ipframe(f, mac[t & 1], station, 1000u + t);
		if (send(fd, f, 64, 0) != 64)
			die("the station could not send: %s", strerror(errno));
	}
	for (int i = 0; i < 2; i++) {
		unsigned n = drain_station(g[i], mac[i], tags, 256, nflows, NULL);

		if (n != nflows)
			die("guest %d got %u of the station's %u frames", i, n, nflows);
		for (unsigned k = 0; k < n; k++)
			if (tags[k] % 2 != (unsigned)i)
				die("guest %d got frame %u of guest %d", i, tags[k], 1 - i);
	}
	{
		long long r0 = qget(ethport, 0, "rx_pkts") - rxq[0];
		long long r1 = qget(ethport, 1, "rx_pkts") - rxq[1];

		printf("ethmq: %u station frames over %u flows reached their guests; RX queue 0 took "
		       "%lld, RX queue 1 %lld\n", 2 * nflows, nflows, r0, r1);
		if (r0 + r1 != 2 * nflows || !r0 || !r1)
			die("want both RX queues used, %u frames in all", 2 * nflows);
	}
	/* 3. guests -> station: each guest's frames leave on its worker's own
	 * TX queue (the PMD counts per queue) */
	for (int k = 0; k < 2; k++) {
		pmd0[k] = qget(ethport, k, "pmd_tx_pkts");
		sw0[k] = qget(ethport, k, "tx_pkts");
	}
	got[0] = got[1] = 0;
	for (int i = 0; i < 2; i++)
		for (unsigned k = 0; k < sent[i]; k++) {
			frame(f, station, mac[i], 2000u + 100u * (unsigned)i + k, 64);
			if (vguest_send_wait(g[i], f, 64, 5000) < 0)
				die("frame to the station from guest %d not completed", i);
		}
	if (raw_drain(fd, got, sent[0] + sent[1]) != sent[0] + sent[1] || got[0] != sent[0] ||
	    got[1] != sent[1])
		die("the station got %u and %u frames from the guests, want %u and %u", got[0],
		    got[1], sent[0], sent[1]);
	for (int i = 0; i < 2; i++) {
		long long pmd = qget(ethport, (int)wtx[i], "pmd_tx_pkts") - pmd0[wtx[i]];
		long long sw = qget(ethport, (int)wtx[i], "tx_pkts") - sw0[wtx[i]];

		printf("ethmq: guest %d (worker %u) sent %u to the station: TX queue %u carried %lld "
		       "(PMD's count %lld)\n", i, wtx[i], sent[i], wtx[i], sw, pmd);
		if (pmd != sent[i] || sw != sent[i])
			die("TX queue %u carried %lld (PMD: %lld) frames, want guest %d's %u: a worker "
			    "used another worker's TX queue", wtx[i], sw, pmd, i, sent[i]);
	}
	/* 4. each packet counted once by the workers: after all of the
	 * above (handoffs both ways included), the workers' packets are the
	 * packets taken from the ports (up to 2 s for the last pass's count) */
	{
		uint64_t end = now_ms() + 2000;

		do
			packet_sums(&ws, &taken);
		while (ws != taken && now_ms() < end);
		printf("ethmq: the workers counted %lld packets, the ports gave %lld\n", ws, taken);
		if (ws != taken)
			die("workers' packets %lld != packets taken from the ports %lld", ws, taken);
	}
	/* 5. rxq-pin of RX queue 0 to the other RX queue's worker, then
	 * rebalance (every queue to the next worker): the station's flows
	 * still reach their guests through both queues */
	{
		long long w1 = qget(ethport, 1, "worker");

		json_decref(rpc("rxq-pin", json_pack("{s:i, s:i, s:i}", "port", (int)ethport,
						     "pair", 0, "worker", (int)w1)));
		if (qget(ethport, 0, "worker") != w1)
			die("rxq-pin: RX queue 0 is on worker %lld, want %lld",
			    qget(ethport, 0, "worker"), w1);
		for (int round = 0; round < 2; round++) {
			if (round)
				json_decref(rpc("rebalance", NULL));
			for (unsigned t = 0; t < 2 * nflows; t++) {
				ipframe(f, mac[t & 1], station, 3000u + 1000u * (unsigned)round + t);
				if (send(fd, f, 64, 0) != 64)
					die("the station could not send: %s", strerror(errno));
			}
			for (int i = 0; i < 2; i++)
				if (drain_station(g[i], mac[i], tags, 256, nflows, NULL) != nflows)
					die("after %s guest %d missed station frames",
					    round ? "rebalance" : "rxq-pin", i);
		}
		printf("ethmq: RX queue 0 pinned to worker %lld, then a rebalance: the station's "
		       "frames kept reaching both guests\n", w1);
	}
	/* 6. port-del of the ethdev port while guest 0 streams to the
	 * station and the station to guest 1 */
	{
		struct streamer st = { .g = g[0] };
		struct station_streamer ss = { .fd = fd };
		pthread_t th, th2;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		uint32_t t;
		unsigned n, floods = 0;

		memcpy(st.src, mac[0], 6);
		memcpy(st.dst, station, 6);
		memcpy(ss.dst, mac[1], 6);
		if (pthread_create(&th, NULL, stream, &st) || pthread_create(&th2, NULL, station_stream, &ss))
			die("pthread_create");
		nanosleep(&ts, NULL); /* a head start; the frames' completion is the check */
		json_decref(rpc("port-del", json_pack("{s:i}", "port", (int)ethport)));
		nanosleep(&ts, NULL);
		__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&ss.stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		pthread_join(th2, NULL);
		/* what the station sent before the port went, and guest 0's
		 * frames to the station once its MAC died with the port (they
		 * flood to guest 1) */
		n = drain_station(g[1], mac[1], tags, 256, 0, &floods);
		if (st.sent < 10 || ss.sent < 10)
			die("port-del: streamed only %u and %u frames", st.sent, ss.sent);
		/* the guests still reach each other (guest 0 gets nothing else) */
		send_one(g[1], mac[0], mac[1], 7000);
		if (drain_want(g[0], &t, 1, mac[0], 1) != 1 || t != 7000)
			die("after port-del guest 0 did not get guest 1's frame");
		printf("ethmq: port-del of the ethdev port under traffic (guest 0 sent %u frames, the "
		       "station %u; guest 1 got %u of the station's and %u flooded); the guests "
		       "still reach each other\n", st.sent, ss.sent, n, floods);
	}
	close(fd);
	for (int i = 0; i < 2; i++)
		vguest_close(g[i]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "churn") == 0) {
		ctl = argv[2];
		return churn(argv[3], (unsigned)strtoul(argv[4], NULL, 10));
	}
	if (argc >= 4 && strcmp(argv[1], "learn") == 0) {
		ctl = argv[2];
		return learn(argc - 3, argv + 3);
	}
	if (argc >= 4 && strcmp(argv[1], "learnmw") == 0) {
		ctl = argv[2];
		return learnmw(argc - 3, argv + 3);
	}
	if (argc == 7 && strcmp(argv[1], "ethmq") == 0) {
		ctl = argv[2];
		return ethmq(argv + 3, argv[5], (unsigned)strtoul(argv[6], NULL, 10));
	}
	fprintf(stderr, "usage: ctl-guests churn CTL DIR CYCLES | learn CTL SOCK... | "
		"learnmw CTL SOCK0..SOCK3 | ethmq CTL SOCK0 SOCK1 IFACE ETHPORT\n");
	return 2;
}
