/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inflight regions: GET_INFLIGHT_FD allocates one (a zeroed memfd the
 * frontend keeps across backend restarts), SET_INFLIGHT_FD hands one back.
 * Each queue owns a slice of vre_inflight_queue_bytes(queue_size, packed)
 * bytes at index * that stride; the slice is attached when the ring starts.
 *
 * The frontend may ask before features are negotiated (QEMU's
 * vhost-user-blk does), when it is not yet known whether rings are packed:
 * an allocation then uses the packed size, the larger of the two, so either
 * layout fits. Sizes given back by SET_INFLIGHT_FD are trusted only as far
 * as the file and the arithmetic check out, and again per queue at attach.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

void ctl_inflight_free(struct vre_dev *dev)
{
	struct ctl_inflight *in = &dev->inflight;

	if (in->base) {
		ctl_fault_unregister(in->base);
		munmap(in->base, in->mmap_size);
	}
	ctl_fd_close(in->fd); /* ours, or the frontend's shared memory */
	memset(in, 0, sizeof(*in));
	in->fd = -1;
}

static bool attached(const struct vre_dev *dev)
{
	for (uint16_t i = 0; i < dev->ops->max_queues; i++)
		if (dev->queues[i].vq_ready && dev->inflight.base)
			return true;
	return false;
}

static int check_shape(struct vre_dev *dev, uint16_t num_queues, uint16_t queue_size)
{
	if (num_queues == 0 || num_queues > dev->ops->max_queues ||
	    queue_size == 0 || queue_size > VRE_VQ_MAX_SIZE)
		return ctl_refuse(dev, -EINVAL, "inflight region for %u queues of %u (max %u queues)",
				  num_queues, queue_size, dev->ops->max_queues);
	return 0;
}

int ctl_inflight_get(struct vre_dev *dev, struct vhu_msg *msg, int *out_fd)
{
	struct vhu_inflight *w = &msg->p.inflight;
	bool packed = !dev->features_set || (dev->features & BIT64(VHU_F_RING_PACKED));
	size_t size;
	bool sealed;
	void *base;
	int fd, r;

	r = check_shape(dev, w->num_queues, w->queue_size);
	if (r < 0)
		return r;
	if (attached(dev))
		return ctl_refuse(dev, -EBUSY, "the inflight region is in use by a running queue");
	size = (size_t)w->num_queues * vre_inflight_queue_bytes(w->queue_size, packed);
	fd = memfd_create("vre-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* A fresh file reads as zeros: every queue starts at version 0. */
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The frontend keeps this fd: it must not be able to shrink the file
	 * under us (growing it is harmless). */
	sealed = ctl_fault_seal(fd);
	if (!sealed)
		VRE_WARN(CTL_ROOM, "%s: the inflight memfd could not be sealed", dev->path);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	r = ctl_fault_register(base, size, &dev->fault);
	if (r < 0 && !sealed) {
		munmap(base, size);
		close(fd);
		return r;
	}
	ctl_inflight_free(dev); /* a repeated GET replaces the previous one */
	dev->inflight = (struct ctl_inflight){
		.fd = fd, .base = base, .mmap_size = size, .mmap_offset = 0,
		.num_queues = w->num_queues, .queue_size = w->queue_size,
	};
	w->mmap_size = size;
	w->mmap_offset = 0;
	*out_fd = fd;
	return 0;
}

int ctl_inflight_set(struct vre_dev *dev, struct vhu_msg *msg)
{
	const struct vhu_inflight *w = &msg->p.inflight;
	uint64_t need = (uint64_t)w->num_queues * vre_inflight_queue_bytes(w->queue_size, false);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	int fd = msg->fds[0];
	struct stat st;
	char why[160];
	bool sealed;
	void *base;
	int r;

	r = check_shape(dev, w->num_queues, w->queue_size);
	if (r < 0)
		return r;
	if (attached(dev))
		return ctl_refuse(dev, -EBUSY, "the inflight region is in use by a running queue");
	if (w->mmap_size < need || w->mmap_size > SIZE_MAX ||
	    w->mmap_offset + w->mmap_size < w->mmap_offset || (w->mmap_offset & (page - 1)))
		return ctl_refuse(dev, -EINVAL, "inflight region of 0x%llx bytes at 0x%llx too small or misplaced for %u queues of %u",
				  (unsigned long long)w->mmap_size, (unsigned long long)w->mmap_offset,
				  w->num_queues, w->queue_size);
	/* before anything that could ask the file's file system */
	if (ctl_fd_check_memory(fd, why, sizeof(why)) < 0)
		return ctl_refuse(dev, -EINVAL, "inflight region fd %s", why);
	sealed = ctl_fault_seal(fd); /* before the size check: it then holds */
	if (fstat(fd, &st) < 0)
		return ctl_refuse(dev, -errno, "inflight region: fstat: %s", strerror(errno));
	if (st.st_size < 0 || w->mmap_offset + w->mmap_size > (uint64_t)st.st_size)
		return ctl_refuse(dev, -EINVAL, "inflight region beyond its file");
	base = mmap(NULL, (size_t)w->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)w->mmap_offset);
	if (base == MAP_FAILED)
		return ctl_refuse(dev, -errno, "inflight region: mmap: %s", strerror(errno));
	r = ctl_fault_register(base, (size_t)w->mmap_size, &dev->fault);
	VRE_DEBUG(CTL_ROOM, "%s: inflight region %s", dev->path,
		  sealed ? "sealed against shrinking" : "not sealable: covered by the SIGBUS handler");
	if (r < 0 && !sealed) {
		munmap(base, (size_t)w->mmap_size);
		return ctl_refuse(dev, r, "inflight region cannot be sealed and the SIGBUS registry is full");
	}
	ctl_inflight_free(dev);
	dev->inflight = (struct ctl_inflight){
		.fd = fd, .base = base, .mmap_size = w->mmap_size,
		.mmap_offset = w->mmap_offset, .num_queues = w->num_queues,
		.queue_size = w->queue_size,
	};
	msg->fds[0] = -1; /* kept */
	return 0;
}

int ctl_inflight_slice(struct vre_dev *dev, uint16_t index, bool packed,
		       void **region, size_t *len)
{
	const struct ctl_inflight *in = &dev->inflight;
	size_t stride;

	if (!in->base)
		return -ENOENT;
	if (index >= in->num_queues) {
		CTL_WARN(dev, "queue %u: beyond the inflight region's %u queues, not tracked",
			 index, in->num_queues);
		return -ENOENT;
	}
	if (dev->queues[index].num != in->queue_size) {
		CTL_ERR(dev, "queue %u: size %u but inflight region made for %u",
			index, dev->queues[index].num, in->queue_size);
		return -EINVAL;
	}
	stride = vre_inflight_queue_bytes(in->queue_size, packed);
	if ((uint64_t)(index + 1) * stride > in->mmap_size) {
		CTL_ERR(dev, "queue %u: inflight region too small for %s rings",
			index, packed ? "packed" : "split");
		return -EINVAL;
	}
	*region = (uint8_t *)in->base + (size_t)index * stride;
	*len = stride;
	return 0;
}
