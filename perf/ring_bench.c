/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * In-process vring microbenchmark: the device side (vre_vq_fetch, a copy of
 * the payload, vre_vq_complete, vre_vq_needs_notify) against a minimal
 * driver written here, over a plain buffer that plays guest memory. No
 * sockets, no threads: what is measured is the ring code and one copy.
 *
 * Per case (ring type x direction x packet size) it prints nanoseconds per
 * packet for the device part (timed per burst) and for the whole loop
 * (device + driver). Instruction counts come from callgrind: perf/ring-bench
 * runs this program under `valgrind --tool=callgrind` and divides the
 * inclusive instructions of the vre_vq_* calls by the packets.
 *
 * The driver checks what comes back (ids it posted, lengths, payload bytes),
 * so a ring that hands out wrong buffers fails the run instead of looking
 * fast.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vre_mem.h"
#include "vre_ring_layout.h"
#include "vre_vq.h"

#define GPA_BASE  0x40000000ull
#define UVA_BASE  0x7f0000000000ull
#define BUF_SIZE  2048u
#define MAX_QSIZE 1024u
#define POOL_LEN  (VRE_BURST * 4)
#define HDR_LEN   12u /* the first descriptor of a two-piece chain */

enum dir { DIR_TX, DIR_RX }; /* TX: guest -> device reads; RX: device writes */

/* How the driver lays out each packet's buffer (-c): one descriptor (the
 * rings' fast paths), two chained descriptors (a 12-byte header, then the
 * rest: the general chain walk), or one indirect descriptor whose table has
 * those two entries (the walk's indirect-table reading). */
enum shape { SHAPE_ONE, SHAPE_TWO, SHAPE_INDIRECT };

struct bench {
	/* "Guest memory": rings then packet buffers, one region. */
	uint8_t *mem;
	size_t mem_len;
	struct vre_mem_map *map;
	uint16_t qsize;
	bool packed;
	enum dir dir;
	enum shape shape;
	uint32_t pkt_len;
	uint64_t tables_gpa; /* SHAPE_INDIRECT: two entries per id */

	/* Driver state. */
	struct vre_desc *desc;
	struct vre_avail *avail;
	struct vre_used_ring *used;
	struct vre_packed_desc *pdesc;
	struct vre_packed_event *pdriver, *pdevice;
	uint16_t avail_idx, used_idx;   /* split: free-running */
	uint16_t next_avail, next_used; /* packed: slots */
	bool avail_wrap, used_wrap;
	uint16_t free_ids[MAX_QSIZE];
	unsigned nfree;
	uint64_t posted, reaped;
	uint64_t drv_sum, dev_sum;      /* payload check (TX) */
	uint64_t bad;                   /* driver-side check failures */

	struct vre_vq vq;
	uint8_t scratch[BUF_SIZE];
};

static uint8_t pattern(uint16_t id) { return (uint8_t)(id * 7u + 1u); }
/* The last byte of an RX packet: differs from the first, so a copy that
 * stops short is seen. */
static uint8_t pattern_end(uint16_t id) { return (uint8_t)(0xffu ^ pattern(id)); }

static uint64_t buf_gpa(const struct bench *b, uint16_t id)
{
	return GPA_BASE + b->mem_len - (uint64_t)b->qsize * BUF_SIZE +
	       (uint64_t)id * BUF_SIZE;
}

static uint8_t *buf_hva(const struct bench *b, uint16_t id)
{
	return b->mem + (buf_gpa(b, id) - GPA_BASE);
}

/* Ids in use: a two-descriptor chain takes two table entries (split) or
 * two slots (packed), so half as many chains fit. */
static uint16_t nids(const struct bench *b)
{
	return b->shape == SHAPE_TWO ? (uint16_t)(b->qsize / 2) : b->qsize;
}

/* The two pieces of id's buffer in a two-piece chain: a header and the
 * rest, adjacent, so the payload is contiguous for the checks. */
