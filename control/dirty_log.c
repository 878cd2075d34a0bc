/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dirty log for live migration: SET_LOG_BASE, SET_LOG_FD and turning
 * logging on and off on running queues.
 *
 * How QEMU 7.2 drives it (hw/virtio/vhost.c, vhost-user.c): when migration
 * starts, vhost_migration_log() sizes the log for the highest guest address
 * of the memory table (vhost_get_log_size: one bit per 4 KiB page, in
 * 64-bit words), allocates it in a sealed memfd and sends SET_LOG_BASE with
 * that fd (LOG_SHMFD) and waits for a reply; then vhost_dev_set_log() sends
 * SET_FEATURES with VHOST_F_LOG_ALL (need_reply) and SET_VRING_ADDR with
 * VHOST_VRING_F_LOG and the used ring's GPA as log address for every queue
 * (need_reply), all on running queues. At the end (or on cancel) the same
 * without LOG_ALL. A memory table that grows while logging is preceded by a
 * bigger log (vhost_commit -> vhost_dev_log_resize).
 *
 * Here: the log file must be shared memory (memfd, tmpfs, hugetlbfs: a
 * file the frontend serves itself could stall the thread that faults on
 * it; the same check as region fds, frontend_fd.c), is sealed against shrinking where the file allows and registered
 * with the SIGBUS containment like a region (vre_fault.h), and must cover
 * the memory table (checked at SET_LOG_BASE, when LOG_ALL is turned on and
 * when the table changes while logging). SET_LOG_BASE is a whole-device
 * quiesce row, so the previous log is unmapped only when no worker can be
 * writing into it. Each queue gets the log at (re)start (ctl_log_apply):
 * SET_FEATURES and SET_VRING_ADDR stop and restart the queues they touch,
 * so toggling LOG_ALL under traffic goes through the quiesce handshake.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

/* Largest log accepted: 2^40 bytes of bitmap would describe 2^55 bytes of
 * guest memory, far beyond any table; the bound only keeps arithmetic and
 * mmap lengths sane. */
#define LOG_MAX_BYTES (1ull << 40)

bool ctl_log_on(const struct vre_dev *dev)
{
	return dev->features & BIT64(VHU_F_LOG_ALL);
}

/* The highest guest physical address (exclusive) of m, 0 for none. */
static uint64_t mem_end(const struct vre_mem_map *m)
{
	uint64_t end = 0;

	for (uint32_t i = 0; m && i < m->nregions; i++)
		if (m->regions[i].gpa + m->regions[i].size > end)
			end = m->regions[i].gpa + m->regions[i].size;
	return end;
}

int ctl_log_check_table(struct vre_dev *dev, const struct vre_mem_map *m)
{
	uint64_t end = mem_end(m), pages = (end + VRE_LOG_PAGE - 1) >> VRE_LOG_PAGE_SHIFT;

	if (!dev->log.map || dev->log.forced || pages <= dev->log.log.npages)
		return 0;
	return ctl_refuse(dev, -EINVAL, "dirty log of %llu pages is too small for memory up to 0x%llx (%llu pages)",
			  (unsigned long long)dev->log.log.npages, (unsigned long long)end,
			  (unsigned long long)pages);
}

static void log_unmap(struct ctl_log *l)
{
	if (l->map) {
		/* unregistered before munmap, as regions are */
		ctl_fault_unregister(l->map);
		munmap(l->map, (size_t)l->map_len);
	}
	memset(l, 0, sizeof(*l));
}

void ctl_log_free(struct vre_dev *dev)
{
	log_unmap(&dev->log);
}

/* Maps [offset, offset + size) of fd after every check; fills out. */
static int log_map(struct vre_dev *dev, int fd, uint64_t size, uint64_t offset,
		   struct ctl_log *out)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), map_off, len;
	char why[160];
	struct stat st;
	bool sealed;
	void *base;

	if (size == 0 || size > LOG_MAX_BYTES || offset > UINT64_MAX - size)
		return ctl_refuse(dev, -EINVAL, "log size 0x%llx offset 0x%llx: empty, too big or wraps",
				  (unsigned long long)size, (unsigned long long)offset);
	if (ctl_fd_check_memory(fd, why, sizeof(why)) < 0)
		return ctl_refuse(dev, -EINVAL, "log fd %s", why);
	/* sealed before the size check, so a file that passes it stays big
	 * enough; one that cannot be sealed is covered by the SIGBUS handler */
	sealed = ctl_fault_seal(fd);
	if (fstat(fd, &st) < 0)
		return ctl_refuse(dev, -errno, "log fd: fstat: %s", strerror(errno));
	if (st.st_size < 0 || offset + size > (uint64_t)st.st_size)
		return ctl_refuse(dev, -EINVAL, "log of 0x%llx bytes at 0x%llx beyond its file (0x%llx bytes)",
				  (unsigned long long)size, (unsigned long long)offset,
				  (unsigned long long)st.st_size);
	if (st.st_blksize > 0 && (uint64_t)st.st_blksize > page &&
	    !((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)))
		page = (uint64_t)st.st_blksize; /* hugetlbfs: huge-page offsets */
	map_off = offset & ~(page - 1);
	len = offset + size - map_off;
	len = (len + page - 1) & ~(page - 1);
	base = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		    (off_t)map_off);
	if (base == MAP_FAILED)
		return ctl_refuse(dev, -EINVAL, "log mmap: %s", strerror(errno));
	if (ctl_fault_register(base, (size_t)len, &dev->fault) < 0 && !sealed) {
		munmap(base, (size_t)len);
		return ctl_refuse(dev, -ENOSPC, "log cannot be sealed and the SIGBUS registry is full");
	}
	out->map = base;
	out->map_len = len;
	out->log.bits = (uint64_t *)((uint8_t *)base + (offset - map_off));
	out->log.npages = vre_dirty_log_pages(size);
	/* the bitmap is read as 64-bit words: an offset that is not 8-byte
	 * aligned would make every atomic OR a split access */
	if ((uintptr_t)out->log.bits % 8) {
		log_unmap(out);
		return ctl_refuse(dev, -EINVAL, "log offset 0x%llx not 8-byte aligned",
				  (unsigned long long)offset);
	}
	return 0;
}

