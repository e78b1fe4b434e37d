/*
 * fuzz.h - the libFuzzer entry point every tests/fuzz/fuzz_*.c defines. The same file links either with
 * libFuzzer (fuzz_<target>, CCR_FUZZ=ON) or with replay_main.c (replay_<target>, runs the committed corpus).
 * Targets check invariants and abort() on a violation, so both drivers report it as a crash.
 */
#ifndef CCR_TESTS_FUZZ_H
#define CCR_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads input-derived numbers: a cursor over the input that yields zeros once the bytes run out. */
struct fuzz_reader {
    const uint8_t *p;
    size_t left;
};

static inline uint64_t fuzz_take(struct fuzz_reader *r, unsigned nbytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < nbytes; i++) {
        v <<= 8;
        if (r->left) {
            v |= *r->p++;
            r->left--;
        }
    }
    return v;
}

#endif
