/* json_text.c - JSON string escaping into a tl_strbuf (see json_text.h). */
#include "json_text.h"

#include <string.h>

void tl_sb_json_string(tl_strbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    tl_sb_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        /* copy the longest run that needs no escape in one append */
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\') run++;
        if (run) tl_sb_append(b, p, run);
        p += run;
        if (!*p) break;
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            tl_sb_append(b, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            tl_sb_append(b, esc, 6);
        }
        p++;
    }
    tl_sb_putc(b, '"');
}
