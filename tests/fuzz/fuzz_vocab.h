/* The vocabularies the fuzz targets tokenize with, loaded once per process. */
#ifndef LLAMAD_FUZZ_VOCAB_H
#define LLAMAD_FUZZ_VOCAB_H

#include "llamad/tokenizer/tokenizer.h"

enum fuzz_vocab { FUZZ_SPM, FUZZ_BPE };

/* FUZZ_SPM: LLaMA's SentencePiece vocabulary (tests/data); FUZZ_BPE: LLaMA-3's
 * byte-level one (testdata/tokenizer/ in $LLAMAD_SHARED_DIR, or ../shared beside
 * the checkout). Aborts when it cannot be loaded: a fuzz run without it would
 * test less than it says. */
const struct llamad_tokenizer *fuzz_vocab(enum fuzz_vocab which);

#endif
