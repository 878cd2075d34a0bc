/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The guest memory table: SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG.
 *
 * Every request builds a complete new map (all regions mapped and checked)
 * next to the current one; only when it is whole does it replace the current
 * map, so a bad region leaves the old table in force. The dispatcher has
 * quiesced the device's queues before the handler runs, so the old regions
 * can be unmapped as soon as the new map is installed; the queues are rebound
 * to the new map when they are restarted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

static void unmap_region(struct vre_mem_region *r)
{
	if (r->mmap_base) {
		/* Before munmap: the handler must never own a range the
		 * kernel may hand to someone else. */
		ctl_fault_unregister(r->mmap_base);
		munmap(r->mmap_base, r->mmap_len);
	}
	r->mmap_base = NULL;
}

static void unmap_all(struct vre_mem_map *m)
{
	for (uint32_t i = 0; i < m->nregions; i++)
		unmap_region(&m->regions[i]);
	m->nregions = 0;
}

/* Seals the file against shrinking and registers the mapping with the
 * SIGBUS handler (vre_fault.h); a file that can still shrink is refused if
 * the handler cannot cover it. */
static int guard_region(struct vre_dev *dev, const struct vhu_region *w, bool sealed,
			void *base, uint64_t len)
{
	int r = ctl_fault_register(base, (size_t)len, &dev->fault);

	VRE_DEBUG(CTL_ROOM, "%s: region gpa 0x%llx size 0x%llx %s", dev->path,
		  (unsigned long long)w->gpa, (unsigned long long)w->size,
		  sealed ? "sealed against shrinking" :
		  "not sealable: covered by the SIGBUS handler");
	if (r < 0 && !sealed)
		return ctl_refuse(dev, r, "region gpa 0x%llx cannot be sealed and the SIGBUS registry is full",
				  (unsigned long long)w->gpa);
	return 0;
}

/* Maps one region from fd after checking it against the file: it must be
 * memory that cannot stall (checked first, before anything that could ask
 * the file's file system: frontend_fd.c), offset and size must not wrap and
 * must lie inside the file. The mapping starts at the page (or huge page,
 * st_blksize) below mmap_offset. */
static int map_region(struct vre_dev *dev, const struct vhu_region *w, int fd,
		      struct vre_mem_region *out)
{
	struct stat st;
	uint64_t end, align, map_off, map_end, len;
	char why[160];
	bool sealed;
	void *base;

	if (w->size == 0 || w->gpa + w->size < w->gpa || w->uva + w->size < w->uva ||
	    w->mmap_offset + w->size < w->mmap_offset)
		return ctl_refuse(dev, -EINVAL, "region gpa 0x%llx size 0x%llx uva 0x%llx offset 0x%llx: empty or wraps",
				  (unsigned long long)w->gpa, (unsigned long long)w->size,
				  (unsigned long long)w->uva, (unsigned long long)w->mmap_offset);
	if (ctl_fd_check_memory(fd, why, sizeof(why)) < 0)
		return ctl_refuse(dev, -EINVAL, "region gpa 0x%llx: fd %s", (unsigned long long)w->gpa,
				  why);
	/* Sealed before the size check, so a sealed file that passes it
	 * stays large enough. */
	sealed = ctl_fault_seal(fd);
	if (fstat(fd, &st) < 0)
		return ctl_refuse(dev, -errno, "region gpa 0x%llx: fstat: %s",
				  (unsigned long long)w->gpa, strerror(errno));
	end = w->mmap_offset + w->size;
	if (st.st_size < 0 || end > (uint64_t)st.st_size)
		return ctl_refuse(dev, -EINVAL, "region of 0x%llx bytes at offset 0x%llx beyond its file (0x%llx bytes)",
				  (unsigned long long)w->size, (unsigned long long)w->mmap_offset,
				  (unsigned long long)st.st_size);
	align = (uint64_t)sysconf(_SC_PAGESIZE);
	if (st.st_blksize > 0 && (uint64_t)st.st_blksize > align &&
	    ((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)) == 0)
		align = (uint64_t)st.st_blksize;
	map_off = w->mmap_offset & ~(align - 1);
	map_end = end + align - 1;
	if (map_end < end || map_end - map_off > SIZE_MAX)
		return ctl_refuse(dev, -EINVAL, "region gpa 0x%llx: offset and size wrap",
				  (unsigned long long)w->gpa);
	map_end &= ~(align - 1);
	len = map_end - map_off;
	base = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		    fd, (off_t)map_off);
	if (base == MAP_FAILED)
		return ctl_refuse(dev, -errno, "region gpa 0x%llx size 0x%llx: mmap: %s",
				  (unsigned long long)w->gpa, (unsigned long long)w->size,
				  strerror(errno));
	if (guard_region(dev, w, sealed, base, len) < 0) {
		munmap(base, (size_t)len);
		return -ENOSPC;
	}
	*out = (struct vre_mem_region){
		.gpa = w->gpa, .size = w->size, .uva = w->uva,
		.hva = (uint8_t *)base + (w->mmap_offset - map_off),
		.mmap_base = base, .mmap_len = len, .fd = -1, .refs = 1,
	};
	return 0;
}

