/*
 * The on-disk format: record and segment header encodings round-trip, sit
 * at the offsets docs/journal.md gives, and the decoders treat journal
 * bytes as untrusted: every prefix needs more, every single-bit flip is
 * refused, and nothing is read past the end (inputs sit at the end of a
 * page followed by an unreadable one).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "journal/format.h"
#include "sim_disk.h"

static uint8_t *guard;
static size_t page;

static void setup(void)
{
    page = (size_t)sysconf(_SC_PAGESIZE);
    guard = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(guard != MAP_FAILED);
    cr_assert_eq(mprotect(guard + page, page, PROT_NONE), 0);
}

static void teardown(void) { munmap(guard, 2 * page); }

TestSuite(format, .init = setup, .fini = teardown, .timeout = 60);

/* n bytes of src placed so that the byte after them is unreadable. */
static uint8_t *at_page_end(const uint8_t *src, size_t n)
{
    cr_assert_leq(n, page);
    memcpy(guard + page - n, src, n);
    return guard + page - n;
}

static const uint16_t all_types[] = {REC_SKU_SET, REC_RESTOCK, REC_ADJUST, REC_PLACE,
                                     REC_CONFIRM, REC_CANCEL,  REC_FULFILL, REC_EXPIRE,
                                     REC_RETIRE,  REC_EXTEND};
#define NTYPES (sizeof all_types / sizeof all_types[0])

static eng_line_t src_lines[ALLOT_LINES_MAX];

/* A record of type with random values in every field it carries. */
static eng_record_t make_record(uint16_t type, uint64_t *rng, uint8_t nlines)
{
    eng_record_t r = {.type = type, .seq = 1 + sim_rand(rng) % 1000000,
                      .time_ms = sim_rand(rng) >> 20};
    switch (type) {
    case REC_SKU_SET:
        r.limit = (uint32_t)sim_rand(rng);
        r.reorder_point = (uint32_t)sim_rand(rng);
        /* fall through */
    case REC_RESTOCK:
    case REC_ADJUST:
        r.id = sim_rand(rng);
        r.amount = sim_rand(rng);
        break;
    case REC_EXTEND:
        r.id = sim_rand(rng);
        r.deadline_ms = sim_rand(rng);
        break;
    case REC_PLACE:
        r.id = sim_rand(rng);
        r.customer = sim_rand(rng);
        r.deadline_ms = sim_rand(rng);
        r.content_hash = sim_rand(rng);
        r.policy = (uint8_t)(sim_rand(rng) % ALLOT_POLICY_COUNT);
        r.line_count = nlines;
        for (unsigned i = 0; i < nlines; i++)
            src_lines[i] = (eng_line_t){.sku = sim_rand(rng), .qty = (uint32_t)sim_rand(rng),
                                        .allocated = (uint32_t)sim_rand(rng)};
        r.lines = src_lines;
        break;
    case REC_RETIRE: r.count = (uint32_t)sim_rand(rng); break;
    default: r.id = sim_rand(rng); break;
    }
    return r;
}

static void assert_same(const eng_record_t *a, const eng_record_t *b)
{
    cr_assert_eq(a->type, b->type);
    cr_assert_eq(a->seq, b->seq);
    cr_assert_eq(a->time_ms, b->time_ms);
    cr_assert_eq(a->id, b->id);
    cr_assert_eq(a->amount, b->amount);
    cr_assert_eq(a->limit, b->limit);
    cr_assert_eq(a->reorder_point, b->reorder_point);
    cr_assert_eq(a->deadline_ms, b->deadline_ms);
    cr_assert_eq(a->customer, b->customer);
    cr_assert_eq(a->content_hash, b->content_hash);
    cr_assert_eq(a->policy, b->policy);
    cr_assert_eq(a->count, b->count);
    cr_assert_eq(a->line_count, b->line_count);
    for (unsigned i = 0; i < a->line_count; i++) {
        cr_assert_eq(a->lines[i].sku, b->lines[i].sku);
        cr_assert_eq(a->lines[i].qty, b->lines[i].qty);
        cr_assert_eq(a->lines[i].allocated, b->lines[i].allocated);
    }
}

