/* SentencePiece BPE tokenizer ("llama" vocabularies), built from GGUF metadata.
 *
 * Tokenizing: the text (with a space put in front when add_space_prefix) has its
 * spaces replaced by U+2581 and is split into UTF-8 characters; then the adjacent
 * pair whose concatenation is the highest-scoring vocabulary piece is merged, over
 * and over (ties: leftmost pair), with a heap of candidate pairs over a linked list
 * of symbols, so the work is O(n log n).
 *
 * Which pieces text can turn into follows SentencePiece: normal, user-defined and
 * unused pieces take part in merging; control (<s>), unknown (<unk>) and byte
 * (<0xNN>) pieces never do, so "<s>" in the text stays characters. An unused piece
 * is never emitted: it is split back into the pieces it was merged from. A single
 * character that is no piece becomes its <0xNN> byte tokens (or <unk> when the
 * vocabulary lacks one of them). */
#include "llamad/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/error.h"
#include "utf8.h"

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's stand-in for a space. */
#define SPACE_MARK "\xe2\x96\x81"
#define SPACE_MARK_LEN 3

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

/* Open-addressing hash table from piece text to token id. */
struct piece_map {
    int32_t *slots; /* -1 when empty */
    size_t mask;    /* slot count - 1; the count is a power of two */
};

struct llamad_tokenizer {
    int32_t n_vocab;
    char *text;    /* every piece, each followed by a NUL */
    size_t *start; /* piece i is text[start[i] .. start[i] + len[i]) */
    size_t *len;
    float *score;
    uint8_t *kind;          /* enum llamad_token_kind */
    struct piece_map all;   /* every non-empty piece */
    struct piece_map merge; /* the pieces text can merge into */
    size_t max_merge_len;   /* longest piece in `merge`, in bytes */
    int32_t byte_token[256]; /* -1 when the vocabulary lacks <0xNN> */
    int32_t bos, eos, unk, eot;
    bool add_bos, add_space_prefix;
};

/* ---- Piece lookup ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static const char *piece_of(const struct llamad_tokenizer *t, int32_t id)
{
    return t->text + t->start[id];
}

static bool piece_is(const struct llamad_tokenizer *t, int32_t id, const char *s, size_t n)
{
    return t->len[id] == n && memcmp(piece_of(t, id), s, n) == 0;
}

static int32_t map_find(const struct llamad_tokenizer *t, const struct piece_map *m,
                        const char *s, size_t n)
{
    /* The table is at most half full, so probing always reaches an empty slot. */
    for (size_t i = hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0 || piece_is(t, id, s, n))
            return id;
    }
}

static bool any_kind(enum llamad_token_kind k)
{
    (void)k;
    return true;
}

static bool mergeable_kind(enum llamad_token_kind k)
{
    return k == LLAMAD_TOKEN_NORMAL || k == LLAMAD_TOKEN_USER_DEFINED || k == LLAMAD_TOKEN_UNUSED;
}

/* Indexes the non-empty pieces whose kind `wanted` accepts; a piece that occurs
 * twice keeps its first id. */
static int map_build(const struct llamad_tokenizer *t, struct piece_map *m,
                     bool (*wanted)(enum llamad_token_kind))
{
    size_t cap = 16;
    while (cap < 2 * (size_t)t->n_vocab)
        cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return LLAMAD_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        m->slots[i] = -1;
    m->mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->len[id] == 0 || !wanted(t->kind[id]))
            continue;
        const char *s = piece_of(t, id);
        size_t i = hash_bytes(s, t->len[id]) & m->mask;
        while (m->slots[i] >= 0 && !piece_is(t, m->slots[i], s, t->len[id]))
            i = (i + 1) & m->mask;
        if (m->slots[i] < 0)
            m->slots[i] = id;
    }
    return LLAMAD_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte a "<0xNN>" piece stands for, or -1 when the piece has another form. */
static int byte_piece_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* ---- Loading ---- */

