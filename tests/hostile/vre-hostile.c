/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hostile vhost-user frontend and guest, for a running vre-switch port:
 *
 *   vre-hostile SOCKET SCENARIO      (vre-hostile --list: every scenario)
 *
 * Each scenario connects, speaks as much of the protocol as it needs, then
 * does one wrong thing: a malformed or out-of-order request, or (after a
 * proper set-up with a running queue) a corrupted ring in the guest memory
 * it owns (a memfd), followed by a kick. It exits 0 when the backend
 * behaved as the scenario expects (an error reply, a dropped connection, a
 * queue that is no longer served) and 1 with a message otherwise.
 *
 * Before it acts it prints one line "expect-log: REGEX": what the switch's
 * log must show afterwards (tests/hostile/hostile.sh greps for it).
 *
 * Guest memory is one memfd region of MEM_LEN bytes; queue q's rings sit at
 * q * QSTRIDE, packet buffers from BUF_OFF on. The attacked queue is the TX
 * queue (1): the one the device reads chains from when kicked.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "vfront.h"
#include "vre_ring_layout.h"
#include "vdrv_packed.h"

enum {
	GET_FEATURES = 1, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE,
	SET_LOG_BASE, SET_LOG_FD, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE,
	GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR,
	GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
	SET_VRING_ENABLE, GET_CONFIG = 24, SET_CONFIG, GET_INFLIGHT_FD = 31,
	SET_INFLIGHT_FD = 32, RESET_DEVICE = 34, ADD_MEM_REG = 37, REM_MEM_REG,
};

#define F_MRG_RXBUF (1ull << 15)
#define F_INDIRECT (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_PROTOCOL (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define F_PACKED (1ull << 34)
#define PF_LOG_SHMFD (1ull << 1)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define PF_INFLIGHT (1ull << 12)
#define PF_RESET_DEVICE (1ull << 13)
#define PF_MEM_SLOTS (1ull << 15)

#define NOFD 0x100u
#define QSIZE 256u
#define MEM_LEN (1u << 20)
#define GPA0 0x40000000ull
#define UVA0 0x7f5a00000000ull
#define QSTRIDE 0x10000u
#define AVAIL_OFF 0x1000u /* split avail / packed driver area, from the queue's base */
#define USED_OFF 0x2000u  /* split used / packed device area */
#define BUF_OFF 0x40000u
#define TXQ 1u
#define HDR_LEN 12u    /* virtio-net header with num_buffers (VERSION_1) */
#define FRAME_LEN 60u
#define WAIT_MS 400    /* how long a queue must stay silent to count as not served */

struct region { uint64_t gpa, size, uva, offset; };
struct addr_msg { uint32_t index, flags; uint64_t desc, used, avail, log; };
struct state { uint32_t index, num; };
struct inflight_msg { uint64_t mmap_size, mmap_offset; uint16_t num_queues, queue_size; };

struct hs {
	const char *path;
	int fd;
	int memfd;
	uint8_t *mem;
	uint64_t features;
	bool packed;
	int kick[2], call[2];
	uint16_t avail_idx;  /* split: next avail->idx to publish */
	uint16_t used_seen;  /* split: used->idx last read */
	struct pdrv pk;     /* packed: the test driver over our memory */
	uint16_t next_id;
};

