# Embed a text file as a C string: -DIN=file -DOUT=file.c ; symbols tl_capture_script_text/_len.
file(READ ${IN} content HEX)
string(LENGTH "${content}" hexlen)
math(EXPR nbytes "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from ${IN} by cmake/embed.cmake: do not edit */\n#include <stddef.h>\nconst unsigned char tl_capture_script_text[] = {${bytes} 0x00};\nconst size_t tl_capture_script_len = ${nbytes};\n")