/* Calls fn for a sample of every record type (PLACE with 1..64 lines). */
static void each_record(void (*fn)(const eng_record_t *rec, const uint8_t *enc, size_t len))
{
    static const uint8_t line_counts[] = {1, 2, 7, 64};
    uint64_t rng = 42;
    for (size_t t = 0; t < NTYPES; t++) {
        size_t variants = all_types[t] == REC_PLACE ? sizeof line_counts : 1;
        for (size_t v = 0; v < variants; v++) {
            eng_record_t rec = make_record(all_types[t], &rng, line_counts[v]);
            uint8_t enc[REC_SIZE_MAX];
            size_t len = rec_encode(enc, &rec);
            fn(&rec, enc, len);
        }
    }
}

static void roundtrip_one(const eng_record_t *rec, const uint8_t *enc, size_t len)
{
    cr_assert_eq(len, rec_encoded_size(rec));
    cr_assert(len % 8 == 0 && len >= REC_SIZE_MIN && len <= REC_SIZE_MAX, "length %zu", len);
    eng_record_t out;
    eng_line_t lines[ALLOT_LINES_MAX];
    size_t size = 0;
    const char *why;
    cr_assert_eq(rec_decode(at_page_end(enc, len), len, &out, lines, &size, &why),
                 REC_STATUS_OK, "type %u: %s", rec->type, why);
    cr_assert_eq(size, len);
    assert_same(rec, &out);
    uint8_t again[REC_SIZE_MAX];
    cr_assert_eq(rec_encode(again, &out), len);
    cr_assert(memcmp(enc, again, len) == 0, "type %u re-encodes differently", rec->type);

    /* Followed by zeros (a preallocated segment), the record is the same. */
    uint8_t padded[2 * REC_SIZE_MAX] = {0};
    memcpy(padded, enc, len);
    cr_assert_eq(rec_decode(padded, sizeof padded, &out, lines, &size, &why), REC_STATUS_OK);
    cr_assert_eq(size, len);
}

Test(format, every_record_type_round_trips)
{
    each_record(roundtrip_one);
    uint64_t rng = 7;
    for (int i = 0; i < 2000; i++) {
        uint16_t type = all_types[sim_rand(&rng) % NTYPES];
        eng_record_t rec = make_record(type, &rng, (uint8_t)(1 + sim_rand(&rng) % 64));
        uint8_t enc[REC_SIZE_MAX];
        roundtrip_one(&rec, enc, rec_encode(enc, &rec));
    }
}

/* The layout docs/journal.md gives, byte for byte. */
Test(format, record_layout_matches_the_documentation)
{
    eng_record_t r = {.type = REC_SKU_SET, .seq = 0x0102030405060708, .time_ms = 1700000000123,
                      .id = 0x1111, .amount = 500, .limit = 7, .reorder_point = 9};
    uint8_t b[REC_SIZE_MAX];
    cr_assert_eq(rec_encode(b, &r), 56);
    cr_assert_eq(allot_get_u32(b + 0), 56);
    cr_assert_eq(allot_get_u16(b + 4), REC_SKU_SET);
    cr_assert_eq(allot_get_u16(b + 6), 0);
    cr_assert_eq(allot_get_u64(b + 8), 0x0102030405060708);
    cr_assert_eq(b[8], 0x08, "little-endian");
    cr_assert_eq(allot_get_u64(b + 16), 1700000000123);
    cr_assert_eq(allot_get_u64(b + 24), 0x1111);
    cr_assert_eq(allot_get_u64(b + 32), 500);
    cr_assert_eq(allot_get_u32(b + 40), 7);
    cr_assert_eq(allot_get_u32(b + 44), 9);
    cr_assert_eq(allot_get_u64(b + 48), XXH3_64bits(b, 48));

    eng_line_t lines[2] = {{.sku = 77, .qty = 5, .allocated = 3}, {.sku = 88, .qty = 1}};
    eng_record_t p = {.type = REC_PLACE, .seq = 2, .time_ms = 3, .id = 10, .customer = 11,
                      .deadline_ms = 12, .content_hash = 13, .policy = ALLOT_POLICY_PARTIAL,
                      .line_count = 2, .lines = lines};
    cr_assert_eq(rec_encode(b, &p), 24 + 40 + 2 * 16 + 8);
    cr_assert_eq(allot_get_u64(b + 24), 10);
    cr_assert_eq(allot_get_u64(b + 32), 11);
    cr_assert_eq(allot_get_u64(b + 40), 12);
    cr_assert_eq(allot_get_u64(b + 48), 13);
    cr_assert_eq(b[56], ALLOT_POLICY_PARTIAL);
    cr_assert_eq(b[57], 2);
    for (int i = 58; i < 64; i++)
        cr_assert_eq(b[i], 0, "padding byte %d", i);
    cr_assert_eq(allot_get_u64(b + 64), 77);
    cr_assert_eq(allot_get_u32(b + 72), 5);
    cr_assert_eq(allot_get_u32(b + 76), 3);
    cr_assert_eq(allot_get_u64(b + 80), 88);

    eng_record_t x = {.type = REC_EXTEND, .seq = 1, .id = 5, .deadline_ms = 99};
    cr_assert_eq(rec_encode(b, &x), 48);
    cr_assert_eq(allot_get_u64(b + 32), 99);
    eng_record_t t = {.type = REC_RETIRE, .seq = 1, .count = 3};
    cr_assert_eq(rec_encode(b, &t), 40);
    cr_assert_eq(allot_get_u32(b + 24), 3);
    cr_assert_eq(allot_get_u32(b + 28), 0);
    eng_record_t c = {.type = REC_CANCEL, .seq = 1, .id = 0xabcdef};
    cr_assert_eq(rec_encode(b, &c), 40);
    cr_assert_eq(allot_get_u64(b + 24), 0xabcdef);
    cr_assert_eq(REC_SIZE_MIN, 40);
    cr_assert_eq(REC_SIZE_MAX, 24 + 40 + 64 * 16 + 8);
}

