/* The vocabulary of a GGUF file's `tokenizer.ggml.*` metadata: loading it, looking
 * pieces up, and what a token stands for. Tokenizing is in tokenizer_spm.c
 * (SentencePiece) and tokenizer_bpe.c (byte-level BPE). */
#include "llamad/tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "tokenizer_internal.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

static bool any_kind(enum llamad_token_kind k)
{
    (void)k;
    return true;
}

static bool mergeable_kind(enum llamad_token_kind k)
{
    return k == LLAMAD_TOKEN_NORMAL || k == LLAMAD_TOKEN_USER_DEFINED || k == LLAMAD_TOKEN_UNUSED;
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
        {"bert", "WordPiece"}, {"t5", "Unigram"},     {"rwkv", "RWKV"},
        {"plamo2", "PLaMo-2"}, {"no_vocab", "empty"}, {"none", "empty"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (llamad_gguf_str_eq(model, known[i].name))
            return known[i].family;
    return NULL;
}

static int read_type(const struct llamad_gguf *g, enum llamad_vocab_type *type, char *err,
                     size_t errsz)
{
    if (!llamad_gguf_find(g, KEY_MODEL))
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "no %s: the file carries no vocabulary",
                           KEY_MODEL);
    struct llamad_gguf_str model;
    int rc = llamad_gguf_get_str(g, KEY_MODEL, &model, err, errsz);
    if (rc)
        return rc;
    *type = llamad_gguf_str_eq(model, "llama")  ? LLAMAD_VOCAB_SPM
            : llamad_gguf_str_eq(model, "gpt2") ? LLAMAD_VOCAB_BPE
                                                : (enum llamad_vocab_type)0;
    if (*type)
        return LLAMAD_OK;
    int shown = model.len > 64 ? 64 : (int)model.len;
    const char *family = model_family(model);
    if (family)
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "%s is \"%.*s\": %.*s (%s) vocabularies are not supported; only "
                           "\"llama\" (SentencePiece BPE) and \"gpt2\" (byte-level BPE) are",
                           KEY_MODEL, shown, model.data, shown, model.data, family);
    return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                       "%s is \"%.*s\": unknown vocabulary type; only \"llama\" "
                       "(SentencePiece BPE) and \"gpt2\" (byte-level BPE) are supported",
                       KEY_MODEL, shown, model.data);
}

/* An optional per-token array: *out is NULL when absent. */
static int optional_array(const struct llamad_gguf *g, const char *key, enum llamad_gguf_type elem,
                          uint64_t n, const struct llamad_gguf_value **out, char *err, size_t errsz)
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
        int b = byte_piece_value(llamad_piece_text(t, i), t->len[i]);
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
    if ((rc = llamad_piece_map_build(t, &t->all, any_kind)) ||
        (rc = llamad_piece_map_build(t, &t->merge, mergeable_kind)))
        return rc;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (mergeable_kind(t->kind[i]) && t->len[i] > t->max_merge_len)
            t->max_merge_len = t->len[i];
    return LLAMAD_OK;
}

/* Control tokens that end a turn or a text in the families built on LLaMA's
 * architecture, found by their text as the reference implementation does, since
 * files name one EOS id and often not the others: LLaMA-3's end of turn, of a
 * tool message and of text; LLaMA-1/2's and Mistral's </s>; ChatML's and
 * Phi-3's end of turn; GPT-style end of text; Gemma's end of turn. */
static const char *const end_of_generation_texts[] = {
    "<|eot_id|>",    "<|eom_id|>",    "<|end_of_text|>",       "</s>",  "<|im_end|>", "<|end|>",
    "<|endoftext|>", "<end_of_turn>", "<|END_OF_TURN_TOKEN|>", "<EOT>",
};

static void add_eog(struct llamad_tokenizer *t, int32_t id)
{
    if (id < 0 || t->n_eog == LLAMAD_MAX_EOG)
        return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return;
    t->eog[t->n_eog++] = id;
}