static void pieces(const struct bench *b, uint16_t id, uint64_t addr[2], uint32_t len[2])
{
	uint32_t total = b->dir == DIR_RX ? BUF_SIZE : b->pkt_len;

	addr[0] = buf_gpa(b, id);
	len[0] = HDR_LEN;
	addr[1] = addr[0] + HDR_LEN;
	len[1] = total - HDR_LEN;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

static int bench_setup(struct bench *b)
{
	struct vre_vq_params p = { .size = b->qsize, .packed = b->packed,
				   .indirect = b->shape == SHAPE_INDIRECT };
	struct vre_mem_region r = { 0 };
	size_t off = 0, d_off, a_off, u_off;
	int rc;

	d_off = off;
	off = align_up(off + (b->packed ? vre_packed_desc_bytes(b->qsize)
				       : vre_split_desc_bytes(b->qsize)), 64);
	a_off = off;
	off = align_up(off + (b->packed ? VRE_PACKED_EVENT_BYTES
				       : vre_split_avail_bytes(b->qsize)), 64);
	u_off = off;
	off = align_up(off + (b->packed ? VRE_PACKED_EVENT_BYTES
				       : vre_split_used_bytes(b->qsize)), 4096);
	b->tables_gpa = GPA_BASE + off;
	off = align_up(off + 32ull * b->qsize, 4096);
	b->mem_len = off + (size_t)b->qsize * BUF_SIZE;
	b->mem = aligned_alloc(4096, b->mem_len);
	b->map = calloc(1, sizeof(*b->map));
	if (!b->mem || !b->map)
		return -ENOMEM;
	memset(b->mem, 0, b->mem_len);

	vre_mem_map_init(b->map);
	r.gpa = GPA_BASE;
	r.size = b->mem_len;
	r.uva = UVA_BASE;
	r.hva = b->mem;
	r.fd = -1;
	rc = vre_mem_map_add(b->map, &r);
	if (rc)
		return rc;

	if (b->packed) {
		b->pdesc = (void *)(b->mem + d_off);
		b->pdriver = (void *)(b->mem + a_off);
		b->pdevice = (void *)(b->mem + u_off);
		/* The device polls: no interrupts wanted. */
		b->pdriver->flags = VRE_PACKED_EVENT_DISABLE;
		b->avail_wrap = b->used_wrap = true;
		p.desc = b->pdesc;
		p.driver = b->pdriver;
		p.device = b->pdevice;
	} else {
		b->desc = (void *)(b->mem + d_off);
		b->avail = (void *)(b->mem + a_off);
		b->used = (void *)(b->mem + u_off);
		b->avail->flags = VRE_AVAIL_F_NO_INTERRUPT;
		p.desc = b->desc;
		p.driver = b->avail;
		p.device = b->used;
	}
	p.mem = b->map;
	for (unsigned i = 0; i < b->qsize; i++)
		memset(buf_hva(b, (uint16_t)i), pattern((uint16_t)i), BUF_SIZE);
	for (unsigned i = 0; i < nids(b); i++)
		b->free_ids[i] = (uint16_t)(nids(b) - 1 - i);
	b->nfree = nids(b);
	rc = vre_vq_init(&b->vq, &p);
	if (rc == 0)
		vre_vq_notify_disable(&b->vq);
	return rc;
}

static void bench_teardown(struct bench *b)
{
	vre_vq_fini(&b->vq);
	free(b->mem);
	free(b->map);
}

/* The indirect table of id (two entries, a header and the rest); split and
 * packed table entries differ only in where flags sit. */
static uint64_t write_table(struct bench *b, uint16_t id, uint16_t wflag)
{
	uint64_t gpa = b->tables_gpa + 32ull * id, addr[2];
	uint8_t *t = b->mem + (gpa - GPA_BASE);
	uint32_t len[2];

	pieces(b, id, addr, len);
	for (int k = 0; k < 2; k++) {
		if (b->packed) {
			struct vre_packed_desc e = { .addr = addr[k], .len = len[k], .flags = wflag };

			memcpy(t + 16 * k, &e, sizeof(e));
		} else {
			struct vre_desc e = { .addr = addr[k], .len = len[k],
					      .flags = (uint16_t)(wflag | (k ? 0 : VRE_DESC_F_NEXT)),
					      .next = 1 };

			memcpy(t + 16 * k, &e, sizeof(e));
		}
	}
	return gpa;
}

static void split_post_one(struct bench *b, uint16_t id, uint16_t wflag)
{
	struct vre_desc *d = &b->desc[id];
	uint64_t addr[2];
	uint32_t len[2];

	switch (b->shape) {
	case SHAPE_ONE:
		d->addr = buf_gpa(b, id);
		d->len = b->dir == DIR_RX ? BUF_SIZE : b->pkt_len;
		d->flags = wflag;
		d->next = 0;
		break;
	case SHAPE_TWO: {
		uint16_t second = (uint16_t)(id + b->qsize / 2);

		pieces(b, id, addr, len);
		d->addr = addr[0];
		d->len = len[0];
		d->flags = (uint16_t)(wflag | VRE_DESC_F_NEXT);
		d->next = second;
		b->desc[second].addr = addr[1];
		b->desc[second].len = len[1];
		b->desc[second].flags = wflag;
		b->desc[second].next = 0;
		break;
	}
	case SHAPE_INDIRECT:
		d->addr = write_table(b, id, wflag);
		d->len = 32;
		d->flags = VRE_DESC_F_INDIRECT;
		d->next = 0;
		break;
	}
}

/* Packed slots of one chain: bodies and later flags first, the head's flags
 * last (release), as a driver publishes. */
static void packed_post_one(struct bench *b, uint16_t id, uint16_t wflag)
{
	uint16_t head = b->next_avail, n = b->shape == SHAPE_TWO ? 2 : 1, head_flags = 0;
	uint64_t addr[2];
	uint32_t len[2];

	if (b->shape == SHAPE_TWO) {
		pieces(b, id, addr, len);
	} else if (b->shape == SHAPE_INDIRECT) {
		addr[0] = write_table(b, id, wflag);
		len[0] = 32;
	} else {
		addr[0] = buf_gpa(b, id);
		len[0] = b->dir == DIR_RX ? BUF_SIZE : b->pkt_len;
	}
	for (uint16_t k = 0; k < n; k++) {
		struct vre_packed_desc *d = &b->pdesc[b->next_avail];
		uint16_t flags = b->shape == SHAPE_INDIRECT ? VRE_DESC_F_INDIRECT : wflag;

		d->addr = addr[k];
		d->len = len[k];
		d->id = id;
		if (k + 1 < n)
			flags |= VRE_DESC_F_NEXT;
		flags |= b->avail_wrap ? VRE_PACKED_DESC_F_AVAIL : VRE_PACKED_DESC_F_USED;
		if (k == 0)
			head_flags = flags;
		else
			__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
		if (++b->next_avail == b->qsize) {
			b->next_avail = 0;
			b->avail_wrap = !b->avail_wrap;
		}
	}
	__atomic_store_n(&b->pdesc[head].flags, head_flags, __ATOMIC_RELEASE);
}

/* Driver: makes every free buffer available, publishing once per batch. */
static void drv_post(struct bench *b)
{
	uint16_t wflag = b->dir == DIR_RX ? VRE_DESC_F_WRITE : 0;

	if (!b->packed) {
		uint16_t mask = (uint16_t)(b->qsize - 1);

		while (b->nfree) {
			uint16_t id = b->free_ids[--b->nfree];

			split_post_one(b, id, wflag);
			b->avail->ring[b->avail_idx & mask] = id;
			b->avail_idx++;
			b->posted++;
		}
		__atomic_store_n(&b->avail->idx, b->avail_idx, __ATOMIC_RELEASE);
		return;
	}
	while (b->nfree) {
		packed_post_one(b, b->free_ids[--b->nfree], wflag);
		b->posted++;
	}
}

static void drv_check(struct bench *b, uint32_t id, uint32_t len)
{
	if (id >= nids(b)) {
		b->bad++;
		return;
	}
	if (b->dir == DIR_RX) {
		const uint8_t *p = buf_hva(b, (uint16_t)id);

		if (len != b->pkt_len || p[0] != pattern((uint16_t)id) ||
		    p[len - 1] != pattern_end((uint16_t)id))
			b->bad++;
	} else {
		if (len != 0)
			b->bad++;
		b->drv_sum += pattern((uint16_t)id);
	}
	b->free_ids[b->nfree++] = (uint16_t)id;
	b->reaped++;
}

/* Driver: takes back what the device used. */
static void drv_reap(struct bench *b)
{
	if (!b->packed) {
		uint16_t end = __atomic_load_n(&b->used->idx, __ATOMIC_ACQUIRE);
		uint16_t mask = (uint16_t)(b->qsize - 1);

		while (b->used_idx != end && b->nfree < nids(b)) {
			const struct vre_used_elem *e = &b->used->ring[b->used_idx & mask];

			drv_check(b, e->id, e->len);
			b->used_idx++;
		}
		return;
	}
	for (;;) {
		struct vre_packed_desc *d = &b->pdesc[b->next_used];
		uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
		bool a = flags & VRE_PACKED_DESC_F_AVAIL;
		bool u = flags & VRE_PACKED_DESC_F_USED;

		if (a != u || u != b->used_wrap || b->nfree == nids(b))
			return;
		drv_check(b, d->id, d->len);
		/* the used descriptor stands for the chain's slots */
		b->next_used = (uint16_t)(b->next_used + (b->shape == SHAPE_TWO ? 2 : 1));
		if (b->next_used >= b->qsize) {
			b->next_used = (uint16_t)(b->next_used - b->qsize);
			b->used_wrap = !b->used_wrap;
		}
	}
}

/* Device: one burst, as a worker does it. Returns packets or -errno. */
/* -F: complete with vre_vq_complete_fetched (the device's own chains) */
static bool use_fetched;

static int dev_burst(struct bench *b)
{
	struct vre_chain chains[VRE_BURST];
	struct vre_used used[VRE_BURST];
	struct iovec pool[POOL_LEN];
	int n = vre_vq_fetch(&b->vq, chains, VRE_BURST, pool, POOL_LEN);

	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		const struct vre_chain *c = &chains[i];
		uint32_t done = 0;

		if (b->dir == DIR_TX) {
			for (unsigned k = 0; k < c->nr && done < BUF_SIZE; k++) {
				size_t l = c->iov[k].iov_len;

				if (l > BUF_SIZE - done)
					l = BUF_SIZE - done;
				memcpy(b->scratch + done, c->iov[k].iov_base, l);
				done += (uint32_t)l;
			}
			b->dev_sum += done ? b->scratch[0] : 0;
			used[i] = vre_used_of(c, 0);
		} else {
			uint8_t fill = pattern(c->id);

			/* The payload comes from one place in a switch; here a
			 * constant source, so the copy is the same size work. */
			memset(b->scratch, fill, b->pkt_len);
			b->scratch[b->pkt_len - 1] = pattern_end(c->id);
			for (unsigned k = c->nr; k < c->nr + c->nw && done < b->pkt_len; k++) {
				size_t l = c->iov[k].iov_len;

				if (l > b->pkt_len - done)
					l = b->pkt_len - done;
				memcpy(c->iov[k].iov_base, b->scratch + done, l);
				done += (uint32_t)l;
			}
			used[i] = vre_used_of(c, done);
		}
	}
	if ((use_fetched ? vre_vq_complete_fetched(&b->vq, used, (unsigned)n)
			 : vre_vq_complete(&b->vq, used, (unsigned)n)) < 0)
		return -EIO;
	(void)vre_vq_needs_notify(&b->vq);
	return n;
}