static void prefixes_one(const eng_record_t *rec, const uint8_t *enc, size_t len)
{
    eng_record_t out;
    eng_line_t lines[ALLOT_LINES_MAX];
    size_t size;
    const char *why;
    for (size_t p = 0; p < len; p++) {
        enum rec_status s = rec_decode(at_page_end(enc, p), p, &out, lines, &size, &why);
        cr_assert_eq(s, p == 0 ? REC_STATUS_END : REC_STATUS_SHORT,
                     "type %u: prefix of %zu bytes gave %d", rec->type, p, s);
    }
}

Test(format, every_prefix_needs_more) { each_record(prefixes_one); }

static void flips_one(const eng_record_t *rec, const uint8_t *enc, size_t len)
{
    uint8_t padded[2 * REC_SIZE_MAX];
    eng_record_t out;
    eng_line_t lines[ALLOT_LINES_MAX];
    size_t size;
    const char *why;
    for (size_t bit = 0; bit < len * 8; bit++) {
        /* In a segment: zeros follow. Always BAD. */
        memset(padded, 0, sizeof padded);
        memcpy(padded, enc, len);
        padded[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        enum rec_status s = rec_decode(padded, sizeof padded, &out, lines, &size, &why);
        cr_assert_eq(s, REC_STATUS_BAD, "type %u bit %zu: status %d", rec->type, bit, s);
        cr_assert_not_null(why);
        /* At the very end of the bytes: BAD, or SHORT when the flip made the
         * length point past them. Never OK, never a read past the end. */
        uint8_t *b = at_page_end(enc, len);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        s = rec_decode(b, len, &out, lines, &size, &why);
        bool longer = bit < 32 && allot_get_u32(b) > len;
        cr_assert(s == REC_STATUS_BAD || (s == REC_STATUS_SHORT && longer),
                  "type %u bit %zu: status %d", rec->type, bit, s);
    }
}

Test(format, every_single_bit_flip_is_refused) { each_record(flips_one); }

/* A record whose checksum is right but whose content is not. */
static enum rec_status decode_resealed(uint8_t *b, size_t len, const char **why)
{
    allot_put_u64(b + len - 8, XXH3_64bits(b, len - 8));
    eng_record_t out;
    eng_line_t lines[ALLOT_LINES_MAX];
    size_t size;
    return rec_decode(at_page_end(b, len), len, &out, lines, &size, why);
}

static size_t encode(uint8_t *b, eng_record_t r) { return rec_encode(b, &r); }

Test(format, valid_checksum_does_not_make_a_record_valid)
{
    uint8_t b[REC_SIZE_MAX];
    const char *why;
    static const uint16_t unknown[] = {0, REC_TYPE_COUNT, 12, 255, 0x8001, 0xffff};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        size_t len = encode(b, (eng_record_t){.type = REC_CONFIRM, .seq = 1, .id = 9});
        allot_put_u16(b + 4, unknown[i]);
        cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD, "type %u", unknown[i]);
        cr_assert(strstr(why, "unknown record type"), "%s", why);
    }

    size_t len = encode(b, (eng_record_t){.type = REC_CONFIRM, .seq = 1, .id = 9});
    allot_put_u16(b + 6, 1);
    cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD);
    cr_assert(strstr(why, "flags"), "%s", why);

    /* A RESTOCK with the payload of a SKU_SET. */
    len = encode(b, (eng_record_t){.type = REC_SKU_SET, .seq = 1, .id = 9});
    allot_put_u16(b + 4, REC_RESTOCK);
    cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD);
    cr_assert(strstr(why, "payload size"), "%s", why);

    /* A PLACE too short for its own head, at the end of readable memory:
     * refused before anything past the record is read. */
    for (size_t plen = 8; plen < REC_PLACE_HEAD + REC_LINE_SIZE; plen += 8) {
        len = REC_HEADER_SIZE + plen + REC_TRAILER_SIZE;
        memset(b, 0, len);
        allot_put_u32(b, (uint32_t)len);
        allot_put_u16(b + 4, REC_PLACE);
        allot_put_u64(b + 8, 1);
        cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD, "PLACE of %zu bytes", len);
        cr_assert(strstr(why, "payload size"), "%s", why);
    }

    /* PLACE whose line count disagrees with its length. */
    eng_line_t two[2] = {{.sku = 1, .qty = 1}, {.sku = 2, .qty = 1}};
    eng_record_t place = {.type = REC_PLACE, .seq = 1, .id = 9, .line_count = 2, .lines = two};
    static const uint8_t counts[] = {0, 1, 3, 64, 65, 255};
    for (size_t i = 0; i < sizeof counts; i++) {
        len = encode(b, place);
        b[24 + 33] = counts[i];
        cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD, "line_count %u", counts[i]);
        cr_assert(strstr(why, "line count"), "%s", why);
    }

    /* Padding must be zero: a record has exactly one encoding. */
    for (int i = 58; i < 64; i++) {
        len = encode(b, place);
        b[i] = 0x5a;
        cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD, "PLACE padding byte %d", i);
    }
    for (int i = 28; i < 32; i++) {
        len = encode(b, (eng_record_t){.type = REC_RETIRE, .seq = 1, .count = 4});
        b[i] = 1;
        cr_assert_eq(decode_resealed(b, len, &why), REC_STATUS_BAD, "RETIRE padding byte %d", i);
    }
}

