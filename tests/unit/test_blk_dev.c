/* SPDX-License-Identifier: BSD-3-Clause */
/* vre-blk's device model: offered features and the config space bytes. */
#include <check.h>
#include <endian.h>
#include <string.h>

#include "blk_dev.h"

static struct vre_worker *no_workers[1];
static struct vre_worker_pool pool = { .w = no_workers, .n = 1 };

static struct vre_blk_dev *make(uint64_t size, bool ro, uint16_t nq, bool no_inflight)
{
	struct vre_blk_dev_config c = { .fd = -1, .size = size, .readonly = ro,
					.num_queues = nq, .serial = "s", .pool = &pool,
					.no_inflight = no_inflight };
	struct vre_blk_dev *b;

	ck_assert_int_eq(vre_blk_dev_create(&c, &b), 0);
	return b;
}

START_TEST(test_features)
{
	struct vre_blk_dev *b = make(1 << 20, false, 4, false);
	const struct vre_device_ops *o = vre_blk_dev_ops(b);
	uint64_t want = 1ull << 32 | 1ull << 34 | 1ull << 29 | 1ull << 28 | 1ull << 2 |
			1ull << 6 | 1ull << 9 | 1ull << 12 | 1ull << 13 | 1ull << 14;

	ck_assert_uint_eq(o->features, want);
	ck_assert_uint_eq(o->protocol_features,
			  1ull << 0 | 1ull << 1 | 1ull << 3 | 1ull << 9 | 1ull << 12 | 1ull << 13 |
			  1ull << 15 | 1ull << 16);
	ck_assert_uint_eq(o->max_queues, 4);
	ck_assert_uint_eq(o->config_size, 60);
	ck_assert_int_eq(o->set_config(b, 32, "\1", 1), -EPERM);
	vre_blk_dev_destroy(b);

	b = make(1 << 20, true, 1, true);
	o = vre_blk_dev_ops(b);
	ck_assert_uint_eq(o->features, want | 1ull << 5);
	ck_assert_uint_eq(o->protocol_features & 1ull << 12, 0);
	vre_blk_dev_destroy(b);
}
END_TEST

static uint32_t le32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

START_TEST(test_config_space)
{
	struct vre_blk_dev *b = make((1ull << 33) + 700, false, 3, false);
	uint8_t c[60], one[4];
	uint64_t cap;
	uint16_t nq;

	memset(c, 0xee, sizeof(c));
	ck_assert_int_eq(vre_blk_dev_get_config(b, 0, c, 60), 0);
	memcpy(&cap, c, 8);
	ck_assert_uint_eq(le64toh(cap), (1ull << 33) / 512 + 1); /* 700 bytes: one more sector */
	ck_assert_uint_eq(le32_at(c + 12), VRE_BLK_SEG_MAX);
	ck_assert_uint_eq(le32_at(c + 20), 512);
	memcpy(&nq, c + 34, 2);
	ck_assert_uint_eq(le16toh(nq), 3);
	ck_assert_uint_eq(le32_at(c + 36), VRE_BLK_MAX_DISCARD_SECTORS);
	ck_assert_uint_eq(le32_at(c + 40), VRE_BLK_MAX_DWZ_SEG);
	ck_assert_uint_eq(le32_at(c + 44), 1);
	ck_assert_uint_eq(le32_at(c + 48), VRE_BLK_MAX_DISCARD_SECTORS);
	ck_assert_uint_eq(le32_at(c + 52), VRE_BLK_MAX_DWZ_SEG);
	ck_assert_uint_eq(c[56], 1);
	ck_assert_uint_eq(c[32], 0); /* writeback: not offered */

	/* Partial reads are the same bytes; out-of-range ones are refused
	 * without touching the buffer. */
	ck_assert_int_eq(vre_blk_dev_get_config(b, 34, one, 2), 0);
	ck_assert_mem_eq(one, c + 34, 2);
	ck_assert_int_eq(vre_blk_dev_get_config(b, 60, one, 0), 0);
	memset(one, 0x5a, 4);
	ck_assert_int_eq(vre_blk_dev_get_config(b, 58, one, 4), -EINVAL);
	ck_assert_int_eq(vre_blk_dev_get_config(b, 61, one, 0), -EINVAL);
	ck_assert_int_eq(vre_blk_dev_get_config(b, 0, one, 61), -EINVAL);
	ck_assert_int_eq(vre_blk_dev_get_config(b, UINT32_MAX, one, 2), -EINVAL);
	ck_assert_int_eq(vre_blk_dev_get_config(b, 2, one, UINT32_MAX), -EINVAL);
	ck_assert_uint_eq(one[0], 0x5a);
	vre_blk_dev_destroy(b);
}
END_TEST

START_TEST(test_create_rejects)
{
	struct vre_blk_dev_config c = { .fd = -1, .size = 511, .num_queues = 1, .pool = &pool };
	struct vre_blk_dev *b = (void *)1;

	ck_assert_int_eq(vre_blk_dev_create(&c, &b), -EINVAL);
	ck_assert_ptr_null(b);
	c.size = 512;
	c.num_queues = 0;
	ck_assert_int_eq(vre_blk_dev_create(&c, &b), -EINVAL);
	c.num_queues = VRE_BLK_MAX_QUEUES + 1;
	ck_assert_int_eq(vre_blk_dev_create(&c, &b), -EINVAL);
	c.num_queues = 1;
	c.pool = NULL;
	ck_assert_int_eq(vre_blk_dev_create(&c, &b), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blk_dev");
	TCase *tc = tcase_create("blk_dev");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_features);
	tcase_add_test(tc, test_config_space);
	tcase_add_test(tc, test_create_rejects);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
