/* kv_glob.c: glob matching with Redis's stringmatchlen() semantics (see
 * kv_glob_match in kv.h), done iteratively.
 *
 * Every token but '*' matches exactly one byte, and how far a token extends
 * in the pattern does not depend on the string. So the classic greedy
 * algorithm is exact: remember the last '*' and, on a mismatch, let it
 * swallow one more byte and retry from just after it. Backtracking to an
 * earlier '*' is never needed: whatever it could match, the later one can
 * too. Time O(pattern * string), no recursion. */
#include <assert.h>

#include "kv/kv.h"

static uint8_t kv__fold(uint8_t c, bool nocase) {
    return (nocase && c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

/* The set token at p[0] == '['. Returns its length in pattern bytes; sets
 * *match for byte c. Mirrors Redis: "\x" is x literally (compared without
 * case folding), "a-z" is a range (swapped if reversed, folded after the
 * swap), ']' ends the set, and the end of the pattern ends it too. */
static size_t kv__set_token(const uint8_t *p, size_t len, uint8_t c, bool nocase, bool *match) {
    size_t i = 1;
    bool negate = i < len && p[i] == '^';
    if (negate) i++;
    bool m = false;
    while (i < len && p[i] != ']') {
        if (p[i] == '\\' && len - i >= 2) {
            m |= p[i + 1] == c;
            i += 2;
        } else if (len - i >= 3 && p[i + 1] == '-') {
            uint8_t lo = p[i], hi = p[i + 2];
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            uint8_t x = kv__fold(c, nocase);
            m |= x >= kv__fold(lo, nocase) && x <= kv__fold(hi, nocase);
            i += 3;
        } else {
            m |= kv__fold(p[i], nocase) == kv__fold(c, nocase);
            i++;
        }
    }
    *match = negate ? !m : m;
    return i < len ? i + 1 : len; /* past the ']', or the whole rest */
}

/* The token at p (not '*'): its length, and whether it matches byte c. */
static size_t kv__token(const uint8_t *p, size_t len, uint8_t c, bool nocase, bool *match) {
    assert(len > 0 && p[0] != '*');
    switch (p[0]) {
    case '?': *match = true; return 1;
    case '[': return kv__set_token(p, len, c, nocase, match);
    case '\\':
        if (len >= 2) {
            *match = kv__fold(p[1], nocase) == kv__fold(c, nocase);
            return 2;
        }
        break; /* a trailing backslash is itself */
    default: break;
    }
    *match = kv__fold(p[0], nocase) == kv__fold(c, nocase);
    return 1;
}

bool kv_glob_match(const void *pattern, size_t pattern_len, const void *string,
                   size_t string_len, bool nocase) {
    const uint8_t *p = pattern;
    const uint8_t *s = string;
    assert(p != NULL || pattern_len == 0);
    assert(s != NULL || string_len == 0);
    if (string_len == 0) return pattern_len == 0; /* Redis: the loop never runs */
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0; /* after the last '*'; where it stopped */
    while (si < string_len) {
        if (pi < pattern_len && p[pi] == '*') {
            while (pi < pattern_len && p[pi] == '*') pi++;
            if (pi == pattern_len) return true;
            star_p = pi;
            star_s = si;
            continue;
        }
        bool match = false;
        size_t token = 0;
        if (pi < pattern_len) token = kv__token(p + pi, pattern_len - pi, s[si], nocase, &match);
        if (match) {
            pi += token;
            si++;
        } else if (star_p != SIZE_MAX) {
            pi = star_p;
            si = ++star_s;
        } else {
            return false;
        }
    }
    while (pi < pattern_len && p[pi] == '*') pi++;
    return pi == pattern_len;
}
