/* tok_unicode.c - the UTF-8 and code point helpers the tokenizer needs, with llama.cpp's
 * exact leniency: its tokenizer decodes invalid input in a particular way, and encoding
 * the same bytes to the same ids means decoding them the same way first. */
#include "tok_internal.h"

uint8_t tok_cpt_flags(uint32_t cpt, size_t *hint) {
    if (cpt >= 0x110000) return TOK_CPT_UNDEFINED;
    size_t k = *hint;
    /* Text tends to stay inside one script, so the previous range usually still holds. */
    if (k + 1 < tok_ucd_n_ranges && (tok_ucd_ranges[k] >> 8) <= cpt &&
        cpt < (tok_ucd_ranges[k + 1] >> 8))
        return (uint8_t)(tok_ucd_ranges[k] & 0xFF);
    size_t lo = 0, hi = tok_ucd_n_ranges - 1; /* invariant: start[lo] <= cpt < start[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((tok_ucd_ranges[mid] >> 8) <= cpt)
            lo = mid;
        else
            hi = mid;
    }
    *hint = lo;
    return (uint8_t)(tok_ucd_ranges[lo] & 0xFF);
}

bool tok_cpt_is_space(uint32_t cpt) {
    if (cpt <= 0x20) return cpt == 0x20 || (cpt >= 0x09 && cpt <= 0x0D);
    if (cpt < 0x85) return false;
    switch (cpt) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cpt >= 0x2000 && cpt <= 0x200A;
    }
}

uint32_t tok_utf8_decode(const unsigned char *s, size_t n, size_t *i) {
    size_t p = *i;
    unsigned c = s[p];
    if (c < 0x80) {
        *i = p + 1;
        return c;
    }
    /* Like llama.cpp, only the lead byte's length and the continuation bytes' top bits
     * are checked: overlong forms and surrogates decode to their (odd) values. */
    if ((c & 0x40) == 0) goto invalid;
    if ((c & 0x20) == 0) {
        if (p + 1 >= n || (s[p + 1] & 0xC0) != 0x80) goto invalid;
        *i = p + 2;
        return ((c & 0x1Fu) << 6) | (s[p + 1] & 0x3Fu);
    }
    if ((c & 0x10) == 0) {
        if (p + 2 >= n || (s[p + 1] & 0xC0) != 0x80 || (s[p + 2] & 0xC0) != 0x80) goto invalid;
        *i = p + 3;
        return ((c & 0x0Fu) << 12) | ((s[p + 1] & 0x3Fu) << 6) | (s[p + 2] & 0x3Fu);
    }
    if ((c & 0x08) == 0) {
        if (p + 3 >= n || (s[p + 1] & 0xC0) != 0x80 || (s[p + 2] & 0xC0) != 0x80 ||
            (s[p + 3] & 0xC0) != 0x80)
            goto invalid;
        uint32_t cpt = ((c & 0x07u) << 18) | ((s[p + 1] & 0x3Fu) << 12) |
                       ((s[p + 2] & 0x3Fu) << 6) | (s[p + 3] & 0x3Fu);
        /* llama.cpp throws (and fails the whole request) when it later re-encodes a value
         * above U+10FFFF; treating the lead byte as invalid keeps such input usable. */
        if (cpt > 0x10FFFF) goto invalid;
        *i = p + 4;
        return cpt;
    }
invalid:
    *i = p + 1;
    return 0xFFFD;
}

size_t tok_utf8_encode(uint32_t cpt, unsigned char *out) {
    if (cpt < 0x80) {
        out[0] = (unsigned char)cpt;
        return 1;
    }
    if (cpt < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cpt >> 6));
        out[1] = (unsigned char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cpt >> 12));
        out[1] = (unsigned char)(0x80 | ((cpt >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cpt >> 18));
    out[1] = (unsigned char)(0x80 | ((cpt >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cpt >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cpt & 0x3F));
    return 4;
}
