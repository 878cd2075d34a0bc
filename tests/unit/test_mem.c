/* SPDX-License-Identifier: BSD-3-Clause */
/* The guest memory map: region bookkeeping and every translation edge. */
#include <check.h>
#include <stdlib.h>

#include "vre_iov.h"
#include "vre_mem.h"

static uint8_t buf_a[4096], buf_b[4096], buf_c[4096];
static struct vre_mem_map map;

/* Three regions: A at GPA 0x1000, B right after it (adjacent), C apart. */
static void setup(void)
{
	struct vre_mem_region a = { .gpa = 0x1000, .size = 4096, .uva = 0x70000000, .hva = buf_a };
	struct vre_mem_region b = { .gpa = 0x2000, .size = 4096, .uva = 0x80000000, .hva = buf_b };
	struct vre_mem_region c = { .gpa = 0x100000, .size = 4096, .uva = 0x90000000, .hva = buf_c };

	vre_mem_map_init(&map);
	ck_assert_int_eq(vre_mem_map_add(&map, &c), 0);
	ck_assert_int_eq(vre_mem_map_add(&map, &a), 0);
	ck_assert_int_eq(vre_mem_map_add(&map, &b), 0);
}

START_TEST(test_sorted_and_overlap)
{
	struct vre_mem_region o = { .gpa = 0x1800, .size = 16, .uva = 0x1, .hva = buf_a };
	struct vre_mem_region u = { .gpa = 0x500000, .size = 16, .uva = 0x80000010, .hva = buf_a };
	struct vre_mem_region w = { .gpa = UINT64_MAX - 8, .size = 16, .uva = 0, .hva = buf_a };
	struct vre_mem_region z = { .gpa = 0x600000, .size = 0, .uva = 0, .hva = buf_a };

	ck_assert_uint_eq(map.nregions, 3);
	ck_assert_uint_eq(map.regions[0].gpa, 0x1000);
	ck_assert_uint_eq(map.regions[1].gpa, 0x2000);
	ck_assert_uint_eq(map.regions[2].gpa, 0x100000);
	ck_assert_int_eq(vre_mem_map_add(&map, &o), -EEXIST);
	ck_assert_int_eq(vre_mem_map_add(&map, &u), -EEXIST);
	ck_assert_int_eq(vre_mem_map_add(&map, &w), -EINVAL);
	ck_assert_int_eq(vre_mem_map_add(&map, &z), -EINVAL);
	ck_assert_uint_eq(map.nregions, 3);
}
END_TEST

START_TEST(test_translate_inside)
{
	struct iovec iov[4];
	uint32_t hint = 0;

	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x1010, 100, iov, 4), 1);
	ck_assert_ptr_eq(iov[0].iov_base, buf_a + 0x10);
	ck_assert_uint_eq(iov[0].iov_len, 100);
	ck_assert_uint_eq(hint, 0);
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x100ff0, 16, iov, 4), 1);
	ck_assert_ptr_eq(iov[0].iov_base, buf_c + 0xff0);
	ck_assert_uint_eq(hint, 2);
	/* The last byte of a region, exactly. */
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x100fff, 1, iov, 4), 1);
	ck_assert_ptr_eq(iov[0].iov_base, buf_c + 0xfff);
}
END_TEST

START_TEST(test_translate_spans_two_regions)
{
	struct iovec iov[4];
	uint32_t hint = 0;

	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x1ff0, 0x20, iov, 4), 2);
	ck_assert_ptr_eq(iov[0].iov_base, buf_a + 0xff0);
	ck_assert_uint_eq(iov[0].iov_len, 0x10);
	ck_assert_ptr_eq(iov[1].iov_base, buf_b);
	ck_assert_uint_eq(iov[1].iov_len, 0x10);
	/* Not enough room for the second piece. */
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x1ff0, 0x20, iov, 1), -ENOBUFS);
	/* Contiguous-only lookups refuse the split range. */
	ck_assert_ptr_null(vre_mem_gpa_ptr(&map, &hint, 0x1ff0, 0x20));
	ck_assert_ptr_eq(vre_mem_gpa_ptr(&map, &hint, 0x1ff0, 0x10), buf_a + 0xff0);
}
END_TEST

START_TEST(test_translate_refuses_outside)
{
	struct iovec iov[4];
	uint32_t hint = 0;

	/* Runs off the end of B into the hole before C. */
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x2ff0, 0x20, iov, 4), -EFAULT);
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x0, 1, iov, 4), -EFAULT);
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x101000, 1, iov, 4), -EFAULT);
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, UINT64_MAX - 4, 16, iov, 4), -EOVERFLOW);
	/* Zero length touches nothing, even at a bad address. */
	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0xdead0000, 0, iov, 4), 0);
	ck_assert_ptr_null(vre_mem_gpa_ptr(&map, &hint, 0x1000, 0));
	ck_assert_ptr_null(vre_mem_gpa_ptr(&map, &hint, UINT64_MAX, 2));
}
END_TEST

START_TEST(test_stale_hint_is_harmless)
{
	struct iovec iov[1];
	uint32_t hint = 400; /* beyond nregions */

	ck_assert_int_eq(vre_mem_gpa_to_iov(&map, &hint, 0x2004, 4, iov, 1), 1);
	ck_assert_ptr_eq(iov[0].iov_base, buf_b + 4);
	ck_assert_uint_eq(hint, 1);
}
END_TEST

