/* Shared helpers of the C tests. */
#ifndef LLAMAD_TESTUTIL_H
#define LLAMAD_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

struct llamad_model;
struct llamad_tokenizer;

/* tests/data/<name>, in a static buffer overwritten by the next call. */
const char *test_data_path(const char *name);

/* models/<name>: the bundled model's directory. */
const char *test_model_path(const char *name);

/* ../shared/<rel> beside the checkout (or $LLAMAD_SHARED_DIR/<rel>) when that
 * file exists, else NULL: tests that need it skip. */
const char *test_shared_path(const char *rel);

/* The tokenizer of a GGUF file; NULL (and a message) when it does not load. */
struct llamad_tokenizer *test_load_tokenizer(const char *path);

/* A model file, loaded; fails the test when it cannot be. */
struct llamad_model *test_load_model(const char *path);
/* The bundled model, loaded; fails the test when it cannot be. */
struct llamad_model *test_load_bundled_model(void);

/* Two fixed-seed generators, each giving the same sequence in every run; both
 * stay because tests hold to data drawn from each.
 *
 * xorshift64 (13, 7, 17) from 0x2545F4914F6CDD1D, or from test_rand_seed's seed:
 * the next 32 random bits, and a float uniform in [lo, hi). */
void test_rand_seed(uint64_t seed);
uint32_t test_rand_u32(void);
float test_rand_float(float lo, float hi);

/* splitmix64 (llamad/base/random.h) from test_splitmix_seed's seed: the next 64
 * random bits, a float uniform in [-1, 1), and a standard normal value. */
void test_splitmix_seed(uint64_t seed);
uint64_t test_splitmix_u64(void);
float test_splitmix_float(void);
float test_splitmix_normal(void);

/* Reads a whole file (NUL-terminated); *size gets its length. NULL on failure. */
char *test_read_file(const char *path, size_t *size);

#endif