static struct hs S;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "vre-hostile: FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void expect_log(const char *regex)
{
	printf("expect-log: %s\n", regex);
	fflush(stdout);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int eventfd_or_die(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		fail("eventfd: %s", strerror(errno));
	return fd;
}

/* ---- session ---------------------------------------------------------- */

static void hs_memory(struct hs *s, unsigned memfd_flags)
{
	s->memfd = memfd_create("vre-hostile-guest", MFD_CLOEXEC | memfd_flags);
	if (s->memfd < 0 || ftruncate(s->memfd, MEM_LEN) < 0)
		fail("guest memory: %s", strerror(errno));
	s->mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
	if (s->mem == MAP_FAILED)
		fail("mmap guest memory: %s", strerror(errno));
}

static void hs_open(struct hs *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->path = path;
	s->memfd = -1;
	s->fd = vfront_connect(path, 5000);
	if (s->fd < 0)
		fail("connect %s: %s", path, strerror(-s->fd));
	for (int q = 0; q < 2; q++)
		s->kick[q] = s->call[q] = -1;
}

static void hs_close(struct hs *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static int send_req(struct hs *s, uint32_t req, const void *p, uint32_t n,
		    const int *fds, unsigned nfds)
{
	return vfront_send(s->fd, req, 0, p, n, fds, nfds);
}

/* With REPLY_ACK: 0 accepted, 1 refused, -errno (-ECONNRESET: dropped). */
static int ack(struct hs *s, uint32_t req, const void *p, uint32_t n, const int *fds,
	       unsigned nfds)
{
	int r = vfront_request_ack(s->fd, req, p, n, fds, nfds);

	return r == -EPIPE ? -ECONNRESET : r;
}

static void must_ack(struct hs *s, uint32_t req, const void *p, uint32_t n, const int *fds,
		     unsigned nfds, const char *what)
{
	int r = ack(s, req, p, n, fds, nfds);

	if (r != 0)
		fail("%s: %s", what, r == 1 ? "refused" : strerror(-r));
}

/* The backend must refuse: an error ack, or the connection dropped. */
static void must_refuse(struct hs *s, uint32_t req, const void *p, uint32_t n,
			const int *fds, unsigned nfds, const char *what)
{
	int r = ack(s, req, p, n, fds, nfds);

	if (r == 0)
		fail("%s was accepted", what);
	if (r < 0 && r != -ECONNRESET)
		fail("%s: %s", what, strerror(-r));
	printf("%s: %s\n", what, r == 1 ? "refused" : "connection dropped");
}

static void must_drop(struct hs *s, const char *what)
{
	if (!vfront_closed(s->fd, VFRONT_TIMEOUT_MS))
		fail("%s: the connection was not dropped", what);
	printf("%s: connection dropped\n", what);
}

static void u64_ack(struct hs *s, uint32_t req, uint64_t v, const char *what)
{
	must_ack(s, req, &v, 8, NULL, 0, what);
}

/* GET_FEATURES, protocol features (REPLY_ACK and pf), SET_OWNER, features. */
static void hs_hello(struct hs *s, uint64_t want, uint64_t pf)
{
	uint64_t offered, pfo;

	if (vfront_get_u64(s->fd, GET_FEATURES, &offered) < 0)
		fail("GET_FEATURES: no reply");
	if (!(offered & F_PROTOCOL))
		fail("PROTOCOL_FEATURES not offered");
	if (vfront_get_u64(s->fd, GET_PROTOCOL_FEATURES, &pfo) < 0)
		fail("GET_PROTOCOL_FEATURES: no reply");
	if ((pfo & (PF_REPLY_ACK | pf)) != (PF_REPLY_ACK | pf))
		fail("protocol features 0x%llx not offered", (unsigned long long)pf);
	u64_ack(s, SET_PROTOCOL_FEATURES, PF_REPLY_ACK | pf, "SET_PROTOCOL_FEATURES");
	must_ack(s, SET_OWNER, NULL, 0, NULL, 0, "SET_OWNER");
	s->features = (want | F_PROTOCOL | F_VERSION_1) & offered;
	s->packed = s->features & F_PACKED;
	u64_ack(s, SET_FEATURES, s->features, "SET_FEATURES");
}

static struct region hs_region(void)
{
	return (struct region){ .gpa = GPA0, .size = MEM_LEN, .uva = UVA0, .offset = 0 };
}

static int mem_table(struct hs *s, const struct region *r, uint32_t n, const int *fds,
		     unsigned nfds)
{
	struct { uint32_t n, pad; struct region r[8]; } t = { .n = n };

	memcpy(t.r, r, sizeof(*r) * (n > 8 ? 8 : n));
	return ack(s, SET_MEM_TABLE, &t, 8 + (uint32_t)sizeof(*r) * (n > 8 ? 8 : n), fds, nfds);
}

static void hs_mem(struct hs *s)
{
	struct region r = hs_region();

	if (mem_table(s, &r, 1, &s->memfd, 1) != 0)
		fail("SET_MEM_TABLE refused");
}

static uint64_t qbase(uint32_t q)
{
	return (uint64_t)q * QSTRIDE;
}

static struct addr_msg ring_addr(uint32_t q)
{
	return (struct addr_msg){
		.index = q, .desc = UVA0 + qbase(q), .avail = UVA0 + qbase(q) + AVAIL_OFF,
		.used = UVA0 + qbase(q) + USED_OFF,
	};
}

static void hs_ring_parts(struct hs *s, uint32_t q, const struct addr_msg *a)
{
	struct state st = { q, QSIZE };

	must_ack(s, SET_VRING_NUM, &st, sizeof(st), NULL, 0, "SET_VRING_NUM");
	st.num = s->packed ? 0x8000 : 0; /* packed: wrap counters start at 1 */
	must_ack(s, SET_VRING_BASE, &st, sizeof(st), NULL, 0, "SET_VRING_BASE");
	must_ack(s, SET_VRING_ADDR, a, sizeof(*a), NULL, 0, "SET_VRING_ADDR");
}

static void hs_ring_start(struct hs *s, uint32_t q)
{
	struct state en = { q, 1 };
	uint64_t v = q;

	if (s->call[q] < 0)
		s->call[q] = eventfd_or_die();
	if (s->kick[q] < 0)
		s->kick[q] = eventfd_or_die();
	must_ack(s, SET_VRING_CALL, &v, 8, &s->call[q], 1, "SET_VRING_CALL");
	must_ack(s, SET_VRING_KICK, &v, 8, &s->kick[q], 1, "SET_VRING_KICK");
	must_ack(s, SET_VRING_ENABLE, &en, sizeof(en), NULL, 0, "SET_VRING_ENABLE");
}

static void hs_ring(struct hs *s, uint32_t q)
{
	struct addr_msg a = ring_addr(q);

	if (s->packed && q == TXQ)
		pdrv_init(&s->pk, QSIZE, s->mem + qbase(q), s->mem + qbase(q) + AVAIL_OFF,
			   s->mem + qbase(q) + USED_OFF);
	hs_ring_parts(s, q, &a);
	hs_ring_start(s, q);
}

/* Everything up to running RX and TX queues. */
static void hs_setup(struct hs *s, const char *path, uint64_t features, unsigned memfd_flags)
{
	hs_open(s, path);
	hs_memory(s, memfd_flags);
	hs_hello(s, features, 0);
	hs_mem(s);
	hs_ring(s, 0);
	hs_ring(s, TXQ);
}

/* ---- the TX ring, as a guest ------------------------------------------- */

static struct vre_desc *sdesc(struct hs *s)
{
	return (struct vre_desc *)(s->mem + qbase(TXQ));
}

static struct vre_avail *savail(struct hs *s)
{
	return (struct vre_avail *)(s->mem + qbase(TXQ) + AVAIL_OFF);
}

static struct vre_used_ring *sused(struct hs *s)
{
	return (struct vre_used_ring *)(s->mem + qbase(TXQ) + USED_OFF);
}

/* A frame that the learning switch filters: source and destination are
 * the same (this port's) MAC, so nothing reaches the healthy ports. */
static uint64_t frame(struct hs *s, unsigned slot)
{
	uint64_t off = BUF_OFF + (uint64_t)slot * 2048;
	uint8_t *p = s->mem + off;
	static const uint8_t mac[6] = { 0x02, 0xde, 0xad, 0xbe, 0xef, 0x02 };

	memset(p, 0, HDR_LEN + FRAME_LEN);
	memcpy(p + HDR_LEN, mac, 6);
	memcpy(p + HDR_LEN + 6, mac, 6);
	p[HDR_LEN + 12] = 0x88;
	p[HDR_LEN + 13] = 0xb5; /* local experimental ethertype */
	return GPA0 + off;
}

static void kick(struct hs *s)
{
	uint64_t one = 1;

	if (write(s->kick[TXQ], &one, 8) != 8)
		fail("kick: %s", strerror(errno));
}

/* Split: publishes head (descriptors already written) and kicks. */
static void split_post(struct hs *s, uint16_t head)
{
	struct vre_avail *av = savail(s);

	av->ring[s->avail_idx % QSIZE] = head;
	s->avail_idx++;
	__atomic_store_n(&av->idx, s->avail_idx, __ATOMIC_RELEASE);
	kick(s);
}

static uint16_t used_idx(struct hs *s)
{
	return __atomic_load_n(&sused(s)->idx, __ATOMIC_ACQUIRE);
}

/* Split: waits until the device has completed n more chains. */
static bool split_wait_used(struct hs *s, uint16_t n, int ms)
{
	int64_t end = now_ms() + ms;
	uint16_t want = (uint16_t)(s->used_seen + n);

	while (now_ms() < end) {
		if (used_idx(s) == want) {
			s->used_seen = want;
			return true;
		}
		poll(NULL, 0, 1);
	}
	return false;
}

/* One valid packet through the TX queue, completed within 2 s. */
static void tx_good(struct hs *s, unsigned slot)
{
	if (s->packed) {
		struct pdrv_desc d = { .addr = frame(s, slot), .len = HDR_LEN + FRAME_LEN };
		uint16_t id, got;
		uint32_t len;
		int64_t end = now_ms() + 2000;
		int r;

		id = s->next_id++ % QSIZE;
		if (pdrv_post(&s->pk, &d, 1, id, false) < 0)
			fail("packed post");
		kick(s);
		while ((r = pdrv_get_used(&s->pk, &got, &len)) == 0 && now_ms() < end)
			poll(NULL, 0, 1);
		if (r != 1 || got != id)
			fail("a valid packet was not completed (%d, id %u of %u)", r, got, id);
		return;
	}
	struct vre_desc *d = &sdesc(s)[slot % QSIZE];

	d->addr = frame(s, slot);
	d->len = HDR_LEN + FRAME_LEN;
	d->flags = 0;
	d->next = 0;
	split_post(s, (uint16_t)(slot % QSIZE));
	if (!split_wait_used(s, 1, 2000))
		fail("a valid packet was not completed (used %u, want %u)", used_idx(s),
		     (uint16_t)(s->used_seen + 1));
	struct vre_used_elem e = sused(s)->ring[(uint16_t)(s->used_seen - 1) % QSIZE];
	if (e.id != slot % QSIZE)
		fail("completion for head %u, posted %u", e.id, slot % QSIZE);
}

/* The control thread still answers: GET_VRING_BASE on the TX queue (which
 * also stops it) gets its reply, or the connection was dropped. Stopping
 * the queue waits for the worker to leave it; on a loaded 2-core machine a
 * worker has been seen to take seconds, so the bound is above the 5 s after
 * which the switch itself calls a worker stuck (and then keeps waiting:
 * a worker stuck for real still fails here). */
#define ALIVE_MS 8000
static void control_alive(struct hs *s, const char *what)
{
	struct state st = { TXQ, 0 };
	struct vfront_msg m;
	int r = send_req(s, GET_VRING_BASE, &st, sizeof(st), NULL, 0);

	if (r == 0)
		r = vfront_recv(s->fd, &m, ALIVE_MS);
	if (r == -ETIMEDOUT)
		fail("%s: the control thread does not answer within %d ms", what, ALIVE_MS);
	if (r == 0 && m.request != GET_VRING_BASE)
		fail("%s: reply to %u, want GET_VRING_BASE", what, m.request);
	if (r == 0)
		vfront_msg_close_fds(&m);
}

/* After a corrupted chain was published and kicked: the device must not
 * complete it, and must not serve the queue afterwards either (a valid
 * chain behind it stays pending): the queue is broken. */
static void expect_not_served(struct hs *s, const char *what)
{
	if (s->packed) {
		/* the device writes a chain's first slot when it completes
		 * it: that slot must keep what the driver wrote */
		struct vre_packed_desc *d = &s->pk.ring[s->pk.avail_idx];
		uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
		uint32_t len = d->len;
		int64_t end = now_ms() + WAIT_MS;

		while (now_ms() < end) {
			if (__atomic_load_n(&d->flags, __ATOMIC_ACQUIRE) != flags || d->len != len)
				fail("%s: the device wrote slot %u of a corrupt ring", what,
				     s->pk.avail_idx);
			poll(NULL, 0, 5);
		}
	} else if (split_wait_used(s, 1, WAIT_MS)) {
		fail("%s: the device completed the corrupt chain", what);
	}
	control_alive(s, what);
	printf("%s: not served\n", what);
}

/* ---- hostile guests: split ------------------------------------------- */

static void set_desc(struct hs *s, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vre_desc *d = &sdesc(s)[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void guest_split(const char *path, const char *name)
{
	struct hs *s = &S;
	uint64_t buf;
	uint16_t h = 10;

	expect_log("queue of size 256 broken");
	hs_setup(s, path, F_INDIRECT | F_MRG_RXBUF, 0);
	tx_good(s, 0); /* the queue runs */
	buf = frame(s, 1);
	if (!strcmp(name, "g-loop")) {
		set_desc(s, h, buf, HDR_LEN, VRE_DESC_F_NEXT, 11);
		set_desc(s, 11, buf + HDR_LEN, 30, VRE_DESC_F_NEXT, h);
	} else if (!strcmp(name, "g-next-range")) {
		set_desc(s, h, buf, HDR_LEN, VRE_DESC_F_NEXT, QSIZE + 44);
	} else if (!strcmp(name, "g-chain-long")) {
		/* every descriptor of the table, the last pointing at the first */
		for (uint16_t i = 0; i < QSIZE; i++)
			set_desc(s, i, buf, 4, VRE_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
		h = 0;
	} else if (!strcmp(name, "g-desc-oob")) {
		set_desc(s, h, GPA0 + MEM_LEN + 0x1000, HDR_LEN + FRAME_LEN, 0, 0);
	} else if (!strcmp(name, "g-desc-straddle")) {
		set_desc(s, h, GPA0 + MEM_LEN - 20, HDR_LEN + FRAME_LEN, 0, 0);
	} else if (!strcmp(name, "g-len-wrap")) {
		set_desc(s, h, 0xfffffffffffff000ull, 0x2000, 0, 0);
	} else if (!strncmp(name, "g-ind-", 6)) {
		uint64_t tbl = GPA0 + BUF_OFF + 0x20000;
		struct vre_desc *t = (struct vre_desc *)(s->mem + (tbl - GPA0));
		uint32_t len = 32;
		uint16_t flags = VRE_DESC_F_INDIRECT;

		t[0] = (struct vre_desc){ .addr = buf, .len = HDR_LEN, .flags = VRE_DESC_F_NEXT, .next = 1 };
		t[1] = (struct vre_desc){ .addr = buf + HDR_LEN, .len = FRAME_LEN };
		if (!strcmp(name, "g-ind-len-odd"))
			len = 24;
		else if (!strcmp(name, "g-ind-len-0"))
			len = 0;
		else if (!strcmp(name, "g-ind-len-huge"))
			len = 16u * 40000;
		else if (!strcmp(name, "g-ind-nested"))
			t[1] = (struct vre_desc){ .addr = tbl, .len = 32, .flags = VRE_DESC_F_INDIRECT };
		else if (!strcmp(name, "g-ind-next"))
			flags |= VRE_DESC_F_NEXT;
		else if (!strcmp(name, "g-ind-oob"))
			tbl = GPA0 + MEM_LEN - 16;
		else if (!strcmp(name, "g-ind-loop"))
			t[1] = (struct vre_desc){ .addr = buf, .len = 8, .flags = VRE_DESC_F_NEXT, .next = 0 };
		else if (!strcmp(name, "g-ind-next-range"))
			t[1] = (struct vre_desc){ .addr = buf, .len = 8, .flags = VRE_DESC_F_NEXT, .next = 2 };
		else
			fail("unknown scenario %s", name);
		set_desc(s, h, tbl, len, flags, 11);
		set_desc(s, 11, buf, 8, 0, 0);
	} else if (!strcmp(name, "g-avail-leap")) {
		struct vre_avail *av = savail(s);

		set_desc(s, h, buf, HDR_LEN + FRAME_LEN, 0, 0);
		s->avail_idx = (uint16_t)(s->avail_idx + QSIZE + 7);
		__atomic_store_n(&av->idx, s->avail_idx, __ATOMIC_RELEASE);
		kick(s);
		expect_not_served(s, name);
		return;
	} else if (!strcmp(name, "g-write-read")) {
		/* a readable descriptor after a writable one */
		set_desc(s, h, buf, HDR_LEN, VRE_DESC_F_WRITE | VRE_DESC_F_NEXT, 11);
		set_desc(s, 11, buf + HDR_LEN, FRAME_LEN, 0, 0);
	} else if (!strcmp(name, "g-head-range")) {
		h = QSIZE + 3;
	} else {
		fail("unknown scenario %s", name);
	}
	split_post(s, h);
	expect_not_served(s, name);
}

/* ---- hostile guests: packed ------------------------------------------ */

static void pdesc(struct hs *s, uint16_t slot, uint64_t addr, uint32_t len, uint16_t id,
		  uint16_t flags)
{
	struct vre_packed_desc *d = &s->pk.ring[slot];

	d->addr = addr;
	d->len = len;
	d->id = id;
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

static uint16_t avail_bits(bool wrap)
{
	return wrap ? VRE_PACKED_DESC_F_AVAIL : VRE_PACKED_DESC_F_USED;
}

static void guest_packed(const char *path, const char *name)
{
	struct hs *s = &S;
	uint64_t buf;
	uint16_t slot, av;
	bool ignored = !strcmp(name, "p-wrap") || !strcmp(name, "p-used-flags");

	/* A descriptor that is not available is not an error: the device
	 * leaves it alone, and the session ends normally. */
	expect_log(ignored ? "frontend disconnected" : "packed queue of size 256 broken");
	hs_setup(s, path, F_PACKED | F_INDIRECT | F_MRG_RXBUF, 0);
	if (!s->packed)
		fail("RING_PACKED not offered");
	tx_good(s, 0);
	buf = frame(s, 1);
	slot = s->pk.avail_idx;
	av = avail_bits(s->pk.avail_wrap);
	if (!strcmp(name, "p-id-range")) {
		pdesc(s, slot, buf, HDR_LEN + FRAME_LEN, QSIZE + 5, av);
	} else if (!strcmp(name, "p-chain-open")) {
		/* NEXT on the head, the next slot never made available */
		pdesc(s, slot, buf, HDR_LEN + FRAME_LEN, 1, av | VRE_DESC_F_NEXT);
	} else if (!strcmp(name, "p-chain-long")) {
		bool w = s->pk.avail_wrap;
		uint16_t i = slot;

		/* every slot available with NEXT: a chain longer than the ring
		 * (the head is written last) */
		for (unsigned k = 1; k <= QSIZE; k++) {
			i = (uint16_t)((i + 1) % QSIZE);
			if (i == 0)
				w = !w;
			if (k < QSIZE)
				pdesc(s, i, buf, 4, 2, avail_bits(w) | VRE_DESC_F_NEXT);
		}
		pdesc(s, slot, buf, 4, 2, av | VRE_DESC_F_NEXT);
	} else if (!strcmp(name, "p-desc-oob")) {
		pdesc(s, slot, GPA0 + MEM_LEN + 0x1000, HDR_LEN + FRAME_LEN, 1, av);
	} else if (!strcmp(name, "p-len-wrap")) {
		pdesc(s, slot, 0xfffffffffffff000ull, 0x2000, 1, av);
	} else if (!strncmp(name, "p-ind-", 6)) {
		uint64_t tbl = GPA0 + BUF_OFF + 0x20000;
		struct vre_packed_desc *t = (struct vre_packed_desc *)(s->mem + (tbl - GPA0));
		uint32_t len = 32;
		uint16_t flags = av | VRE_DESC_F_INDIRECT;

		t[0] = (struct vre_packed_desc){ .addr = buf, .len = HDR_LEN };
		t[1] = (struct vre_packed_desc){ .addr = buf + HDR_LEN, .len = FRAME_LEN };
		if (!strcmp(name, "p-ind-len-odd"))
			len = 40;
		else if (!strcmp(name, "p-ind-len-0"))
			len = 0;
		else if (!strcmp(name, "p-ind-nested"))
			t[1].flags = VRE_DESC_F_INDIRECT;
		else if (!strcmp(name, "p-ind-next"))
			flags |= VRE_DESC_F_NEXT;
		else
			fail("unknown scenario %s", name);
		pdesc(s, slot, tbl, len, 1, flags);
	} else if (!strcmp(name, "p-write-read")) {
		bool w = s->pk.avail_wrap;
		uint16_t next = (uint16_t)((slot + 1) % QSIZE);

		if (next == 0)
			w = !w;
		pdesc(s, next, buf + HDR_LEN, FRAME_LEN, 1, avail_bits(w));
		pdesc(s, slot, buf, HDR_LEN, 1, av | VRE_DESC_F_WRITE | VRE_DESC_F_NEXT);
	} else if (!strcmp(name, "p-wrap")) {
		/* published with the other lap's wrap: not available yet */
		pdesc(s, slot, buf, HDR_LEN + FRAME_LEN, 1, avail_bits(!s->pk.avail_wrap));
	} else if (!strcmp(name, "p-used-flags")) {
		/* AVAIL and USED both equal to the wrap: a used slot */
		pdesc(s, slot, buf, HDR_LEN + FRAME_LEN, 1,
		      s->pk.avail_wrap ? VRE_PACKED_DESC_F_AVAIL | VRE_PACKED_DESC_F_USED : 0);
	} else {
		fail("unknown scenario %s", name);
	}
	kick(s);
	expect_not_served(s, name);
}

/* ---- hostile frontends: the protocol ---------------------------------- */

/* A session up to SET_FEATURES (split ring), and the memory table. */
static struct hs *proto(const char *path, bool mem)
{
	hs_open(&S, path);
	hs_memory(&S, 0);
	hs_hello(&S, F_MRG_RXBUF, 0);
	if (mem)
		hs_mem(&S);
	return &S;
}

/* Bytes with fds on one sendmsg (a message cut short, a header alone). */
static void send_bytes(int fd, const void *buf, size_t len, const int *fds, unsigned n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		fail("sendmsg: %s", strerror(errno));
}

static void sc_hdr_huge(const char *path)
{
	uint32_t h[3] = { SET_FEATURES, 1, 65536 };

	expect_log("payload of 65536 bytes");
	hs_open(&S, path);
	send_bytes(S.fd, h, sizeof(h), NULL, 0);
	must_drop(&S, "a 64 KiB payload announced");
}

static void sc_size_mismatch(const char *path)
{
	struct hs *s = proto(path, false);
	uint32_t four = 0;
	struct state st = { 0, 256 };

	expect_log("SET_FEATURES refused: 4 payload bytes");
	must_refuse(s, SET_FEATURES, &four, 4, NULL, 0, "SET_FEATURES of 4 bytes");
	must_refuse(s, SET_VRING_NUM, &st, 4, NULL, 0, "SET_VRING_NUM of 4 bytes");
	must_refuse(s, SET_OWNER, &st, 8, NULL, 0, "SET_OWNER with a payload");
}

/* GET_VRING_BASE always replies and has no failure encoding: a malformed
 * one can only end the session. */
static void sc_size_always(const char *path)
{
	struct hs *s = proto(path, false);
	uint32_t four = 0;

	expect_log("GET_VRING_BASE failed and has no failure reply");
	if (send_req(s, GET_VRING_BASE, &four, 4, NULL, 0) < 0)
		fail("send");
	must_drop(s, "GET_VRING_BASE of 4 bytes");
}

static void sc_truncated(const char *path)
{
	uint8_t buf[12 + 40] = { 0 };
	uint32_t h[3] = { SET_MEM_TABLE, 1, 8 + 32 };
	int fds[2];

	expect_log("frontend disconnected");
	hs_open(&S, path);
	hs_memory(&S, 0);
	hs_hello(&S, F_MRG_RXBUF, 0);
	memcpy(buf, h, 12);
	fds[0] = S.memfd;
	fds[1] = eventfd_or_die();
	/* the header, 20 of 40 payload bytes and two fds, then gone */
	send_bytes(S.fd, buf, 12 + 20, fds, 2);
	poll(NULL, 0, 50);
	close(fds[1]);
	hs_close(&S);
}

static void sc_too_many_fds(const char *path)
{
	struct hs *s = proto(path, false);
	int fds[12];
	uint64_t v = 0;

	expect_log("more than 8 fds on one message");
	for (int i = 0; i < 12; i++)
		fds[i] = eventfd_or_die();
	if (send_req(s, SET_VRING_CALL, &v, 8, fds, 12) < 0)
		fail("send");
	must_drop(s, "SET_VRING_CALL with 12 fds");
}

static void sc_fds_on_nofd(const char *path)
{
	struct hs *s = proto(path, false);
	int fds[2] = { eventfd_or_die(), eventfd_or_die() };

	expect_log("SET_FEATURES refused: 2 fds \\(takes at most 0\\)");
	must_refuse(s, SET_FEATURES, &s->features, 8, fds, 2, "SET_FEATURES with 2 fds");
	must_refuse(s, SET_VRING_ENABLE, &(struct state){ 0, 1 }, 8, fds, 1,
		    "SET_VRING_ENABLE with an fd");
}

static void sc_missing_fd(const char *path)
{
	struct hs *s = proto(path, true);
	struct addr_msg a = ring_addr(0);
	struct region r = hs_region();
	uint64_t v = 0;

	expect_log("SET_VRING_CALL refused: queue 0: 0 fds and no-fd bit 0");
	hs_ring_parts(s, 0, &a);
	must_refuse(s, SET_VRING_CALL, &v, 8, NULL, 0, "SET_VRING_CALL without fd");
	must_refuse(s, SET_VRING_KICK, &v, 8, NULL, 0, "SET_VRING_KICK without fd");
	if (mem_table(s, &r, 1, NULL, 0) == 0)
		fail("a memory table without its fd was accepted");
}

static void sc_unknown(const char *path)
{
	struct hs *s = proto(path, false);
	static const uint32_t codes[] = { 0, 26, 43, 44, 99, 0x7fffffff, 0xffffffff };

	expect_log("UNKNOWN refused: request 99 is not supported");
	for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		char what[64];

		snprintf(what, sizeof(what), "request %u", codes[i]);
		must_refuse(s, codes[i], NULL, 0, NULL, 0, what);
	}
}

static void sc_before_owner(const char *path)
{
	struct region r = hs_region();
	uint64_t f = F_VERSION_1;

	expect_log("SET_MEM_TABLE refused: before SET_OWNER");
	hs_open(&S, path);
	hs_memory(&S, 0);
	u64_ack(&S, SET_PROTOCOL_FEATURES, PF_REPLY_ACK, "SET_PROTOCOL_FEATURES");
	if (mem_table(&S, &r, 1, &S.memfd, 1) == 0)
		fail("SET_MEM_TABLE before SET_OWNER accepted");
	must_refuse(&S, SET_FEATURES, &f, 8, NULL, 0, "SET_FEATURES before SET_OWNER");
	must_refuse(&S, SET_VRING_NUM, &(struct state){ 0, 256 }, 8, NULL, 0,
		    "SET_VRING_NUM before SET_OWNER");
}

/* A ring size that only a packed ring may have, given before the features
 * say the ring is split: the ring must not start. */
static void sc_before_features(const char *path)
{
	struct hs *s = &S;
	struct state st = { TXQ, 100 };
	struct addr_msg a = ring_addr(TXQ);
	uint64_t v = TXQ, f = F_VERSION_1 | F_PROTOCOL;

	expect_log("queue 1: ring setup failed");
	hs_open(s, path);
	hs_memory(s, 0);
	u64_ack(s, SET_PROTOCOL_FEATURES, PF_REPLY_ACK, "SET_PROTOCOL_FEATURES");
	must_ack(s, SET_OWNER, NULL, 0, NULL, 0, "SET_OWNER");
	must_ack(s, SET_VRING_NUM, &st, sizeof(st), NULL, 0, "SET_VRING_NUM 100 (before features)");
	u64_ack(s, SET_FEATURES, f, "SET_FEATURES");
	hs_mem(s);
	st.num = 0;
	must_ack(s, SET_VRING_BASE, &st, sizeof(st), NULL, 0, "SET_VRING_BASE");
	must_ack(s, SET_VRING_ADDR, &a, sizeof(a), NULL, 0, "SET_VRING_ADDR");
	s->call[TXQ] = eventfd_or_die();
	s->kick[TXQ] = eventfd_or_die();
	must_ack(s, SET_VRING_CALL, &v, 8, &s->call[TXQ], 1, "SET_VRING_CALL");
	ack(s, SET_VRING_KICK, &v, 8, &s->kick[TXQ], 1);
	ack(s, SET_VRING_ENABLE, &(struct state){ TXQ, 1 }, 8, NULL, 0);
	set_desc(s, 0, frame(s, 0), HDR_LEN + FRAME_LEN, 0, 0);
	split_post(s, 0);
	expect_not_served(s, "a split ring of 100");
}

static void sc_bad_features(const char *path)
{
	struct hs *s = proto(path, false);
	uint64_t f = s->features | (1ull << 60);

	expect_log("SET_FEATURES refused: features 0x[0-9a-f]+ have bits never offered");
	must_refuse(s, SET_FEATURES, &f, 8, NULL, 0, "feature bit 60");
	f = s->features | (1ull << 26); /* LOG_ALL: never offered */
	must_refuse(s, SET_FEATURES, &f, 8, NULL, 0, "LOG_ALL");
}

static void sc_bad_pf(const char *path)
{
	struct hs *s = proto(path, false);
	/* CRYPTO_SESSION (7): never offered (LOG_SHMFD is, since migration) */
	uint64_t pf = PF_REPLY_ACK | (1ull << 7);

	expect_log("SET_PROTOCOL_FEATURES refused: protocol features have bits never offered");
	must_refuse(s, SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0, "CRYPTO_SESSION");
	pf = PF_REPLY_ACK | (1ull << 63);
	must_refuse(s, SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0, "protocol bit 63");
}

/* Memory tables: each must be refused, none may leave a mapping behind. */
static void mem_refused(struct hs *s, const struct region *r, uint32_t n, const int *fds,
			unsigned nfds, const char *what)
{
	int ret = mem_table(s, r, n, fds, nfds);

	if (ret == 0)
		fail("memory table (%s) accepted", what);
	if (ret < 0 && ret != -ECONNRESET)
		fail("memory table (%s): %s", what, strerror(-ret));
	printf("memory table (%s): refused\n", what);
}

static void sc_mem(const char *path, const char *name)
{
	struct hs *s = proto(path, false);
	struct region r[9];
	int fds[9];

	for (int i = 0; i < 9; i++) {
		r[i] = hs_region();
		fds[i] = s->memfd;
	}
	if (!strcmp(name, "mem-0")) {
		expect_log("memory table of 0 regions");
		mem_refused(s, r, 0, NULL, 0, "0 regions");
	} else if (!strcmp(name, "mem-many")) {
		expect_log("memory table of 9 regions");
		mem_refused(s, r, 9, fds, 8, "9 regions");
	} else if (!strcmp(name, "mem-overlap")) {
		expect_log("overlaps or does not fit");
		r[0].size = r[1].size = MEM_LEN / 2;
		r[1].gpa = GPA0 + 0x1000;
		r[1].uva = UVA0 + MEM_LEN;
		r[1].offset = MEM_LEN / 2;
		mem_refused(s, r, 2, fds, 2, "overlapping guest addresses");
	} else if (!strcmp(name, "mem-size0")) {
		expect_log("size 0x0 .*: empty or wraps");
		r[0].size = 0;
		mem_refused(s, r, 1, fds, 1, "size 0");
	} else if (!strcmp(name, "mem-wrap")) {
		expect_log("gpa 0xfffffffffffff000 size 0x2000 .*: empty or wraps");
		r[0].gpa = 0xfffffffffffff000ull;
		r[0].size = 0x2000;
		mem_refused(s, r, 1, fds, 1, "gpa + size wraps");
		r[0] = hs_region();
		r[0].uva = 0xffffffffffff0000ull;
		mem_refused(s, r, 1, fds, 1, "uva + size wraps");
		r[0] = hs_region();
		r[0].offset = 0xfffffffffff00000ull;
		mem_refused(s, r, 1, fds, 1, "offset + size wraps");
	} else if (!strcmp(name, "mem-offset")) {
		expect_log("beyond its file");
		r[0].offset = MEM_LEN;
		mem_refused(s, r, 1, fds, 1, "offset at the end of the file");
		r[0].offset = 0x1000;
		mem_refused(s, r, 1, fds, 1, "region runs past the end of the file");
	} else if (!strcmp(name, "mem-pipe")) {
		int p[2];

		expect_log("SET_MEM_TABLE refused: region .* not shared memory");
		if (pipe(p) < 0)
			fail("pipe");
		mem_refused(s, r, 1, &p[0], 1, "a pipe");
		fds[0] = eventfd_or_die();
		mem_refused(s, r, 1, fds, 1, "an eventfd");
	} else if (!strcmp(name, "mem-fds")) {
		expect_log("memory table of 2 regions with 1 fds");
		r[1].gpa = GPA0 + MEM_LEN;
		r[1].uva = UVA0 + MEM_LEN;
		mem_refused(s, r, 2, fds, 1, "2 regions, 1 fd");
	} else {
		fail("unknown scenario %s", name);
	}
	/* the device still has no memory: rings cannot start */
	must_refuse(s, SET_VRING_ADDR, &(struct addr_msg){ .index = 0 }, sizeof(struct addr_msg),
		    NULL, 0, "SET_VRING_ADDR without a memory table");
}

/* Ring addresses the memory table does not cover: accepted as numbers,
 * but the ring must never run. */
static void sc_ring(const char *path, const char *name)
{
	struct hs *s = proto(path, true);
	struct addr_msg a = ring_addr(TXQ);

	if (!strcmp(name, "ring-oob")) {
		expect_log("queue 1: ring .* not inside guest memory");
		a.desc = UVA0 + MEM_LEN + 0x10000;
	} else if (!strcmp(name, "ring-misaligned")) {
		expect_log("queue 1: misaligned ring address");
		a.desc += 8;
	} else if (!strcmp(name, "ring-cross")) {
		expect_log("queue 1: ring .* not inside guest memory");
		a.used = UVA0 + MEM_LEN - 100;
	} else if (!strcmp(name, "ring-gpa")) {
		/* guest physical addresses where the spec wants the frontend's
		 * virtual ones */
		expect_log("queue 1: ring .* not inside guest memory");
		a.desc = GPA0 + qbase(TXQ);
	} else {
		fail("unknown scenario %s", name);
	}
	hs_ring_parts(s, TXQ, &a);
	hs_ring_start(s, TXQ);
	set_desc(s, 0, frame(s, 0), HDR_LEN + FRAME_LEN, 0, 0);
	split_post(s, 0);
	expect_not_served(s, name);
}

static void sc_queue_range(const char *path)
{
	struct hs *s = proto(path, true);
	uint64_t v = 200;
	int e = eventfd_or_die();

	expect_log("SET_VRING_NUM refused: queue 65536, the device has 2");
	must_refuse(s, SET_VRING_NUM, &(struct state){ 0x10000, 256 }, 8, NULL, 0, "queue 0x10000");
	must_refuse(s, SET_VRING_NUM, &(struct state){ 2, 256 }, 8, NULL, 0, "queue 2");
	must_refuse(s, SET_VRING_BASE, &(struct state){ 0xffffffff, 0 }, 8, NULL, 0, "queue ~0");
	must_refuse(s, SET_VRING_CALL, &v, 8, &e, 1, "call for queue 200");
	v = 0x10000ull; /* a bit above the index and no-fd bits */
	must_refuse(s, SET_VRING_CALL, &v, 8, &e, 1, "call with bit 16");
	struct addr_msg a = ring_addr(0);

	a.index = 0x10001;
	must_refuse(s, SET_VRING_ADDR, &a, sizeof(a), NULL, 0, "addr for queue 0x10001");
	must_refuse(s, SET_VRING_ENABLE, &(struct state){ 7, 1 }, 8, NULL, 0, "enable queue 7");
}

static void sc_num(const char *path, const char *name)
{
	struct hs *s = proto(path, true);
	uint32_t n = !strcmp(name, "num-0") ? 0 : !strcmp(name, "num-npot") ? 100 : 65536;
	char re[64];

	snprintf(re, sizeof(re), "queue 1: bad ring size %u", n);
	expect_log(re);
	must_refuse(s, SET_VRING_NUM, &(struct state){ TXQ, n }, 8, NULL, 0, re);
	if (n == 65536)
		must_refuse(s, SET_VRING_NUM, &(struct state){ TXQ, 32769 }, 8, NULL, 0, "32769");
}

static void sc_base(const char *path, const char *name)
{
	struct hs *s = &S;
	bool pk = !strcmp(name, "base-packed");

	hs_open(s, path);
	hs_memory(s, 0);
	hs_hello(s, pk ? F_PACKED : 0, 0);
	if (pk && !s->packed)
		fail("RING_PACKED not offered");
	hs_mem(s);
	expect_log(pk ? "packed base 0x[0-9a-f]+ beyond size 256" : "split base 0x10000 beyond 16 bits");
	must_ack(s, SET_VRING_NUM, &(struct state){ TXQ, QSIZE }, 8, NULL, 0, "SET_VRING_NUM");
	if (pk) {
		must_refuse(s, SET_VRING_BASE, &(struct state){ TXQ, 0x8000 | 300 }, 8, NULL, 0,
			    "avail index 300 of 256");
		must_refuse(s, SET_VRING_BASE, &(struct state){ TXQ, 0x8000 | (300u << 16) }, 8,
			    NULL, 0, "used index 300 of 256");
	} else {
		must_refuse(s, SET_VRING_BASE, &(struct state){ TXQ, 0x10000 }, 8, NULL, 0,
			    "base 0x10000");
	}
}

/* Kick and call fds that are not eventfds. A call fd the device writes
 * into and the frontend never drains (a pipe) must not stall the worker
 * that also serves the healthy ports. */
static void sc_notify_fd(const char *path, const char *name)
{
	struct hs *s = proto(path, true);
	bool call = !strcmp(name, "call-pipe");
	struct addr_msg a = ring_addr(TXQ);
	uint64_t v = TXQ;
	int p[2], r;

	expect_log(call ? "SET_VRING_CALL.*not an eventfd" : "SET_VRING_KICK.*not an eventfd");
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("pipe");
	/* one page: full after 512 notifications */
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	hs_ring_parts(s, TXQ, &a);
	r = ack(s, call ? SET_VRING_CALL : SET_VRING_KICK, &v, 8, &p[call ? 1 : 0], 1);
	if (r == 1) {
		printf("%s: refused\n", name);
		return;
	}
	if (r != 0)
		fail("%s: %s", name, strerror(-r));
	/* accepted: then it must work without stalling anyone */
	if (call) {
		s->kick[TXQ] = eventfd_or_die();
		must_ack(s, SET_VRING_KICK, &v, 8, &s->kick[TXQ], 1, "SET_VRING_KICK");
	} else {
		s->call[TXQ] = eventfd_or_die();
		must_ack(s, SET_VRING_CALL, &v, 8, &s->call[TXQ], 1, "SET_VRING_CALL");
		s->kick[TXQ] = p[1];
	}
	must_ack(s, SET_VRING_ENABLE, &(struct state){ TXQ, 1 }, 8, NULL, 0, "SET_VRING_ENABLE");
	for (unsigned i = 0; i < 1500; i++)
		tx_good(s, i % 64);
	printf("%s: accepted, and 1500 packets went through\n", name);
}

static void sc_inflight(const char *path)
{
	struct hs *s = &S;
	struct inflight_msg in = { .num_queues = 2, .queue_size = QSIZE }, bad;
	struct vfront_msg m;
	int fd;

	expect_log("inflight region");
	hs_open(s, path);
	hs_memory(s, 0);
	hs_hello(s, F_MRG_RXBUF, PF_INFLIGHT);
	if (send_req(s, GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0) < 0 ||
	    vfront_recv(s->fd, &m, VFRONT_TIMEOUT_MS) < 0)
		fail("GET_INFLIGHT_FD: no reply");
	if (m.nfds != 1 || m.size != sizeof(in))
		fail("GET_INFLIGHT_FD: %u fds, %u bytes", m.nfds, m.size);
	fd = m.fds[0];
	memcpy(&in, m.p.bytes, sizeof(in));
	bad = in;
	bad.mmap_size += 4096;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &fd, 1, "region beyond its file");
	bad = in;
	bad.num_queues = 100;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &fd, 1, "100 queues");
	bad = in;
	bad.queue_size = 0;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &fd, 1, "queue size 0");
	bad = in;
	bad.queue_size = 40000;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &fd, 1, "queue size 40000");
	bad = in;
	bad.mmap_size = 64;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &fd, 1, "64 bytes");
	bad = in;
	bad.mmap_offset = 0xfffffffffffff000ull;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &fd, 1, "offset wraps");
	bad = in;
	must_refuse(s, SET_INFLIGHT_FD, &bad, sizeof(bad), &s->memfd, 0, "no fd");
	close(fd);
}