/* The ids the file names, then every control token whose text is on the list. */
static void find_end_of_generation(struct llamad_tokenizer *t)
{
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);
    for (size_t i = 0; i < sizeof end_of_generation_texts / sizeof end_of_generation_texts[0];
         i++) {
        const char *s = end_of_generation_texts[i];
        const int32_t id = llamad_piece_map_find(t, &t->all, s, strlen(s));
        if (id >= 0 && t->kind[id] == LLAMAD_TOKEN_CONTROL)
            add_eog(t, id);
    }
}

/* clang-format off */
static const char *const chat_marker_texts[LLAMAD_CHAT_MARKERS] = {
    [LLAMAD_MARKER_INST] = "[INST]",
    [LLAMAD_MARKER_INST_END] = "[/INST]",
    [LLAMAD_MARKER_IM_START] = "<|im_start|>",
    [LLAMAD_MARKER_IM_END] = "<|im_end|>",
    [LLAMAD_MARKER_SYSTEM] = "<|system|>",
    [LLAMAD_MARKER_USER] = "<|user|>",
    [LLAMAD_MARKER_ASSISTANT] = "<|assistant|>",
    [LLAMAD_MARKER_START_HEADER] = "<|start_header_id|>",
    [LLAMAD_MARKER_END_HEADER] = "<|end_header_id|>",
    [LLAMAD_MARKER_EOT] = "<|eot_id|>",
    [LLAMAD_MARKER_BOS] = "<s>",
    [LLAMAD_MARKER_EOS] = "</s>",
    [LLAMAD_MARKER_AVAILABLE_TOOLS] = "[AVAILABLE_TOOLS]",
    [LLAMAD_MARKER_AVAILABLE_TOOLS_END] = "[/AVAILABLE_TOOLS]",
    [LLAMAD_MARKER_TOOL_CALLS] = "[TOOL_CALLS]",
    [LLAMAD_MARKER_TOOL_RESULTS] = "[TOOL_RESULTS]",
    [LLAMAD_MARKER_TOOL_RESULTS_END] = "[/TOOL_RESULTS]",
};
/* clang-format on */

const char *llamad_chat_marker_text(enum llamad_chat_marker m)
{
    return chat_marker_texts[m];
}

/* The user-defined pieces among the markers (tokenizer.h). */
static void find_chat_markers(struct llamad_tokenizer *t)
{
    for (int i = 0; i < LLAMAD_CHAT_MARKERS; i++) {
        const char *s = chat_marker_texts[i];
        const int32_t id = llamad_piece_map_find(t, &t->all, s, strlen(s));
        if (id >= 0 && t->kind[id] == LLAMAD_TOKEN_USER_DEFINED)
            t->marker[t->n_marker++] = id;
    }
}

/* Where a key is absent, SentencePiece has <unk>, <s>, </s> at ids 0, 1, 2 and
 * puts a space before the text; byte-level BPE has no fixed ids, and never puts
 * a space before the text (as in llama.cpp), whatever the file says. */