static const char *model_family(struct llamad_gguf_str model)
{
    static const struct {
        const char *name, *family;
    } known[] = {
        {"gpt2", "byte-level BPE"}, {"bert", "WordPiece"}, {"t5", "Unigram"},
        {"rwkv", "RWKV"},           {"plamo2", "PLaMo-2"}, {"no_vocab", "empty"},
        {"none", "empty"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (llamad_gguf_str_eq(model, known[i].name))
            return known[i].family;
    return NULL;
}

static int check_model(const struct llamad_gguf *g, char *err, size_t errsz)
{
    if (!llamad_gguf_find(g, KEY_MODEL))
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "no %s: the file carries no vocabulary",
                           KEY_MODEL);
    struct llamad_gguf_str model;
    int rc = llamad_gguf_get_str(g, KEY_MODEL, &model, err, errsz);
    if (rc)
        return rc;
    if (llamad_gguf_str_eq(model, "llama"))
        return LLAMAD_OK;
    int shown = model.len > 64 ? 64 : (int)model.len;
    const char *family = model_family(model);
    if (family)
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "%s is \"%.*s\": %.*s (%s) vocabularies are not supported; only "
                           "\"llama\" (SentencePiece BPE) is",
                           KEY_MODEL, shown, model.data, shown, model.data, family);
    return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                       "%s is \"%.*s\": unknown vocabulary type; only \"llama\" "
                       "(SentencePiece BPE) is supported",
                       KEY_MODEL, shown, model.data);
}

/* An optional per-token array: *out is NULL when absent. */
static int optional_array(const struct llamad_gguf *g, const char *key, enum llamad_gguf_type elem,
                          uint64_t n, const struct llamad_gguf_value **out, char *err,
                          size_t errsz)
{
    *out = NULL;
    if (!llamad_gguf_find(g, key))
        return LLAMAD_OK;
    int rc = llamad_gguf_get_array(g, key, (int)elem, out, err, errsz);
    if (rc)
        return rc;
    if ((*out)->arr.count != n)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "%s has %llu entries but %s has %llu", key,
                           (unsigned long long)(*out)->arr.count, KEY_TOKENS,
                           (unsigned long long)n);
    return LLAMAD_OK;
}

static int optional_bool(const struct llamad_gguf *g, const char *key, bool dflt, bool *out,
                         char *err, size_t errsz)
{
    *out = dflt;
    return llamad_gguf_find(g, key) ? llamad_gguf_get_bool(g, key, out, err, errsz) : LLAMAD_OK;
}

/* An optional token id; a stored 0xFFFFFFFF (or -1) means "none". A default
 * outside the vocabulary means none too. */
static int optional_token_id(const struct llamad_gguf *g, const char *key, int32_t n_vocab,
                             int32_t dflt, int32_t *out, char *err, size_t errsz)
{
    *out = dflt < n_vocab ? dflt : -1;
    if (!llamad_gguf_find(g, key))
        return LLAMAD_OK;
    int64_t v;
    int rc = llamad_gguf_get_int(g, key, -1, UINT32_MAX, &v, err, errsz);
    if (rc)
        return rc;
    if (v == -1 || v == UINT32_MAX) {
        *out = -1;
        return LLAMAD_OK;
    }
    if (v >= n_vocab)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "%s is %lld but the vocabulary has only %d tokens", key, (long long)v,
                           (int)n_vocab);
    *out = (int32_t)v;
    return LLAMAD_OK;
}

static struct llamad_tokenizer *tokenizer_alloc(int32_t n)
{
    struct llamad_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_vocab = n;
    t->start = malloc((size_t)n * sizeof *t->start);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->kind = malloc((size_t)n * sizeof *t->kind);
    if (!t->start || !t->len || !t->score || !t->kind) {
        llamad_tokenizer_free(t);
        return NULL;
    }
    return t;
}

static int copy_pieces(struct llamad_tokenizer *t, const struct llamad_gguf_value *tokens,
                       char *err, size_t errsz)
{
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        struct llamad_gguf_str s = llamad_gguf_array_get(tokens, (uint64_t)i).str;
        if (s.len && memchr(s.data, '\0', s.len))
            return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                               "%s: piece of token %d contains a NUL byte", KEY_TOKENS, (int)i);
        t->start[i] = total;
        t->len[i] = s.len;
        total += s.len + 1;
    }
    t->text = malloc(total);
    if (!t->text)
        return LLAMAD_ENOMEM;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        struct llamad_gguf_str s = llamad_gguf_array_get(tokens, (uint64_t)i).str;
        if (s.len)
            memcpy(t->text + t->start[i], s.data, s.len);
        t->text[t->start[i] + s.len] = '\0';
    }
    return LLAMAD_OK;
}