static void sc_order(const char *path)
{
	struct hs *s = proto(path, false);
	uint64_t v = TXQ;
	int e = eventfd_or_die();
	struct state st = { TXQ, 0 };
	struct addr_msg a = ring_addr(TXQ);

	expect_log("queue 1: kick before size and addresses");
	must_refuse(s, SET_VRING_ADDR, &a, sizeof(a), NULL, 0, "SET_VRING_ADDR before memory");
	hs_mem(s);
	must_refuse(s, SET_VRING_KICK, &v, 8, &e, 1, "SET_VRING_KICK before NUM and ADDR");
	must_refuse(s, SET_OWNER, NULL, 0, NULL, 0, "a second SET_OWNER");
	must_refuse(s, SET_VRING_ENABLE, &(struct state){ TXQ, 5 }, 8, NULL, 0, "ENABLE 5");
	for (int i = 0; i < 2; i++) {
		struct vfront_msg m;

		if (send_req(s, GET_VRING_BASE, &st, sizeof(st), NULL, 0) < 0 ||
		    vfront_recv(s->fd, &m, VFRONT_TIMEOUT_MS) < 0 || m.request != GET_VRING_BASE)
			fail("GET_VRING_BASE on an idle ring, time %d: no reply", i + 1);
	}
	/* a started ring whose size changes under it: refused while started */
	hs_ring(s, TXQ);
	tx_good(s, 0);
	must_refuse(s, SET_VRING_NUM, &(struct state){ TXQ, 64 }, 8, NULL, 0,
		    "SET_VRING_NUM on a started ring");
	u64_ack(s, SET_FEATURES, s->features, "the same features again");
	v = s->features | F_INDIRECT;
	must_refuse(s, SET_FEATURES, &v, 8, NULL, 0, "other features while started");
	tx_good(s, 1);
}

