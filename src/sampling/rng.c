/* Seeded random numbers: xoshiro256** (Blackman & Vigna 2018) whose state is expanded from a
 * 64-bit seed by splitmix64, as its authors recommend. Written from the published algorithm
 * description; no libc rand(), no global state, so draws depend on the seed alone. */
#include "celer.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void celer_rng_seed(celer_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
    /* The all-zero state is a fixed point; splitmix64 cannot give four zeros, but be safe. */
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

uint64_t celer_rng_next(celer_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double celer_rng_uniform(celer_rng *rng) {
    return (double)(celer_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0); /* 2^-53 */
}