START_TEST(test_read_across_regions)
{
	uint8_t out[32];
	uint32_t hint = 0;

	for (int i = 0; i < 16; i++) {
		buf_a[4096 - 16 + i] = (uint8_t)i;
		buf_b[i] = (uint8_t)(16 + i);
	}
	ck_assert_int_eq(vre_mem_read(&map, &hint, 0x1ff0, out, 32), 0);
	for (int i = 0; i < 32; i++)
		ck_assert_uint_eq(out[i], i);
	ck_assert_int_eq(vre_mem_read(&map, &hint, 0x2ff0, out, 32), -EFAULT);
}
END_TEST

START_TEST(test_uva_lookup_and_remove)
{
	struct vre_mem_region out;
	uint64_t gpa;

	ck_assert_ptr_eq(vre_mem_uva_ptr(&map, 0x80000100, 64), buf_b + 0x100);
	ck_assert_ptr_null(vre_mem_uva_ptr(&map, 0x80000ff0, 64));
	ck_assert_ptr_null(vre_mem_uva_ptr(&map, UINT64_MAX - 1, 64));
	ck_assert_int_eq(vre_mem_uva_to_gpa(&map, 0x90000010, 4, &gpa), 0);
	ck_assert_uint_eq(gpa, 0x100010);
	ck_assert_int_eq(vre_mem_map_remove(&map, 0x2000, 4096, UINT64_MAX, &out), 0);
	ck_assert_ptr_eq(out.hva, buf_b);
	ck_assert_uint_eq(map.nregions, 2);
	ck_assert_ptr_null(vre_mem_uva_ptr(&map, 0x80000100, 64));
	ck_assert_int_eq(vre_mem_map_remove(&map, 0x2000, 4096, UINT64_MAX, &out), -ENOENT);
	ck_assert_uint_eq(map.regions[1].gpa, 0x100000);
}
END_TEST

START_TEST(test_full_map)
{
	static uint8_t page[64];
	struct vre_mem_map *m = malloc(sizeof(*m));
	struct vre_mem_region r = { .size = 64, .hva = page };
	uint32_t hint = 0;
	struct iovec iov;

	vre_mem_map_init(m);
	for (unsigned i = 0; i < VRE_MEM_MAX_REGIONS; i++) {
		r.gpa = r.uva = (uint64_t)(VRE_MEM_MAX_REGIONS - i) << 12;
		ck_assert_int_eq(vre_mem_map_add(m, &r), 0);
	}
	r.gpa = r.uva = 0x10000000;
	ck_assert_int_eq(vre_mem_map_add(m, &r), -ENOSPC);
	/* Binary search finds every region. */
	for (unsigned i = 1; i <= VRE_MEM_MAX_REGIONS; i++) {
		hint = 0;
		ck_assert_int_eq(vre_mem_gpa_to_iov(m, &hint, ((uint64_t)i << 12) + 8, 8, &iov, 1), 1);
		ck_assert_uint_eq(hint, i - 1);
	}
	free(m);
}
END_TEST

/* iovec copies start at any offset, cross segments and stop at the end. */
START_TEST(test_iov_copies)
{
	uint8_t a[3] = { 1, 2, 3 }, b[1] = { 4 }, c[4] = { 5, 6, 7, 8 };
	struct iovec iov[4] = { { a, 3 }, { NULL, 0 }, { b, 1 }, { c, 4 } };
	uint8_t out[8] = { 0 }, in[3] = { 0xa, 0xb, 0xc };

	ck_assert_uint_eq(vre_iov_read(iov, 4, 2, out, 4), 4);
	ck_assert_mem_eq(out, ((uint8_t[]){ 3, 4, 5, 6 }), 4);
	ck_assert_uint_eq(vre_iov_read(iov, 4, 6, out, 8), 2);
	ck_assert_mem_eq(out, ((uint8_t[]){ 7, 8 }), 2);
	ck_assert_uint_eq(vre_iov_read(iov, 4, 8, out, 1), 0);
	ck_assert_uint_eq(vre_iov_write(iov, 4, 2, in, 3), 3);
	ck_assert_mem_eq(a, ((uint8_t[]){ 1, 2, 0xa }), 3);
	ck_assert_uint_eq(b[0], 0xb);
	ck_assert_mem_eq(c, ((uint8_t[]){ 0xc, 6, 7, 8 }), 4);
	ck_assert_uint_eq(vre_iov_write(iov, 4, 7, in, 3), 1);
	ck_assert_uint_eq(c[3], 0xa);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem");
	TCase *tc = tcase_create("map");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_sorted_and_overlap);
	tcase_add_test(tc, test_translate_inside);
	tcase_add_test(tc, test_translate_spans_two_regions);
	tcase_add_test(tc, test_translate_refuses_outside);
	tcase_add_test(tc, test_stale_hint_is_harmless);
	tcase_add_test(tc, test_read_across_regions);
	tcase_add_test(tc, test_uva_lookup_and_remove);
	tcase_add_test(tc, test_full_map);
	tcase_add_test(tc, test_iov_copies);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