struct result {
	double dev_ns, total_ns;
	uint64_t pkts;
};

static int run_case(bool packed, enum dir dir, enum shape shape, uint32_t len,
		    uint16_t qsize, uint64_t npkts, struct result *res)
{
	struct bench *b = calloc(1, sizeof(*b));
	uint64_t dev = 0, t_start, pkts = 0;
	int rc;

	if (!b)
		return -ENOMEM;
	b->packed = packed;
	b->dir = dir;
	b->shape = shape;
	b->pkt_len = len;
	b->qsize = qsize;
	rc = bench_setup(b);
	if (rc)
		goto out;
	drv_post(b);
	t_start = now_ns();
	while (pkts < npkts) {
		uint64_t t0 = now_ns();
		int n = dev_burst(b);

		dev += now_ns() - t0;
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (n == 0) { /* the driver keeps the ring full: empty is a bug */
			rc = -EPROTO;
			goto out;
		}
		pkts += (uint64_t)n;
		drv_reap(b);
		drv_post(b);
	}
	res->total_ns = (double)(now_ns() - t_start) / (double)pkts;
	res->dev_ns = (double)dev / (double)pkts;
	res->pkts = pkts;
	drv_reap(b);
	if (b->vq.broken || b->bad || b->reaped != pkts ||
	    (dir == DIR_TX && b->drv_sum != b->dev_sum)) {
		fprintf(stderr, "ring_bench: check failed: broken %u, bad %llu, "
			"reaped %llu of %llu, payload sum %llu vs %llu\n",
			b->vq.broken, (unsigned long long)b->bad,
			(unsigned long long)b->reaped, (unsigned long long)pkts,
			(unsigned long long)b->drv_sum, (unsigned long long)b->dev_sum);
		rc = -EBADMSG;
	}
out:
	bench_teardown(b);
	free(b);
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ring_bench [-n PACKETS] [-r split,packed] [-d tx,rx] "
		"[-s 64,1518] [-q QSIZE] [-c 1|2|i] [-F] [--csv]\n"
		"  device side: vre_vq_fetch + copy + vre_vq_complete + "
		"vre_vq_needs_notify, bursts of %d\n"
		"  -F: vre_vq_complete_fetched instead of vre_vq_complete\n"
		"  -c: each packet in one descriptor (1, default), two chained\n"
		"      descriptors (2: a %u-byte header, then the rest) or one\n"
		"      indirect table of those two (i)\n"
		"  instructions per packet: perf/ring-bench (callgrind)\n",
		VRE_BURST, HDR_LEN);
}