/* SET_LOG_BASE: u64 size, u64 offset and the fd (LOG_SHMFD). The
 * dispatcher has quiesced the device: the old log is unmapped only when the
 * new one is in place, and no worker writes into either meanwhile. */
int ctl_log_set_base(struct vre_dev *dev, struct vhu_msg *msg)
{
	struct ctl_log next = { 0 }, old;
	int r;

	if (msg->hdr.size < sizeof(struct vhu_log))
		return ctl_refuse(dev, -EINVAL, "%u payload bytes", msg->hdr.size);
	r = log_map(dev, msg->fds[0], msg->p.log.size, msg->p.log.offset, &next);
	if (r < 0)
		return r;
	old = dev->log;
	dev->log = next;
	r = ctl_log_check_table(dev, dev->mem);
	if (r < 0) {
		log_unmap(&dev->log);
		dev->log = old;
		return r;
	}
	log_unmap(&old);
	VRE_INFO(CTL_ROOM, "%s: dirty log of %llu bytes (%llu pages)", dev->path,
		 (unsigned long long)msg->p.log.size, (unsigned long long)dev->log.log.npages);
	return 0;
}

/* Whether features f may take effect as far as the log is concerned. */
int ctl_log_check_features(struct vre_dev *dev, uint64_t f)
{
	if (!(f & BIT64(VHU_F_LOG_ALL)))
		return 0;
	if (!dev->log.map)
		return ctl_refuse(dev, -EINVAL, "LOG_ALL without a dirty log (SET_LOG_BASE first)");
	return ctl_log_check_table(dev, dev->mem);
}

/*
 * VRE_TEST_DIRTY_LOG=1 in the environment (benchmarks only: perf/bench
 * and perf/net-bench measure what logging costs): every device logs as if
 * a migration were running, into a memfd bitmap of its own sized for the
 * memory table at its first queue start, the rings at their own GPAs.
 * Nobody reads that bitmap.
 */
static bool forced_log(void)
{
	static int on = -1;

	if (on < 0) {
		const char *e = getenv("VRE_TEST_DIRTY_LOG");

		on = e && e[0] == '1';
	}
	return on;
}

static int force_log(struct vre_dev *dev)
{
	uint64_t pages = (mem_end(dev->mem) + VRE_LOG_PAGE - 1) >> VRE_LOG_PAGE_SHIFT;
	uint64_t len = ((pages + 63) / 64) * 8;
	int fd;
	void *base;

	if (dev->log.map)
		return 0;
	fd = memfd_create("vre-test-dirty-log", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	base = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return -errno;
	dev->log = (struct ctl_log){ .map = base, .map_len = len, .forced = true,
				     .log = { .bits = base, .npages = len * 8 } };
	VRE_WARN(CTL_ROOM, "%s: VRE_TEST_DIRTY_LOG: logging every write (%llu pages)", dev->path,
		 (unsigned long long)dev->log.log.npages);
	return 0;
}

/* Queue (re)start: the log when LOG_ALL is on, else none. */
void ctl_log_apply(struct vre_dev *dev, struct ctl_queue *cq)
{
	struct vre_vq *vq = &cq->q.vq;
	uint64_t ring = cq->addr.log, event = cq->addr.log;
	bool ring_on = cq->addr.flags & VHU_ADDR_F_LOG;

	if (!ctl_log_on(dev) && forced_log() && force_log(dev) == 0) {
		ring_on = vre_mem_uva_to_gpa(dev->mem, cq->addr.used, 4, &ring) == 0;
		event = ring;
		if (vq->packed)
			ring_on = ring_on && vre_mem_uva_to_gpa(dev->mem, cq->addr.desc,
								vre_packed_desc_bytes(cq->num),
								&ring) == 0;
		vre_vq_set_log(vq, &dev->log.log, ring_on, ring, event);
		return;
	}
	if (!ctl_log_on(dev) || !dev->log.map || dev->log.forced) {
		vre_vq_set_log(vq, NULL, false, 0, 0);
		return;
	}
	/* Packed: the device writes used descriptors into the descriptor
	 * ring, whose GPA the frontend does not send (its log address is the
	 * device event area's, QEMU's used_phys); ring_params checked that
	 * the ring lies inside one region. */
	if (vq->packed && (!ring_on || vre_mem_uva_to_gpa(dev->mem, cq->addr.desc,
							   vre_packed_desc_bytes(cq->num), &ring) < 0))
		ring_on = false;
	vre_vq_set_log(vq, &dev->log.log, ring_on, ring, event);
}

/* SET_LOG_FD: the eventfd the kernel's vhost uses to signal log writes; a
 * vhost-user backend writes the shared bitmap directly and has no use for
 * it. Accepted (and closed by the dispatcher) so a frontend that sends it
 * is not refused. */
int ctl_log_set_fd(struct vre_dev *dev, struct vhu_msg *msg)
{
	(void)msg;
	VRE_DEBUG(CTL_ROOM, "%s: SET_LOG_FD ignored (the log is shared memory)", dev->path);
	return 0;
}