/* Requests whose replies are never read: the backend must not block on
 * its replies (it serves every other port from the same thread). */
static void sc_noread(const char *path)
{
	uint32_t h[3] = { GET_FEATURES, 1, 0 };
	int64_t end;
	unsigned sent = 0;

	expect_log("does not read its replies");
	hs_open(&S, path);
	end = now_ms() + 8000;
	while (now_ms() < end) {
		ssize_t n = send(S.fd, h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			break;
		if (n < 0 && errno == EAGAIN) {
			poll(NULL, 0, 1);
			continue;
		}
		if (n != (ssize_t)sizeof(h))
			fail("send: %s", strerror(errno));
		sent++;
	}
	if (now_ms() >= end)
		fail("still connected after %u unread requests", sent);
	printf("dropped after %u unread requests\n", sent);
}

/* 200 connections in a row, each left at a different point. */
static void sc_storm(const char *path)
{
	expect_log("frontend disconnected");
	for (int i = 0; i < 200; i++) {
		uint32_t h[3] = { SET_MEM_TABLE, 1, 40 };

		hs_open(&S, path);
		switch (i % 4) {
		case 0:
			break;
		case 1:
			/* the switch may have refused us already (its previous
			 * session not yet closed on its side): errors are fine */
			send(S.fd, h, 7, MSG_NOSIGNAL);
			break;
		case 2:
			vfront_send(S.fd, SET_OWNER, 0, NULL, 0, NULL, 0);
			vfront_send(S.fd, GET_FEATURES, 0, NULL, 0, NULL, 0);
			break;
		case 3:
			hs_memory(&S, 0);
			vfront_send(S.fd, SET_OWNER, 0, NULL, 0, NULL, 0);
			{
				struct { uint32_t n, pad; struct region r; } t = { 1, 0, hs_region() };

				vfront_send(S.fd, SET_MEM_TABLE, 0, &t, sizeof(t), &S.memfd, 1);
			}
			munmap(S.mem, MEM_LEN);
			close(S.memfd);
			break;
		}
		hs_close(&S);
	}
	printf("200 connections\n");
}

static void sc_second(const char *path)
{
	struct hs *s = proto(path, false);
	int fd2;
	uint64_t f;

	expect_log("a second frontend while one is connected, refused");
	fd2 = vfront_connect(path, 2000);
	if (fd2 < 0)
		fail("second connect: %s", strerror(-fd2));
	if (!vfront_closed(fd2, VFRONT_TIMEOUT_MS))
		fail("the second frontend was not refused");
	if (vfront_get_u64(s->fd, GET_FEATURES, &f) < 0)
		fail("the first frontend lost its session");
	close(fd2);
}

/* A new memory table that no longer holds the running rings. */
static void sc_mem_shrink(const char *path)
{
	struct hs *s = &S;
	struct region r = hs_region();

	expect_log("queue 1: ring .* not inside guest memory");
	hs_setup(s, path, F_MRG_RXBUF, 0);
	tx_good(s, 0);
	r.gpa += BUF_OFF;
	r.uva += BUF_OFF;
	r.offset = BUF_OFF;
	r.size -= BUF_OFF;
	if (mem_table(s, &r, 1, &s->memfd, 1) != 0)
		fail("the smaller table was refused");
	set_desc(s, 1, frame(s, 1), HDR_LEN + FRAME_LEN, 0, 0);
	split_post(s, 1);
	expect_not_served(s, "rings outside the new table");
}

/* Memory slots (ADD/REM_MEM_REG) under a running queue: an overlapping
 * region and a removal of nothing are refused; removing the region that
 * holds the running rings stops them. */
static void sc_memslots(const char *path)
{
	struct hs *s = &S;
	struct { uint64_t pad; struct region r; } m = { 0, hs_region() };
	int fd2 = memfd_create("vre-hostile-slot", MFD_CLOEXEC);

	expect_log("overlaps or does not fit");
	if (fd2 < 0 || ftruncate(fd2, 0x10000) < 0)
		fail("memfd");
	hs_open(s, path);
	hs_memory(s, 0);
	hs_hello(s, F_MRG_RXBUF, PF_MEM_SLOTS);
	hs_mem(s);
	hs_ring(s, 0);
	hs_ring(s, TXQ);
	tx_good(s, 0);
	m.r.gpa += 0x1000;
	m.r.uva += MEM_LEN * 4;
	m.r.size = 0x10000;
	must_refuse(s, ADD_MEM_REG, &m, sizeof(m), &fd2, 1, "an overlapping slot");
	m.r = (struct region){ GPA0 + 8 * MEM_LEN, 0x10000, UVA0 + 8 * MEM_LEN, 0x1000 };
	must_refuse(s, ADD_MEM_REG, &m, sizeof(m), &fd2, 1, "a slot beyond its file");
	must_refuse(s, ADD_MEM_REG, &m, sizeof(m), NULL, 0, "a slot without fd");
	must_refuse(s, REM_MEM_REG, &m, sizeof(m), NULL, 0, "removing a slot never added");
	tx_good(s, 1); /* refused slots changed nothing */
	m.r = hs_region();
	must_ack(s, REM_MEM_REG, &m, sizeof(m), NULL, 0, "removing the ring's region");
	close(fd2);
	/* the queue stopped: a packet posted now stays pending */
	set_desc(s, 2, frame(s, 2), HDR_LEN + FRAME_LEN, 0, 0);
	split_post(s, 2);
	if (split_wait_used(s, 1, WAIT_MS))
		fail("a ring outside guest memory was served");
	printf("memslots: the ring's region removed under the running queue\n");
}

/* RESET_DEVICE with the queues running, then a ring that was never set
 * up again is kicked. */
static void sc_reset_running(const char *path)
{
	struct hs *s = &S;
	struct state st = { TXQ, 0 };

	expect_log("frontend disconnected");
	hs_open(s, path);
	hs_memory(s, 0);
	hs_hello(s, F_MRG_RXBUF, PF_RESET_DEVICE);
	hs_mem(s);
	hs_ring(s, 0);
	hs_ring(s, TXQ);
	tx_good(s, 0);
	must_ack(s, RESET_DEVICE, NULL, 0, NULL, 0, "RESET_DEVICE");
	set_desc(s, 1, frame(s, 1), HDR_LEN + FRAME_LEN, 0, 0);
	split_post(s, 1);
	if (split_wait_used(s, 1, WAIT_MS))
		fail("a reset device served its old ring");
	/* its rings are gone: a ring fd needs size and addresses again */
	must_refuse(s, SET_VRING_KICK, &(uint64_t){ TXQ }, 8, &s->kick[TXQ], 1,
		    "kick after reset");
	(void)st;
}

/* Config space accesses out of bounds. */
static void sc_config(const char *path)
{
	struct hs *s = &S;
	struct { uint32_t off, size, flags; uint8_t data[256]; } c = { 0 };
	struct vfront_msg m;

	expect_log("config access of");
	hs_open(s, path);
	hs_memory(s, 0);
	hs_hello(s, F_MRG_RXBUF, PF_CONFIG);
	c.off = 0xfffffff0;
	c.size = 0x20;
	must_refuse(s, SET_CONFIG, &c, 12 + 32, NULL, 0, "SET_CONFIG offset + size wraps");
	c.off = 0;
	c.size = 200;
	must_refuse(s, SET_CONFIG, &c, 12 + 4, NULL, 0, "SET_CONFIG size beyond its payload");
	c.size = 0x1000;
	if (send_req(s, GET_CONFIG, &c, 12 + 8, NULL, 0) < 0 ||
	    vfront_recv(s->fd, &m, VFRONT_TIMEOUT_MS) < 0)
		fail("GET_CONFIG: no reply");
	if (m.size != 12 || m.p.bytes[4] || m.p.bytes[5])
		fail("GET_CONFIG of 4096 bytes: reply of %u bytes, size %u", m.size,
		     (unsigned)m.p.bytes[4] | (unsigned)m.p.bytes[5] << 8);
	printf("GET_CONFIG of 4096 bytes: failure reply (size 0)\n");
}

/* The guest memory file shrinks under a running queue (no seals could be
 * set: the memfd was made without MFD_ALLOW_SEALING). control/fault.c
 * contains the SIGBUS, breaks the queues and drops the connection. */
static void sc_truncate(const char *path)
{
	struct hs *s = &S;

	expect_log("vanished under the running device");
	hs_setup(s, path, F_MRG_RXBUF, 0);
	tx_good(s, 0);
	if (ftruncate(s->memfd, 0) < 0)
		fail("ftruncate: %s", strerror(errno));
	/* our own view is gone too: only the kick from here on */
	kick(s);
	poll(NULL, 0, WAIT_MS);
	control_alive(s, "truncated guest memory");
	printf("truncate: the control thread answers\n");
}

/* The same with a sealable memfd: the switch sealed it against shrinking
 * when it took the memory table, so the truncation itself fails and the
 * queue runs on. */
static void sc_truncate_sealed(const char *path)
{
	struct hs *s = &S;

	expect_log("frontend disconnected");
	hs_setup(s, path, F_MRG_RXBUF, MFD_ALLOW_SEALING);
	tx_good(s, 0);
	if (ftruncate(s->memfd, 0) == 0)
		fail("guest memory shrank under the switch: no F_SEAL_SHRINK");
	if (errno != EPERM)
		fail("ftruncate: %s (want EPERM)", strerror(errno));
	tx_good(s, 1);
	printf("truncate-sealed: refused by the seal, the queue runs on\n");
}

/* The inflight region the switch hands out (its own memfd) cannot be
 * shrunk by the frontend either. */
static void sc_truncate_inflight(const char *path)
{
	struct hs *s = &S;
	struct inflight_msg in = { .num_queues = 2, .queue_size = QSIZE };
	struct vfront_msg m;

	expect_log("frontend disconnected");
	hs_open(s, path);
	hs_memory(s, MFD_ALLOW_SEALING);
	hs_hello(s, F_MRG_RXBUF, PF_INFLIGHT);
	if (send_req(s, GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0) < 0 ||
	    vfront_recv(s->fd, &m, VFRONT_TIMEOUT_MS) < 0 || m.nfds != 1)
		fail("GET_INFLIGHT_FD: no region");
	if (ftruncate(m.fds[0], 0) == 0)
		fail("the inflight region shrank: no F_SEAL_SHRINK");
	if (errno != EPERM)
		fail("ftruncate: %s (want EPERM)", strerror(errno));
	close(m.fds[0]);
	printf("truncate-inflight: refused by the seal\n");
}

/* ---- dirty logging (live migration) --------------------------------- */

#define F_LOG_ALL (1ull << 26)
#define ADDR_F_LOG 1u
/* bytes of log that cover guest memory up to GPA0 + MEM_LEN */
#define LOG_NEED ((GPA0 + MEM_LEN) / 4096 / 8)

struct log_msg { uint64_t size, offset; };

/* SET_LOG_BASE (LOG_SHMFD negotiated: always replied, u64 0 or 1). */
static int log_base(struct hs *s, int fd, uint64_t size, uint64_t offset)
{
	struct log_msg l = { size, offset };

	return ack(s, SET_LOG_BASE, &l, sizeof(l), &fd, 1);
}

static int log_memfd(uint64_t len, unsigned flags)
{
	int fd = memfd_create("vre-hostile-log", MFD_CLOEXEC | flags);

	if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
		fail("log memfd: %s", strerror(errno));
	return fd;
}

/* Up to running queues with LOG_SHMFD negotiated. */
static void log_setup(struct hs *s, const char *path, unsigned memfd_flags)
{
	hs_open(s, path);
	hs_memory(s, memfd_flags);
	hs_hello(s, F_MRG_RXBUF, PF_LOG_SHMFD);
	hs_mem(s);
	hs_ring(s, 0);
	hs_ring(s, TXQ);
}

/* Logging on, as QEMU does it: features with LOG_ALL, then every ring's
 * address again with the log flag and its used ring's GPA. */
/* SET_FEATURES with or without LOG_ALL, the rings' addresses untouched. */
static int log_all(struct hs *s, bool on)
{
	uint64_t f = on ? s->features | F_LOG_ALL : s->features;

	return ack(s, SET_FEATURES, &f, 8, NULL, 0);
}

static int log_on(struct hs *s, bool on)
{
	int r = log_all(s, on);

	for (uint32_t q = 0; q < 2 && r == 0; q++) {
		struct addr_msg a = ring_addr(q);

		a.flags = on ? ADDR_F_LOG : 0;
		a.log = GPA0 + qbase(q) + USED_OFF;
		r = ack(s, SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	}
	return r;
}

/* Logs that cannot be used are refused, and logging cannot start
 * without one; the port still forwards. */
static void sc_log_bad(const char *path, const char *name)
{
	struct hs *s = &S;
	int fd = -1, r;

	log_setup(s, path, MFD_ALLOW_SEALING);
	if (!strcmp(name, "log-small")) {
		expect_log("SET_LOG_BASE refused: dirty log of .* too small for memory");
		fd = log_memfd(4096, 0);
		r = log_base(s, fd, 4096, 0);
	} else if (!strcmp(name, "log-beyond-file")) {
		expect_log("SET_LOG_BASE refused: log of .* beyond its file");
		fd = log_memfd(4096, 0);
		r = log_base(s, fd, LOG_NEED, 0);
	} else if (!strcmp(name, "log-pipe")) {
		int p[2];

		expect_log("SET_LOG_BASE refused: log fd not shared memory");
		if (pipe(p) < 0)
			fail("pipe: %s", strerror(errno));
		r = log_base(s, p[0], LOG_NEED, 0);
		close(p[0]);
		close(p[1]);
	} else if (!strcmp(name, "log-file")) {
		char tmpl[] = "/var/tmp/vre-hostile-log.XXXXXX";

		expect_log("SET_LOG_BASE refused: log fd not shared memory");
		fd = mkstemp(tmpl);
		if (fd < 0 || ftruncate(fd, LOG_NEED) < 0)
			fail("log file: %s", strerror(errno));
		unlink(tmpl);
		r = log_base(s, fd, LOG_NEED, 0);
	} else { /* log-offset */
		expect_log("SET_LOG_BASE refused: log size .* offset .* wraps");
		fd = log_memfd(LOG_NEED, 0);
		r = log_base(s, fd, LOG_NEED, UINT64_MAX - 100);
		if (r == 1)
			r = log_base(s, fd, LOG_NEED, 1ull << 62);
	}
	if (fd >= 0)
		close(fd);
	if (r != 1)
		fail("%s: SET_LOG_BASE answered %d, want a failure (1)", name, r);
	if (log_on(s, true) != 1)
		fail("%s: LOG_ALL accepted without a usable log", name);
	tx_good(s, 0);
	printf("%s: refused, LOG_ALL refused, the queue runs on\n", name);
}

/* SET_LOG_BASE before any memory table: nothing to check it against yet;
 * a memory table it does not cover is then refused. */
static void sc_log_before_mem(const char *path)
{
	struct hs *s = &S;
	struct region r = hs_region();
	int fd = log_memfd(4096, 0);

	expect_log("SET_MEM_TABLE refused: dirty log of .* too small for memory");
	hs_open(s, path);
	hs_memory(s, MFD_ALLOW_SEALING);
	hs_hello(s, F_MRG_RXBUF, PF_LOG_SHMFD);
	if (log_base(s, fd, 4096, 0) != 0)
		fail("SET_LOG_BASE before the memory table refused");
	if (mem_table(s, &r, 1, &s->memfd, 1) != 1)
		fail("a memory table beyond the log was accepted");
	/* a log that covers it, then the table */
	close(fd);
	fd = log_memfd(LOG_NEED, 0);
	if (log_base(s, fd, LOG_NEED, 0) != 0)
		fail("a log covering the memory was refused");
	close(fd);
	hs_mem(s);
	hs_ring(s, 0);
	hs_ring(s, TXQ);
	if (log_on(s, true) != 0)
		fail("LOG_ALL refused with a good log");
	tx_good(s, 0);
	printf("log-before-mem: table beyond the log refused, then logging works\n");
}

/* LOG_ALL on and off 40 times while packets flow: every packet completes,
 * and the TX used ring's page is marked while logging is on. */
static void sc_log_toggle(const char *path)
{
	struct hs *s = &S;
	int fd = log_memfd(LOG_NEED, MFD_ALLOW_SEALING);
	uint64_t *bits;
	uint64_t page = (GPA0 + qbase(TXQ) + USED_OFF) / 4096;

	expect_log("dirty logging off");
	log_setup(s, path, MFD_ALLOW_SEALING);
	bits = mmap(NULL, LOG_NEED, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bits == MAP_FAILED)
		fail("mmap log: %s", strerror(errno));
	if (log_base(s, fd, LOG_NEED, 0) != 0)
		fail("SET_LOG_BASE refused");
	for (unsigned i = 0; i < 40; i++) {
		if (log_on(s, true) != 0)
			fail("LOG_ALL on refused (round %u)", i);
		__atomic_fetch_and(&bits[page / 64], ~(1ull << (page % 64)), __ATOMIC_SEQ_CST);
		tx_good(s, 2 * i);
		if (!(__atomic_load_n(&bits[page / 64], __ATOMIC_SEQ_CST) & (1ull << (page % 64))))
			fail("round %u: the used ring's page was not marked", i);
		/* odd rounds as QEMU turns it off (features, then every
		 * ring without the log flag); even rounds LOG_ALL alone,
		 * the rings still flagged: LOG_ALL off is what stops it */
		if ((i % 2 ? log_on(s, false) : log_all(s, false)) != 0)
			fail("LOG_ALL off refused (round %u)", i);
		__atomic_fetch_and(&bits[page / 64], ~(1ull << (page % 64)), __ATOMIC_SEQ_CST);
		tx_good(s, 2 * i + 1);
		if (__atomic_load_n(&bits[page / 64], __ATOMIC_SEQ_CST) & (1ull << (page % 64)))
			fail("round %u: marked with logging off", i);
	}
	munmap(bits, LOG_NEED);
	close(fd);
	printf("log-toggle: 40 rounds on/off under traffic, marks only while on\n");
}

/* The log file shrunk under a logging device (not sealable): the SIGBUS
 * containment drops this connection only. */
static void sc_log_truncate(const char *path)
{
	struct hs *s = &S;
	int fd = log_memfd(LOG_NEED, 0); /* no MFD_ALLOW_SEALING: cannot be sealed */

	expect_log("vanished under the running device");
	log_setup(s, path, MFD_ALLOW_SEALING);
	if (log_base(s, fd, LOG_NEED, 0) != 0)
		fail("SET_LOG_BASE refused");
	if (log_on(s, true) != 0)
		fail("LOG_ALL refused");
	tx_good(s, 0);
	if (ftruncate(fd, 0) < 0)
		fail("ftruncate log: %s", strerror(errno));
	/* the next completion marks the log: the page is gone */
	{
		struct vre_desc *d = &sdesc(s)[1];

		d->addr = frame(s, 1);
		d->len = HDR_LEN + FRAME_LEN;
		d->flags = 0;
		split_post(s, 1);
	}
	/* the worker's mark faults; the containment drops this connection
	 * (its reads end): waited for, bounded, instead of a fixed sleep */
	{
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		char c;

		if (poll(&p, 1, ALIVE_MS) <= 0 || recv(s->fd, &c, 1, MSG_DONTWAIT) > 0)
			fail("log-truncate: the connection was not dropped within %d ms", ALIVE_MS);
	}
	close(fd);
	printf("log-truncate: the connection was dropped\n");
}

/* A well-behaved session: packets through the TX queue, both rings. */
static void sc_good(const char *path, const char *name)
{
	struct hs *s = &S;
	bool pk = !strcmp(name, "good-packed");

	expect_log("frontend disconnected");
	hs_setup(s, path, (pk ? F_PACKED : 0) | F_MRG_RXBUF | F_INDIRECT, MFD_ALLOW_SEALING);
	if (pk && !s->packed)
		fail("RING_PACKED not offered");
	for (unsigned i = 0; i < 300; i++)
		tx_good(s, i % 64);
	printf("%s: 300 packets completed\n", name);
}

/* ---- isolation: nothing a frontend does may hold a shared thread ------ */

struct clearer {
	int fd;
	volatile bool stop;
};

static void *clear_nonblock(void *arg)
{
	struct clearer *c = arg;

	while (!c->stop)
		fcntl(c->fd, F_SETFL, 0);
	return NULL;
}

/* The TX queue's call eventfd with its counter full. Non-blocking (as the
 * switch leaves it): notifications are counted as saturated, the queue
 * runs on. Blocking: a thread of ours keeps clearing the O_NONBLOCK the
 * switch set while the device completes packets and notifies; the worker
 * that also serves the healthy ports must not block, and the switch drops
 * this connection. */
static void sc_call_full(const char *path, const char *name)
{
	struct hs *s = &S;
	bool blocking = !strcmp(name, "call-blocking");
	uint64_t full = 0xfffffffffffffffeull;
	struct clearer c = { 0 };
	pthread_t t;
	int64_t t0;

	expect_log(blocking ? "a notification blocked on the frontend's call eventfd" :
		   "frontend disconnected");
	hs_setup(s, path, F_MRG_RXBUF, 0);
	tx_good(s, 0);
	if (!(fcntl(s->call[TXQ], F_GETFL) & O_NONBLOCK))
		fail("the call eventfd was not made non-blocking");
	/* the device may have notified already: take what is there, fill */
	for (int i = 0; write(s->call[TXQ], &full, 8) != 8; i++) {
		uint64_t v;

		if (errno != EAGAIN || i == 100)
			fail("filling the call counter: %s", strerror(errno));
		if (read(s->call[TXQ], &v, 8) < 0 && errno != EAGAIN)
			fail("reading the call counter: %s", strerror(errno));
	}
	if (!blocking) {
		for (unsigned i = 1; i <= 100; i++)
			tx_good(s, i % 64);
		printf("call-full: 100 packets completed with the call counter full\n");
		return;
	}
	c.fd = s->call[TXQ];
	if (pthread_create(&t, NULL, clear_nonblock, &c) != 0)
		fail("pthread_create");
	while (fcntl(c.fd, F_GETFL) & O_NONBLOCK)
		;
	t0 = now_ms();
	for (uint16_t i = 1; i <= 4; i++) {
		set_desc(s, i, frame(s, i), HDR_LEN + FRAME_LEN, 0, 0);
		split_post(s, i);
	}
	if (!vfront_closed(s->fd, 5000))
		fail("still connected 5 s after its blocking call eventfd was written");
	c.stop = true;
	pthread_join(t, NULL);
	printf("call-blocking: connection dropped after %lld ms\n", (long long)(now_ms() - t0));
}

/* A regular file on a disk file system near path (not tmpfs), or -1. */
static int disk_file(const char *path)
{
	char dirs[3][256], p[300];
	const char *d;
	struct statfs sf;

	snprintf(dirs[0], sizeof(dirs[0]), "/var/tmp");
	snprintf(dirs[1], sizeof(dirs[1]), "%s", path);
	*(strrchr(dirs[1], '/') ? strrchr(dirs[1], '/') : dirs[1]) = '\0';
	snprintf(dirs[2], sizeof(dirs[2]), ".");
	for (int i = 0; i < 3; i++) {
		int fd;

		if (statfs(dirs[i][0] ? dirs[i] : "/", &sf) < 0 || sf.f_type == TMPFS_MAGIC ||
		    sf.f_type == HUGETLBFS_MAGIC)
			continue;
		d = dirs[i][0] ? dirs[i] : "/";
		if (strlen(d) > sizeof(p) - 24)
			continue;
		snprintf(p, sizeof(p), "%.*s/vre-hostile-XXXXXX", (int)(sizeof(p) - 24), d);
		fd = mkstemp(p);
		if (fd < 0)
			continue;
		unlink(p);
		if (ftruncate(fd, MEM_LEN) == 0)
			return fd;
		close(fd);
	}
	return -1;
}

/* Guest memory and an inflight region on files that are not shared
 * memory: a file on disk (a FUSE or NFS file would be one the frontend
 * can stall), a procfs file. Refused before anything asks their file
 * system; the memfd is still taken afterwards. */
static void sc_mem_disk(const char *path)
{
	struct hs *s = &S;
	struct region r = hs_region();
	struct inflight_msg in = { .mmap_size = 0x10000, .num_queues = 2, .queue_size = QSIZE };
	int disk, procfd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	expect_log("SET_MEM_TABLE refused: region .* fd not shared memory");
	hs_open(s, path);
	hs_memory(s, 0);
	hs_hello(s, F_MRG_RXBUF, PF_INFLIGHT);
	disk = disk_file(path);
	if (disk >= 0) {
		mem_refused(s, &r, 1, &disk, 1, "a file on disk");
		must_refuse(s, SET_INFLIGHT_FD, &in, sizeof(in), &disk, 1,
			    "an inflight region on disk");
		close(disk);
	} else {
		printf("note: no disk file system here, only procfs checked\n");
	}
	if (procfd < 0)
		fail("open /proc/self/cmdline");
	mem_refused(s, &r, 1, &procfd, 1, "a procfs file");
	close(procfd);
	hs_mem(s);
	printf("mem-disk: refused, then the memfd taken\n");
}

/* Part of a header, or a header whose payload never comes: the switch
 * drops the connection after its bound (5 s by default), and the port
 * takes the next frontend. */
static void sc_stall(const char *path, const char *name)
{
	uint32_t h[3] = { SET_MEM_TABLE, 1, 40 };
	bool part = !strcmp(name, "stall-header");
	int64_t t0;
	uint64_t f;
	int fd2;

	expect_log("stopped in the middle of a message");
	hs_open(&S, path);
	if (vfront_get_u64(S.fd, GET_FEATURES, &f) < 0)
		fail("GET_FEATURES: no reply");
	send_bytes(S.fd, h, part ? 7 : sizeof(h), NULL, 0);
	t0 = now_ms();
	if (!vfront_closed(S.fd, 12000))
		fail("%s: still connected after 12 s", name);
	printf("%s: dropped after %lld ms\n", name, (long long)(now_ms() - t0));
	hs_close(&S);
	fd2 = vfront_connect(path, 2000);
	if (fd2 < 0 || vfront_get_u64(fd2, GET_FEATURES, &f) < 0)
		fail("the next frontend was not served");
	close(fd2);
}

/* A complete, silent connection is an idle frontend: it stays past the
 * bound. */
static void sc_stall_idle(const char *path)
{
	struct hs *s = proto(path, true);
	uint64_t f;

	expect_log("frontend disconnected");
	if (!vfront_quiet(s->fd, 6500))
		fail("an idle frontend lost its connection");
	if (vfront_get_u64(s->fd, GET_FEATURES, &f) < 0)
		fail("an idle frontend is not served after 6.5 s");
	printf("stall-idle: served after 6.5 s of silence\n");
}

/* A frontend that closes and connects again at once, 1,000 times: each
 * new connection is served, none taken for a second frontend. */
static void sc_reconnect_fast(const char *path)
{
	/* scripts/soak asks for fewer per run */
	const char *env = getenv("HOSTILE_RECONNECTS");
	int n = env ? atoi(env) : 1000;

	expect_log("frontend disconnected");
	for (int i = 0; i < n; i++) {
		int fd = vfront_connect(path, 2000);
		uint64_t f;

		if (fd < 0)
			fail("connect %d: %s", i + 1, strerror(-fd));
		if (vfront_get_u64(fd, GET_FEATURES, &f) < 0)
			fail("connection %d of %d got no answer to GET_FEATURES", i + 1, n);
		close(fd);
	}
	printf("reconnect-fast: %d connections, each answered\n", n);
}

/* ---- main -------------------------------------------------------------- */

struct scenario {
	const char *name;
	void (*fn)(const char *path);
	void (*fn2)(const char *path, const char *name);
};

static const struct scenario scenarios[] = {
	{ "good", NULL, sc_good },
	{ "good-packed", NULL, sc_good },
	{ "hdr-huge", sc_hdr_huge, NULL },
	{ "size-mismatch", sc_size_mismatch, NULL },
	{ "size-always", sc_size_always, NULL },
	{ "truncated-msg", sc_truncated, NULL },
	{ "too-many-fds", sc_too_many_fds, NULL },
	{ "fds-on-nofd", sc_fds_on_nofd, NULL },
	{ "missing-fd", sc_missing_fd, NULL },
	{ "unknown", sc_unknown, NULL },
	{ "before-owner", sc_before_owner, NULL },
	{ "before-features", sc_before_features, NULL },
	{ "bad-features", sc_bad_features, NULL },
	{ "bad-pf", sc_bad_pf, NULL },
	{ "mem-0", NULL, sc_mem },
	{ "mem-many", NULL, sc_mem },
	{ "mem-overlap", NULL, sc_mem },
	{ "mem-size0", NULL, sc_mem },
	{ "mem-wrap", NULL, sc_mem },
	{ "mem-offset", NULL, sc_mem },
	{ "mem-pipe", NULL, sc_mem },
	{ "mem-fds", NULL, sc_mem },
	{ "ring-oob", NULL, sc_ring },
	{ "ring-misaligned", NULL, sc_ring },
	{ "ring-cross", NULL, sc_ring },
	{ "ring-gpa", NULL, sc_ring },
	{ "queue-range", sc_queue_range, NULL },
	{ "num-0", NULL, sc_num },
	{ "num-npot", NULL, sc_num },
	{ "num-huge", NULL, sc_num },
	{ "base-split", NULL, sc_base },
	{ "base-packed", NULL, sc_base },
	{ "kick-pipe", NULL, sc_notify_fd },
	{ "call-pipe", NULL, sc_notify_fd },
	{ "inflight", sc_inflight, NULL },
	{ "order", sc_order, NULL },
	{ "noread", sc_noread, NULL },
	{ "storm", sc_storm, NULL },
	{ "second", sc_second, NULL },
	{ "mem-shrink", sc_mem_shrink, NULL },
	{ "memslots", sc_memslots, NULL },
	{ "reset-running", sc_reset_running, NULL },
	{ "config", sc_config, NULL },
	{ "truncate", sc_truncate, NULL },
	{ "truncate-sealed", sc_truncate_sealed, NULL },
	{ "truncate-inflight", sc_truncate_inflight, NULL },
	{ "g-loop", NULL, guest_split },
	{ "g-next-range", NULL, guest_split },
	{ "g-chain-long", NULL, guest_split },
	{ "g-desc-oob", NULL, guest_split },
	{ "g-desc-straddle", NULL, guest_split },
	{ "g-len-wrap", NULL, guest_split },
	{ "g-ind-len-odd", NULL, guest_split },
	{ "g-ind-len-0", NULL, guest_split },
	{ "g-ind-len-huge", NULL, guest_split },
	{ "g-ind-nested", NULL, guest_split },
	{ "g-ind-next", NULL, guest_split },
	{ "g-ind-oob", NULL, guest_split },
	{ "g-ind-loop", NULL, guest_split },
	{ "g-ind-next-range", NULL, guest_split },
	{ "g-avail-leap", NULL, guest_split },
	{ "g-head-range", NULL, guest_split },
	{ "g-write-read", NULL, guest_split },
	{ "p-id-range", NULL, guest_packed },
	{ "p-chain-open", NULL, guest_packed },
	{ "p-chain-long", NULL, guest_packed },
	{ "p-desc-oob", NULL, guest_packed },
	{ "p-len-wrap", NULL, guest_packed },
	{ "p-ind-len-odd", NULL, guest_packed },
	{ "p-ind-len-0", NULL, guest_packed },
	{ "p-ind-nested", NULL, guest_packed },
	{ "p-ind-next", NULL, guest_packed },
	{ "p-write-read", NULL, guest_packed },
	{ "p-wrap", NULL, guest_packed },
	{ "p-used-flags", NULL, guest_packed },
	{ "call-full", NULL, sc_call_full },
	{ "call-blocking", NULL, sc_call_full },
	{ "mem-disk", sc_mem_disk, NULL },
	{ "stall-header", NULL, sc_stall },
	{ "stall-payload", NULL, sc_stall },
	{ "stall-idle", sc_stall_idle, NULL },
	{ "reconnect-fast", sc_reconnect_fast, NULL },
	{ "log-small", NULL, sc_log_bad },
	{ "log-beyond-file", NULL, sc_log_bad },
	{ "log-pipe", NULL, sc_log_bad },
	{ "log-file", NULL, sc_log_bad },
	{ "log-offset", NULL, sc_log_bad },
	{ "log-before-mem", sc_log_before_mem, NULL },
	{ "log-toggle", sc_log_toggle, NULL },
	{ "log-truncate", sc_log_truncate, NULL },
};

int main(int argc, char **argv)
{
	const size_t n = sizeof(scenarios) / sizeof(scenarios[0]);

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", scenarios[i].name);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: vre-hostile SOCKET SCENARIO | --list\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	alarm(30); /* every wait is bounded; this bounds their sum */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[2], scenarios[i].name))
			continue;
		if (scenarios[i].fn)
			scenarios[i].fn(argv[1]);
		else
			scenarios[i].fn2(argv[1], argv[2]);
		hs_close(&S);
		printf("ok: %s\n", argv[2]);
		return 0;
	}
	fprintf(stderr, "vre-hostile: unknown scenario %s\n", argv[2]);
	return 2;
}