Test(format, length_word_is_checked_first)
{
    uint8_t b[REC_SIZE_MAX + 64] = {0};
    eng_record_t out;
    eng_line_t lines[ALLOT_LINES_MAX];
    size_t size;
    const char *why;
    cr_assert_eq(rec_decode(b, sizeof b, &out, lines, &size, &why), REC_STATUS_END);
    cr_assert_eq(rec_decode(b, 0, &out, lines, &size, &why), REC_STATUS_END);
    static const uint32_t bad[] = {8, REC_SIZE_MIN - 8, REC_SIZE_MIN + 4, 41, REC_SIZE_MAX + 8,
                                   0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        allot_put_u32(b, bad[i]);
        cr_assert_eq(rec_decode(b, sizeof b, &out, lines, &size, &why), REC_STATUS_BAD,
                     "length %u", bad[i]);
        cr_assert(strstr(why, "length"), "%s", why);
    }
    uint8_t three[3] = {1, 0, 0};
    cr_assert_eq(rec_decode(at_page_end(three, 3), 3, &out, lines, &size, &why),
                 REC_STATUS_SHORT);
}

Test(format, random_bytes_never_crash_the_decoder)
{
    uint64_t rng = 99;
    uint8_t buf[REC_SIZE_MAX + 16];
    eng_record_t out;
    eng_line_t lines[ALLOT_LINES_MAX];
    for (int i = 0; i < 200000; i++) {
        size_t len = (size_t)(sim_rand(&rng) % sizeof buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)sim_rand(&rng);
        if (len >= 4 && i % 2)
            allot_put_u32(buf, (uint32_t)(REC_SIZE_MIN + 8 * (sim_rand(&rng) % 130)));
        size_t size = 0;
        const char *why = NULL;
        enum rec_status s = rec_decode(at_page_end(buf, len), len, &out, lines, &size, &why);
        cr_assert(s <= REC_STATUS_BAD);
        if (s == REC_STATUS_BAD)
            cr_assert_not_null(why);
        if (s == REC_STATUS_OK)
            cr_assert(size <= len && size >= REC_SIZE_MIN);
    }
}