static bool has(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "csv", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rings = "split,packed", *dirs = "tx,rx", *sizes = "64,1518";
	uint64_t npkts = 10000000;
	unsigned long qsize = 256;
	bool csv = false;
	enum shape shape = SHAPE_ONE;
	int opt, failed = 0;

	while ((opt = getopt_long(argc, argv, "n:r:d:s:q:c:Fh", lo, NULL)) != -1) {
		switch (opt) {
		case 'n': npkts = strtoull(optarg, NULL, 0); break;
		case 'r': rings = optarg; break;
		case 'd': dirs = optarg; break;
		case 's': sizes = optarg; break;
		case 'q': qsize = strtoul(optarg, NULL, 0); break;
		case 'C': csv = true; break;
		case 'F': use_fetched = true; break;
		case 'c':
			if (strcmp(optarg, "1") == 0) {
				shape = SHAPE_ONE;
			} else if (strcmp(optarg, "2") == 0) {
				shape = SHAPE_TWO;
			} else if (strcmp(optarg, "i") == 0) {
				shape = SHAPE_INDIRECT;
			} else {
				usage();
				return 2;
			}
			break;
		default: usage(); return opt == 'h' ? 0 : 2;
		}
	}
	if (npkts == 0 || qsize < VRE_BURST || qsize > MAX_QSIZE ||
	    (qsize & (qsize - 1))) {
		fprintf(stderr, "ring_bench: -n > 0, -q a power of two in %d..%u\n",
			VRE_BURST, MAX_QSIZE);
		return 2;
	}
	if (csv)
		printf("ring,dir,size,packets,device_ns_per_pkt,total_ns_per_pkt\n");
	for (int r = 0; r < 2; r++) {
		const char *rname = r ? "packed" : "split";

		if (!has(rings, rname))
			continue;
		for (int d = 0; d < 2; d++) {
			const char *dname = d ? "rx" : "tx";
			char buf[256], *save = NULL;

			if (!has(dirs, dname))
				continue;
			snprintf(buf, sizeof(buf), "%s", sizes);
			for (char *t = strtok_r(buf, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				unsigned long len = strtoul(t, NULL, 0);
				struct result res = { 0 };
				int rc;

				/* At least an Ethernet header; also keeps the RX
				 * check's first and last byte apart. */
				if (len < 14 || len > BUF_SIZE) {
					fprintf(stderr, "ring_bench: size %s not in 14..%u\n",
						t, BUF_SIZE);
					return 2;
				}
				rc = run_case(r, d ? DIR_RX : DIR_TX, shape, (uint32_t)len,
					      (uint16_t)qsize, npkts, &res);
				if (rc) {
					fprintf(stderr, "ring_bench: %s %s %luB: %s%s\n",
						rname, dname, len, strerror(-rc),
						rc == -ENOSYS ? " (ring not implemented in this "
						"build: merge branches split and packed)" : "");
					failed = 1;
					continue;
				}
				if (csv)
					printf("%s,%s,%lu,%llu,%.2f,%.2f\n", rname, dname,
					       len, (unsigned long long)res.pkts,
					       res.dev_ns, res.total_ns);
				else
					printf("%-6s %s %5luB  device %7.2f ns/pkt  "
					       "with driver %7.2f ns/pkt  (%llu packets)\n",
					       rname, dname, len, res.dev_ns, res.total_ns,
					       (unsigned long long)res.pkts);
				fflush(stdout);
			}
		}
	}
	if (!csv)
		printf("instructions per packet: perf/ring-bench, or valgrind "
		       "--tool=callgrind %s -n 200000 and callgrind_annotate "
		       "--inclusive=yes (perf stat is often unsupported on VMs)\n",
		       argv[0]);
	return failed;
}