/* Scores and kinds, with their defaults (0 and NORMAL) where the arrays are absent. */
static int copy_scores_kinds(struct llamad_tokenizer *t, const struct llamad_gguf_value *scores,
                             const struct llamad_gguf_value *types, char *err, size_t errsz)
{
    for (int32_t i = 0; i < t->n_vocab; i++) {
        double score = scores ? llamad_gguf_array_get(scores, (uint64_t)i).f64 : 0.0;
        int64_t kind = types ? llamad_gguf_array_get(types, (uint64_t)i).i64 : LLAMAD_TOKEN_NORMAL;
        if (isnan(score))
            return llamad_fail(err, errsz, LLAMAD_EFORMAT, "%s: score of token %d is NaN",
                               KEY_SCORES, (int)i);
        if (kind < LLAMAD_TOKEN_NORMAL || kind > LLAMAD_TOKEN_BYTE)
            return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                               "%s: token %d has type %lld, outside 1..6", KEY_TYPES, (int)i,
                               (long long)kind);
        t->score[i] = (float)score;
        t->kind[i] = (uint8_t)kind;
    }
    return LLAMAD_OK;
}

static int index_bytes(struct llamad_tokenizer *t, char *err, size_t errsz)
{
    for (int b = 0; b < 256; b++)
        t->byte_token[b] = -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->kind[i] != LLAMAD_TOKEN_BYTE)
            continue;
        int b = byte_piece_value(piece_of(t, i), t->len[i]);
        if (b < 0)
            return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                               "token %d has type BYTE but its piece is not <0xNN>", (int)i);
        if (t->byte_token[b] < 0)
            t->byte_token[b] = i;
    }
    return LLAMAD_OK;
}

static int build_index(struct llamad_tokenizer *t, char *err, size_t errsz)
{
    int rc = index_bytes(t, err, errsz);
    if (rc)
        return rc;
    if ((rc = map_build(t, &t->all, any_kind)) || (rc = map_build(t, &t->merge, mergeable_kind)))
        return rc;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (mergeable_kind(t->kind[i]) && t->len[i] > t->max_merge_len)
            t->max_merge_len = t->len[i];
    return LLAMAD_OK;
}