/* ---- segment header ---------------------------------------------------------- */

static seg_header_t sample_header(void)
{
    return (seg_header_t){.version = JOURNAL_VERSION, .first_seq = 123456789,
                          .created_ms = 1700000000000, .segment_size = 64u << 20,
                          .params = {.retain_max = 1000, .retain_ms = 3600000,
                                     .hold_max_ms = 1800000}};
}

Test(format, segment_header_round_trips_at_documented_offsets)
{
    seg_header_t h = sample_header(), out;
    uint8_t b[SEG_HEADER_SIZE];
    seg_header_encode(b, &h);
    const char *why = NULL;
    cr_assert_eq(seg_header_decode(at_page_end(b, sizeof b), sizeof b, &out, &why), 0, "%s", why);
    cr_assert_eq(out.version, h.version);
    cr_assert_eq(out.first_seq, h.first_seq);
    cr_assert_eq(out.created_ms, h.created_ms);
    cr_assert_eq(out.segment_size, h.segment_size);
    cr_assert_eq(out.params.retain_max, h.params.retain_max);
    cr_assert_eq(out.params.retain_ms, h.params.retain_ms);
    cr_assert_eq(out.params.hold_max_ms, h.params.hold_max_ms);
    cr_assert(memcmp(b, "ALLOTJNL", 8) == 0);
    cr_assert_eq(allot_get_u32(b + 8), JOURNAL_VERSION);
    cr_assert_eq(allot_get_u32(b + 12), SEG_HEADER_SIZE);
    cr_assert_eq(allot_get_u64(b + 16), h.first_seq);
    cr_assert_eq(allot_get_u64(b + 24), h.created_ms);
    cr_assert_eq(allot_get_u64(b + 32), h.segment_size);
    cr_assert_eq(allot_get_u32(b + 40), h.params.retain_max);
    cr_assert_eq(allot_get_u64(b + 48), h.params.retain_ms);
    cr_assert_eq(allot_get_u64(b + 56), h.params.hold_max_ms);
    for (int i = 44; i < 48; i++)
        cr_assert_eq(b[i], 0);
    for (int i = 64; i < 120; i++)
        cr_assert_eq(b[i], 0, "reserved byte %d", i);
    cr_assert_eq(allot_get_u64(b + 120), XXH3_64bits(b, 120));
}

Test(format, segment_header_corruption_is_refused)
{
    seg_header_t h = sample_header(), out;
    uint8_t b[SEG_HEADER_SIZE];
    const char *why;
    for (size_t bit = 0; bit < SEG_HEADER_SIZE * 8; bit++) {
        seg_header_encode(b, &h);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        why = NULL;
        cr_assert_eq(seg_header_decode(at_page_end(b, sizeof b), sizeof b, &out, &why), -1,
                     "bit %zu", bit);
        cr_assert_not_null(why);
    }
    seg_header_encode(b, &h);
    for (size_t len = 0; len < SEG_HEADER_SIZE; len++)
        cr_assert_eq(seg_header_decode(at_page_end(b, len), len, &out, &why), -1);

    /* Well sealed, but not acceptable. */
    h.version = 2;
    seg_header_encode(b, &h);
    cr_assert_eq(seg_header_decode(b, sizeof b, &out, &why), -1);
    cr_assert(strstr(why, "version"), "%s", why);
    h = sample_header();
    h.first_seq = 0;
    seg_header_encode(b, &h);
    cr_assert_eq(seg_header_decode(b, sizeof b, &out, &why), -1);
    h = sample_header();
    h.segment_size = SEG_HEADER_SIZE + REC_SIZE_MAX - 1;
    seg_header_encode(b, &h);
    cr_assert_eq(seg_header_decode(b, sizeof b, &out, &why), -1);
    h.segment_size++;
    seg_header_encode(b, &h);
    cr_assert_eq(seg_header_decode(b, sizeof b, &out, &why), 0);
}

Test(format, record_type_names)
{
    cr_assert_str_eq(eng_record_type_name(REC_PLACE), "PLACE");
    cr_assert_str_eq(eng_record_type_name(REC_EXTEND), "EXTEND");
    cr_assert_str_eq(eng_record_type_name(0), "UNKNOWN");
    cr_assert_str_eq(eng_record_type_name(REC_TYPE_COUNT), "UNKNOWN");
}