/* Adds a wire region to m, mapping it; on failure nothing is left mapped. */
static int add_region(struct vre_dev *dev, struct vre_mem_map *m,
		      const struct vhu_region *w, int fd)
{
	struct vre_mem_region r;
	int ret = map_region(dev, w, fd, &r);

	if (ret < 0)
		return ret;
	ret = vre_mem_map_add(m, &r);
	if (ret < 0) {
		unmap_region(&r);
		return ctl_refuse(dev, ret, "region gpa 0x%llx size 0x%llx overlaps or does not fit: %s",
				  (unsigned long long)w->gpa, (unsigned long long)w->size,
				  strerror(-ret));
	}
	return ret;
}

/* Puts next in force and unmaps what the old map held that next does not
 * (all of it, for a fresh table). Queues are quiesced. */
static void install(struct vre_dev *dev, struct vre_mem_map *next, bool fresh)
{
	/* (callers checked next against the dirty log: ctl_log_check_table) */
	struct vre_mem_map *old = dev->mem;

	dev->mem = next;
	for (uint16_t i = 0; i < dev->ops->max_queues; i++)
		dev->queues[i].failed = false;
	if (!old)
		return;
	if (fresh)
		unmap_all(old);
	free(old);
}

int ctl_mem_set_table(struct vre_dev *dev, struct vhu_msg *msg)
{
	const struct vhu_mem_table *t = &msg->p.mem;
	struct vre_mem_map *next;
	int ret = 0;

	if (msg->hdr.size < 8 || t->nregions == 0 || t->nregions > VHU_MEM_TABLE_REGIONS ||
	    msg->hdr.size < 8 + t->nregions * sizeof(struct vhu_region))
		return ctl_refuse(dev, -EINVAL, "memory table of %u regions in %u bytes",
				  msg->hdr.size >= 8 ? t->nregions : 0, msg->hdr.size);
	if (msg->nfds != t->nregions)
		return ctl_refuse(dev, -EINVAL, "memory table of %u regions with %u fds",
				  t->nregions, msg->nfds);
	next = malloc(sizeof(*next));
	if (!next)
		return -ENOMEM;
	vre_mem_map_init(next);
	for (uint32_t i = 0; i < t->nregions && ret == 0; i++)
		ret = add_region(dev, next, &t->regions[i], msg->fds[i]);
	if (ret == 0)
		ret = ctl_log_check_table(dev, next);
	if (ret < 0) {
		unmap_all(next);
		free(next);
		return ret;
	}
	install(dev, next, true);
	CTL_LOG(dev, VRE_LOG_INFO, "memory table of %u regions", next->nregions);
	return 0;
}

/* The region of m with exactly w's gpa, size and uva, or NULL. */
static struct vre_mem_region *find_same(struct vre_mem_map *m, const struct vhu_region *w)
{
	for (uint32_t i = 0; m && i < m->nregions; i++) {
		struct vre_mem_region *r = &m->regions[i];

		if (r->gpa == w->gpa && r->size == w->size && r->uva == w->uva)
			return r;
	}
	return NULL;
}

int ctl_mem_add_region(struct vre_dev *dev, struct vhu_msg *msg)
{
	const struct vhu_region *w = &msg->p.memreg.region;
	struct vre_mem_region *same = find_same(dev->mem, w);
	struct vre_mem_map *next;
	int ret;

	/* QEMU's multi-queue net has one vhost device per queue pair on the same
	 * connection, and each adds (and later removes) every region itself. The
	 * same region again is a reference, not an overlap; its fd is closed by
	 * the dispatcher and the first mapping serves both. */
	if (same) {
		same->refs++;
		VRE_DEBUG(CTL_ROOM, "%s: region gpa 0x%llx added again (%u references)",
			  dev->path, (unsigned long long)w->gpa, same->refs);
		return 0;
	}
	next = malloc(sizeof(*next));
	if (!next)
		return -ENOMEM;
	if (dev->mem)
		memcpy(next, dev->mem, sizeof(*next));
	else
		vre_mem_map_init(next);
	ret = add_region(dev, next, w, msg->fds[0]);
	if (ret == 0 && (ret = ctl_log_check_table(dev, next)) < 0)
		unmap_region(find_same(next, w)); /* the one just mapped */
	if (ret < 0) {
		free(next);
		return ret;
	}
	/* The old map's regions live on in next: nothing to unmap. */
	install(dev, next, false);
	return 0;
}

int ctl_mem_rem_region(struct vre_dev *dev, struct vhu_msg *msg)
{
	const struct vhu_region *w = &msg->p.memreg.region;
	struct vre_mem_region gone, *same;
	struct vre_mem_map *next;
	int ret;

	if (!dev->mem)
		return ctl_refuse(dev, -ENOENT, "no memory table");
	same = find_same(dev->mem, w);
	if (same && same->refs > 1) {
		same->refs--;
		return 0;
	}
	next = malloc(sizeof(*next));
	if (!next)
		return -ENOMEM;
	memcpy(next, dev->mem, sizeof(*next));
	ret = vre_mem_map_remove(next, w->gpa, w->size, w->uva, &gone);
	if (ret < 0) {
		free(next);
		return ctl_refuse(dev, ret, "no region gpa 0x%llx size 0x%llx uva 0x%llx to remove",
				  (unsigned long long)w->gpa, (unsigned long long)w->size,
				  (unsigned long long)w->uva);
	}
	install(dev, next, false);
	/* Queues are quiesced: nobody can be inside the removed region. */
	unmap_region(&gone);
	return 0;
}

void ctl_mem_free(struct vre_dev *dev)
{
	if (!dev->mem)
		return;
	unmap_all(dev->mem);
	free(dev->mem);
	dev->mem = NULL;
}