static int read_specials(const struct llamad_gguf *g, struct llamad_tokenizer *t, char *err,
                         size_t errsz)
{
    int32_t n = t->n_vocab;
    int rc;
    if ((rc = optional_token_id(g, "tokenizer.ggml.bos_token_id", n, 1, &t->bos, err, errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.eos_token_id", n, 2, &t->eos, err, errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.unknown_token_id", n, 0, &t->unk, err,
                                errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.eot_token_id", n, -1, &t->eot, err, errsz)) ||
        (rc = optional_bool(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos, err, errsz)) ||
        (rc = optional_bool(g, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix, err,
                            errsz)))
        return rc;
    if (t->add_bos && t->bos < 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "tokenizer.ggml.add_bos_token is true but there is no BOS token");
    return LLAMAD_OK;
}

/* Byte fallback needs all 256 byte tokens; without them <unk> stands in. */
static int check_coverage(const struct llamad_tokenizer *t, char *err, size_t errsz)
{
    if (t->unk >= 0)
        return LLAMAD_OK;
    for (int b = 0; b < 256; b++)
        if (t->byte_token[b] < 0)
            return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                               "the vocabulary has no <0x%02X> byte token and no unknown token, "
                               "so some text could not be tokenized",
                               b);
    return LLAMAD_OK;
}

int llamad_tokenizer_load(const struct llamad_gguf *g, struct llamad_tokenizer **out, char *err,
                          size_t errsz)
{
    *out = NULL;
    int rc = check_model(g, err, errsz);
    if (rc)
        return rc;
    if (!llamad_gguf_find(g, KEY_TOKENS))
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "no %s in the file", KEY_TOKENS);
    const struct llamad_gguf_value *tokens, *scores, *types;
    if ((rc = llamad_gguf_get_array(g, KEY_TOKENS, LLAMAD_GGUF_STRING, &tokens, err, errsz)))
        return rc;
    uint64_t n = tokens->arr.count;
    if (n == 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "%s is empty", KEY_TOKENS);
    if (n > INT32_MAX)
        return llamad_fail(err, errsz, LLAMAD_ERANGE, "%s has %llu entries, more than 2^31 - 1",
                           KEY_TOKENS, (unsigned long long)n);
    if ((rc = optional_array(g, KEY_SCORES, LLAMAD_GGUF_FLOAT32, n, &scores, err, errsz)) ||
        (rc = optional_array(g, KEY_TYPES, LLAMAD_GGUF_INT32, n, &types, err, errsz)))
        return rc;

    struct llamad_tokenizer *t = tokenizer_alloc((int32_t)n);
    if (!t)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory loading the vocabulary");
    if ((rc = copy_pieces(t, tokens, err, errsz)) ||
        (rc = copy_scores_kinds(t, scores, types, err, errsz)) ||
        (rc = build_index(t, err, errsz)) || (rc = read_specials(g, t, err, errsz)) ||
        (rc = check_coverage(t, err, errsz))) {
        if (rc == LLAMAD_ENOMEM)
            llamad_fail(err, errsz, rc, "out of memory loading the vocabulary");
        llamad_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return LLAMAD_OK;
}

void llamad_tokenizer_free(struct llamad_tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->start);
    free(t->len);
    free(t->score);
    free(t->kind);
    free(t->all.slots);
    free(t->merge.slots);
    free(t);
}

/* ---- Accessors ---- */

enum llamad_vocab_type llamad_tokenizer_type(const struct llamad_tokenizer *t)
{
    (void)t;
    return LLAMAD_VOCAB_SPM;
}

int32_t llamad_tokenizer_n_vocab(const struct llamad_tokenizer *t) { return t->n_vocab; }
int32_t llamad_tokenizer_bos(const struct llamad_tokenizer *t) { return t->bos; }
int32_t llamad_tokenizer_eos(const struct llamad_tokenizer *t) { return t->eos; }
int32_t llamad_tokenizer_unk(const struct llamad_tokenizer *t) { return t->unk; }
bool llamad_tokenizer_add_bos(const struct llamad_tokenizer *t) { return t->add_bos; }

bool llamad_tokenizer_add_space_prefix(const struct llamad_tokenizer *t)
{
    return t->add_space_prefix;
}

static bool valid_id(const struct llamad_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab;
}

bool llamad_tokenizer_is_eog(const struct llamad_tokenizer *t, int32_t id)
{
    return valid_id(t, id) && (id == t->eos || id == t->eot);
}

enum llamad_token_kind llamad_tokenizer_kind(const struct llamad_tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? (enum llamad_token_kind)t->kind[id] : (enum llamad_token_kind)0;
}

const char *llamad_tokenizer_piece(const struct llamad_tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? piece_of(t, id) : NULL;
}

int32_t llamad_tokenizer_find(const struct llamad_tokenizer *t, const char *piece, size_t len)
{
    return len ? map_find(t, &t->all, piece, len) : -1;
}

/* ---- Tokenizing ---- */

/* A run of the (escaped) text: a character, or what merges made of several. */
struct node {
    uint32_t start, len;
    int32_t left, right; /* the two nodes merged into this one; -1 for a character */
};

/* A live symbol in the linked list; `node` is -1 once merged into its left neighbour. */
struct symbol {
    int32_t prev, next, node;
};

/* A candidate merge of symbol `left` with its right neighbour `right`, valid as
 * long as both still hold the nodes they held when it was queued. */
struct bigram {
    float score;
    int32_t left, right, left_node, right_node;
};

struct session {
    const struct llamad_tokenizer *t;
    char *text;
    struct symbol *sym;
    struct node *node;
    int32_t n_node;
    struct bigram *heap;
    size_t n_heap;
    int32_t *out; /* ids beyond cap are counted, not stored */
    size_t cap, n_out;
};

