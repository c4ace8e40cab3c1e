/* json_text.h - JSON text shared by the writers (graph_write.c, params_write.c) and the error
 * snippets of graph_json.c, so that all of them escape a string the same way. Import-internal. */
#ifndef TL_JSON_TEXT_H
#define TL_JSON_TEXT_H
#include "tl_strbuf.h"

/* "s" as a JSON string: '"' and '\\' backslash-escaped, bytes < 0x20 as \u00XX, every other byte
 * (UTF-8 included) as it is. */
void tl_sb_json_string(tl_strbuf *b, const char *s);

#endif
