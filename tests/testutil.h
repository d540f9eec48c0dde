/* Shared helpers of the C tests. */
#ifndef LLAMAD_TESTUTIL_H
#define LLAMAD_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

struct llamad_model;

/* tests/data/<name>, in a static buffer overwritten by the next call. */
const char *test_data_path(const char *name);

/* models/<name>: the bundled model's directory. */
const char *test_model_path(const char *name);

/* ../shared/<rel> beside the checkout (or $LLAMAD_SHARED_DIR/<rel>) when that
 * file exists, else NULL: tests that need it skip. */
const char *test_shared_path(const char *rel);

/* The bundled model, loaded; fails the test when it cannot be. */
struct llamad_model *test_load_bundled_model(void);

/* A fixed-seed xorshift generator, the same sequence in every run: the next 32
 * random bits, and a float uniform in [lo, hi). */
uint32_t test_rand_u32(void);
float test_rand_float(float lo, float hi);

/* Reads a whole file (NUL-terminated); *size gets its length. NULL on failure. */
char *test_read_file(const char *path, size_t *size);

#endif
