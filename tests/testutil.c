#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/base/random.h"
#include "llamad/format/gguf.h"
#include "llamad/model/model.h"
#include "llamad/tokenizer/tokenizer.h"

static char path_buf[4096];

const char *test_data_path(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", LLAMAD_TEST_DATA_DIR, name);
    return path_buf;
}

const char *test_model_path(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", LLAMAD_MODELS_DIR, name);
    return path_buf;
}

const char *test_shared_path(const char *rel)
{
    const char *dir = getenv("LLAMAD_SHARED_DIR");
    if (!dir)
        dir = getenv("LLAMAD_SHARED_DIR_DEFAULT");
    if (!dir)
        return NULL;
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, rel);
    return access(path_buf, R_OK) == 0 ? path_buf : NULL;
}

struct llamad_tokenizer *test_load_tokenizer(const char *path)
{
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_gguf *g = NULL;
    struct llamad_tokenizer *t = NULL;
    int rc = llamad_gguf_open(path, &g, err, sizeof err);
    if (rc == LLAMAD_OK) {
        rc = llamad_tokenizer_load(g, &t, err, sizeof err);
        llamad_gguf_close(g);
    }
    if (rc)
        fprintf(stderr, "cannot load %s: %s\n", path, err);
    return t;
}

struct llamad_model *test_load_model(const char *path)
{
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_model *m = NULL;
    int rc = llamad_model_load(path, &m, err, sizeof err);
    if (rc)
        fail_msg("cannot load %s: %s", path, err);
    return m;
}

struct llamad_model *test_load_bundled_model(void)
{
    return test_load_model(test_model_path("stories260K.gguf"));
}

char *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) != NULL) {
        if (fread(data, 1, (size_t)n, f) == (size_t)n) {
            data[n] = '\0';
            *size = (size_t)n;
        } else {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    return data;
}

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

void test_rand_seed(uint64_t seed)
{
    rng_state = seed;
}

uint32_t test_rand_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

float test_rand_float(float lo, float hi)
{
    return lo + (hi - lo) * (float)(test_rand_u32() >> 8) * 0x1p-24f;
}

static uint64_t splitmix_state;

void test_splitmix_seed(uint64_t seed)
{
    splitmix_state = seed;
}

uint64_t test_splitmix_u64(void)
{
    return llamad_splitmix64(&splitmix_state);
}

float test_splitmix_float(void)
{
    return (float)((double)(test_splitmix_u64() >> 40) * 0x1p-23 - 1.0);
}

float test_splitmix_normal(void)
{
    return llamad_random_normal(&splitmix_state);
}