static int read_specials(const struct llamad_gguf *g, struct llamad_tokenizer *t, char *err,
                         size_t errsz)
{
    int32_t n = t->n_vocab;
    bool spm = t->type == LLAMAD_VOCAB_SPM;
    int rc;
    if ((rc = optional_token_id(g, "tokenizer.ggml.bos_token_id", n, spm ? 1 : -1, &t->bos, err,
                                errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.eos_token_id", n, spm ? 2 : -1, &t->eos, err,
                                errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1, &t->unk, err,
                                errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.eot_token_id", n, -1, &t->eot, err, errsz)) ||
        (rc = optional_token_id(g, "tokenizer.ggml.eom_token_id", n, -1, &t->eom, err, errsz)) ||
        (rc = optional_bool(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos, err, errsz)) ||
        (rc = optional_bool(g, "tokenizer.ggml.add_space_prefix", spm, &t->add_space_prefix, err,
                            errsz)))
        return rc;
    t->add_space_prefix = t->add_space_prefix && spm;
    find_end_of_generation(t);
    find_chat_markers(t);
    if (t->add_bos && t->bos < 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "tokenizer.ggml.add_bos_token is true but there is no BOS token");
    return LLAMAD_OK;
}

/* SentencePiece's byte fallback needs all 256 byte tokens; without them <unk>
 * stands in. */
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
    enum llamad_vocab_type type;
    int rc = read_type(g, &type, err, errsz);
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
    t->type = type;
    if ((rc = copy_pieces(t, tokens, err, errsz)) ||
        (rc = copy_scores_kinds(t, scores, types, err, errsz)) ||
        (rc = build_index(t, err, errsz)) || (rc = read_specials(g, t, err, errsz)) ||
        (rc = type == LLAMAD_VOCAB_SPM ? check_coverage(t, err, errsz)
                                       : llamad_bpe_load(g, t, err, errsz))) {
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
    llamad_bpe_free(t->bpe);
    free(t);
}

/* ---- Accessors ---- */

enum llamad_vocab_type llamad_tokenizer_type(const struct llamad_tokenizer *t)
{
    return t->type;
}

int32_t llamad_tokenizer_n_vocab(const struct llamad_tokenizer *t)
{
    return t->n_vocab;
}
int32_t llamad_tokenizer_bos(const struct llamad_tokenizer *t)
{
    return t->bos;
}
int32_t llamad_tokenizer_eos(const struct llamad_tokenizer *t)
{
    return t->eos;
}
int32_t llamad_tokenizer_unk(const struct llamad_tokenizer *t)
{
    return t->unk;
}
bool llamad_tokenizer_add_bos(const struct llamad_tokenizer *t)
{
    return t->add_bos;
}

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
    for (int i = 0; valid_id(t, id) && i < t->n_eog; i++)
        if (t->eog[i] == id)
            return true;
    return false;
}

enum llamad_token_kind llamad_tokenizer_kind(const struct llamad_tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? (enum llamad_token_kind)t->kind[id] : (enum llamad_token_kind)0;
}

const char *llamad_tokenizer_piece(const struct llamad_tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? llamad_piece_text(t, id) : NULL;
}

int32_t llamad_tokenizer_find(const struct llamad_tokenizer *t, const char *piece, size_t len)
{
    return len ? llamad_piece_map_find(t, &t->all, piece, len) : -1;
}

/* ---- Tokenizing ---- */

int64_t llamad_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        bool add_bos, int32_t *out, size_t cap)
{
    if (!t || (!text && len) || (!out && cap) || (add_bos && t->bos < 0))
        return LLAMAD_EINVAL;
    struct llamad_token_sink sink = {.ids = out, .cap = cap};
    if (add_bos)
        llamad_sink_put(&sink, t->bos);
    int rc = !len                          ? LLAMAD_OK
             : t->type == LLAMAD_VOCAB_SPM ? llamad_spm_tokenize(t, text, len, &sink)
                                           : llamad_bpe_tokenize(t, text, len, &sink);
    return rc ? rc : (int64_t)sink.n;
}

/* ---- Detokenizing one token ---- */

int llamad_token_to_bytes(const struct llamad_tokenizer *t, int32_t id, struct llamad_buf *out)
{
    if (!valid_id(t, id))
        return LLAMAD_EINVAL;
    const char *p = llamad_piece_text(t, id);
    size_t n = t->len[id], base = out->len;
    int rc = LLAMAD_OK;
    switch ((enum llamad_token_kind)t->kind[id]) {
    case LLAMAD_TOKEN_NORMAL:
        rc = t->type == LLAMAD_VOCAB_SPM ? llamad_spm_append_text(out, p, n)
                                         : llamad_bpe_append_text(t, out, p, n);
        break;
    case LLAMAD_TOKEN_USER_DEFINED: rc = llamad_buf_append(out, p, n); break;
    case LLAMAD_TOKEN_BYTE: {
        uint8_t b = (uint8_t)byte_piece_value(p, n); /* checked at load */
        rc = llamad_buf_append(out, &b, 1);
        break;
    }
    case LLAMAD_TOKEN_UNKNOWN: /* as llama.cpp renders non-special text: nothing */
    case LLAMAD_TOKEN_CONTROL:
    case LLAMAD_TOKEN_UNUSED: break;
    }
    if (rc && out->data) {
        out->len = base; /* no half-appended piece */
        out->data[base] = '\0';
    }
    return rc;
}