static void *alloc_array(size_t count, size_t size)
{
    return count > SIZE_MAX / size ? NULL : malloc(count * size);
}

/* Highest score first; among equal scores the leftmost pair. */
static bool bigram_before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct session *s, struct bigram b)
{
    size_t i = s->n_heap++;
    while (i > 0 && bigram_before(&b, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = b;
}

static struct bigram heap_pop(struct session *s)
{
    struct bigram top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap)
            break;
        if (c + 1 < s->n_heap && bigram_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!bigram_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap > 0)
        s->heap[i] = last;
    return top;
}

/* Queues the merge of symbols a and b (adjacent) when their text is a piece. */
static void try_bigram(struct session *s, int32_t a, int32_t b)
{
    if (a < 0 || b < 0)
        return;
    const struct node *l = &s->node[s->sym[a].node], *r = &s->node[s->sym[b].node];
    size_t len = (size_t)l->len + r->len;
    if (len > s->t->max_merge_len)
        return;
    int32_t id = map_find(s->t, &s->t->merge, s->text + l->start, len);
    if (id < 0)
        return;
    heap_push(s, (struct bigram){s->t->score[id], a, b, s->sym[a].node, s->sym[b].node});
}

static void merge_all(struct session *s)
{
    while (s->n_heap > 0) {
        struct bigram bg = heap_pop(s);
        struct symbol *l = &s->sym[bg.left], *r = &s->sym[bg.right];
        if (l->node != bg.left_node || r->node != bg.right_node)
            continue; /* one side changed since this pair was queued */
        const struct node *ln = &s->node[l->node], *rn = &s->node[r->node];
        int32_t k = s->n_node++;
        s->node[k] = (struct node){ln->start, ln->len + rn->len, l->node, r->node};
        l->node = k;
        r->node = -1;
        l->next = r->next;
        if (r->next >= 0)
            s->sym[r->next].prev = bg.left;
        try_bigram(s, l->prev, bg.left);
        try_bigram(s, bg.left, l->next);
    }
}

static void put(struct session *s, int32_t id)
{
    if (s->n_out < s->cap)
        s->out[s->n_out] = id;
    s->n_out++;
}

static void byte_fallback(struct session *s, const struct node *n)
{
    const uint8_t *p = (const uint8_t *)s->text + n->start;
    for (uint32_t i = 0; i < n->len; i++)
        if (s->t->byte_token[p[i]] < 0) {
            put(s, s->t->unk); /* the load check guarantees an unk then */
            return;
        }
    for (uint32_t i = 0; i < n->len; i++)
        put(s, s->t->byte_token[p[i]]);
}

/* Emits node k: its piece, or (an unused piece, or a character that is no piece)
 * the nodes it was merged from, or byte tokens. Recursion depth is bounded by the
 * length of the longest piece. */
static void emit(struct session *s, int32_t k)
{
    const struct node *n = &s->node[k];
    int32_t id = map_find(s->t, &s->t->merge, s->text + n->start, n->len);
    if (id >= 0 && s->t->kind[id] != LLAMAD_TOKEN_UNUSED) {
        put(s, id);
    } else if (n->left >= 0) {
        emit(s, n->left);
        emit(s, n->right);
    } else {
        byte_fallback(s, n);
    }
}

/* The text as SentencePiece sees it: the optional space prefix, spaces as U+2581. */
static char *escape_text(const struct llamad_tokenizer *t, const char *text, size_t len,
                         size_t *out_len)
{
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t marks = spaces + (t->add_space_prefix ? 1 : 0);
    size_t n = len - spaces + marks * SPACE_MARK_LEN;
    char *s = malloc(n), *w = s;
    if (!s)
        return NULL;
    if (t->add_space_prefix) {
        memcpy(w, SPACE_MARK, SPACE_MARK_LEN);
        w += SPACE_MARK_LEN;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w, SPACE_MARK, SPACE_MARK_LEN);
            w += SPACE_MARK_LEN;
        } else {
            *w++ = text[i];
        }
    }
    *out_len = n;
    return s;
}

/* Splits the text into characters (an invalid byte is one on its own) and queues
 * every adjacent pair that is a piece. */
