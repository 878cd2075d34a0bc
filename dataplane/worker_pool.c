/* SPDX-License-Identifier: BSD-3-Clause */
/* CPU lists and sets of workers (see vre_worker.h). */
#include "vre_worker.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vre_log.h"

static int parse_cpu(const char **s)
{
	char *end;
	long v;

	if (**s < '0' || **s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(*s, &end, 10);
	if (errno || v < 0 || v >= CPU_SETSIZE)
		return -EINVAL;
	*s = end;
	return (int)v;
}

int vre_cpulist_parse(const char *s, int *cpus, unsigned max)
{
	unsigned n = 0;

	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		int lo = parse_cpu(&s), hi;

		if (lo < 0)
			return -EINVAL;
		hi = lo;
		if (*s == '-') {
			s++;
			hi = parse_cpu(&s);
			if (hi < lo)
				return -EINVAL;
		}
		for (int c = lo; c <= hi; c++) {
			for (unsigned i = 0; i < n; i++)
				if (cpus[i] == c)
					return -EINVAL; /* listed twice */
			if (n == max)
				return -EINVAL;
			cpus[n++] = c;
		}
		if (*s == '\0')
			return (int)n;
		if (*s++ != ',')
			return -EINVAL;
	}
}

int vre_cpulist_check(const char *list, int *bad)
{
	int cpus[CPU_SETSIZE];
	int n = vre_cpulist_parse(list, cpus, CPU_SETSIZE);
	cpu_set_t set;

	if (n <= 0)
		return -EINVAL;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0; /* cannot tell: pinning will say */
	for (int i = 0; i < n; i++) {
		if (!CPU_ISSET(cpus[i], &set)) {
			*bad = cpus[i];
			return -ESRCH;
		}
	}
	return 0;
}

const char *vre_cpulist_problem(const char *list, char *buf, size_t len)
{
	int bad_cpu = -1;

	switch (vre_cpulist_check(list, &bad_cpu)) {
	case 0:
		return NULL;
	case -ESRCH:
		snprintf(buf, len, "CPU %d is not present or not allowed for this process", bad_cpu);
		break;
	default:
		snprintf(buf, len, "bad CPU list '%s'", list);
	}
	return buf;
}

int vre_cpu_last_allowed(void)
{
	cpu_set_t set;
	int last = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				last = i;
	return last;
}

#define POOL_MAX 64

int vre_worker_pool_create(struct vre_worker_pool *p, const char *cpulist,
			   const struct vre_worker_config *tmpl)
{
	int cpus[POOL_MAX];
	int n = vre_cpulist_parse(cpulist, cpus, POOL_MAX);

	memset(p, 0, sizeof(*p));
	if (n < 0) {
		VRE_ERR("worker", "bad CPU list '%s'", cpulist ? cpulist : "");
		return n;
	}
	p->w = calloc((size_t)n, sizeof(p->w[0]));
	if (!p->w)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct vre_worker_config c = *tmpl;
		int err;

		c.cpu = cpus[i];
		err = vre_worker_create(&c, &p->w[i]);
		if (err < 0) {
			vre_worker_pool_destroy(p);
			return err;
		}
		p->n++;
	}
	return 0;
}

void vre_worker_pool_destroy(struct vre_worker_pool *p)
{
	for (unsigned i = 0; i < p->n; i++)
		vre_worker_destroy(p->w[i]);
	free(p->w);
	memset(p, 0, sizeof(*p));
}

struct vre_worker *vre_worker_pool_next(struct vre_worker_pool *p)
{
	struct vre_worker *w;

	if (!p->n)
		return NULL;
	w = p->w[p->next % p->n];
	p->next = (p->next + 1) % p->n;
	return w;
}
