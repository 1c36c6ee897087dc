/* rand.h: a small seeded generator (splitmix64 seeding xoshiro256**). No
 * global state: every user owns its `struct rand` and seeds it explicitly,
 * so runs replay bit for bit from a printed seed. */
#ifndef SHOAL_RAND_H
#define SHOAL_RAND_H

#include <assert.h>
#include <stdint.h>

struct rand {
    uint64_t s[4];
};

static inline uint64_t rand__splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void rand_seed(struct rand *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = rand__splitmix(&x);
}

static inline uint64_t rand__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rand_u64(struct rand *r) {
    uint64_t *s = r->s;
    uint64_t result = rand__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rand__rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n); n > 0. The tiny modulo bias is irrelevant here. */
static inline uint64_t rand_below(struct rand *r, uint64_t n) {
    assert(n > 0);
    return rand_u64(r) % n;
}

/* True with probability percent/100. */
static inline int rand_chance(struct rand *r, uint32_t percent) {
    return rand_below(r, 100) < percent;
}

#endif