static void split_chars(struct session *s, size_t len)
{
    int32_t n_sym = 0;
    for (size_t i = 0; i < len;) {
        size_t n;
        if (llamad_utf8_next(s->text + i, len - i, &n) != LLAMAD_UTF8_CHAR)
            n = 1;
        s->node[n_sym] = (struct node){(uint32_t)i, (uint32_t)n, -1, -1};
        s->sym[n_sym] = (struct symbol){n_sym - 1, i + n < len ? n_sym + 1 : -1, n_sym};
        n_sym++;
        i += n;
    }
    s->n_node = n_sym;
    for (int32_t i = 1; i < n_sym; i++)
        try_bigram(s, i - 1, i);
}

static int tokenize_text(struct session *s, const char *text, size_t len)
{
    size_t n;
    s->text = escape_text(s->t, text, len, &n);
    if (!s->text)
        return LLAMAD_ENOMEM;
    /* n bounds the characters; a text of n characters has at most n - 1 merges
     * (nodes: 2n) and queues at most n - 1 pairs plus two per merge (3n). */
    s->sym = alloc_array(n, sizeof *s->sym);
    s->node = alloc_array(n, 2 * sizeof *s->node);
    s->heap = alloc_array(n, 3 * sizeof *s->heap);
    if (!s->sym || !s->node || !s->heap)
        return LLAMAD_ENOMEM;
    split_chars(s, n);
    merge_all(s);
    for (int32_t i = 0; i >= 0; i = s->sym[i].next)
        emit(s, s->sym[i].node);
    return LLAMAD_OK;
}

int64_t llamad_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        bool add_bos, int32_t *out, size_t cap)
{
    if (!t || (!text && len) || (!out && cap) || (add_bos && t->bos < 0))
        return LLAMAD_EINVAL;
    /* Indices are int32_t: the escaped text (3 bytes per space) gets 2 nodes per byte. */
    if (len > (INT32_MAX / 2 - SPACE_MARK_LEN) / SPACE_MARK_LEN)
        return LLAMAD_ERANGE;
    struct session s = {.t = t, .out = out, .cap = cap};
    if (add_bos)
        put(&s, t->bos);
    int rc = len ? tokenize_text(&s, text, len) : LLAMAD_OK;
    free(s.text);
    free(s.sym);
    free(s.node);
    free(s.heap);
    return rc ? rc : (int64_t)s.n_out;
}

/* ---- Detokenizing one token ---- */

static int append_unescaped(struct llamad_buf *out, const char *p, size_t n)
{
    const char *end = p + n, *mark;
    while ((mark = memmem(p, (size_t)(end - p), SPACE_MARK, SPACE_MARK_LEN))) {
        int rc = llamad_buf_append(out, p, (size_t)(mark - p));
        if (rc || (rc = llamad_buf_append(out, " ", 1)))
            return rc;
        p = mark + SPACE_MARK_LEN;
    }
    return llamad_buf_append(out, p, (size_t)(end - p));
}

int llamad_token_to_bytes(const struct llamad_tokenizer *t, int32_t id, struct llamad_buf *out)
{
    if (!valid_id(t, id))
        return LLAMAD_EINVAL;
    const char *p = piece_of(t, id);
    size_t n = t->len[id], base = out->len;
    int rc = LLAMAD_OK;
    switch ((enum llamad_token_kind)t->kind[id]) {
    case LLAMAD_TOKEN_NORMAL:
        rc = append_unescaped(out, p, n);
        break;
    case LLAMAD_TOKEN_USER_DEFINED:
        rc = llamad_buf_append(out, p, n);
        break;
    case LLAMAD_TOKEN_BYTE: {
        uint8_t b = (uint8_t)byte_piece_value(p, n); /* checked at load */
        rc = llamad_buf_append(out, &b, 1);
        break;
    }
    case LLAMAD_TOKEN_UNKNOWN: /* as llama.cpp renders non-special text: nothing */
    case LLAMAD_TOKEN_CONTROL:
    case LLAMAD_TOKEN_UNUSED:
        break;
    }
    if (rc && out->data) {
        out->len = base; /* no half-appended piece */
        out->data[base] = '\0';
    }
    return rc;
}
