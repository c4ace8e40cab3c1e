/* tl_shape.h - tensor shapes (row-major, float32 everywhere in the runtime). */
#ifndef TL_SHAPE_H
#define TL_SHAPE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TL_MAX_RANK 8
/* Largest element count tlrt accepts for one tensor (2^40): larger is an error, never a wrap. */
#define TL_MAX_NUMEL ((int64_t)1 << 40)

typedef struct tl_shape {
    int rank;                 /* 0 = scalar */
    int64_t dim[TL_MAX_RANK]; /* each >= 0 */
} tl_shape;

bool tl_shape_eq(const tl_shape *a, const tl_shape *b);
/* Element count with overflow check: 0 ok, -1 if it or any single dim exceeds TL_MAX_NUMEL. */
int tl_shape_numel_checked(const tl_shape *s, int64_t *out);
/* Element count of an already validated shape. */
int64_t tl_shape_numel(const tl_shape *s);
/* "[1, 4]" ("[]" for a scalar). Returns buf. */
char *tl_shape_str(const tl_shape *s, char *buf, size_t n);
tl_shape tl_shape_make(int rank, const int64_t *dims);
/* A shape as a temporary string, for messages: printf("%s", TL_SHAPE_STR(&s)). */
#define TL_SHAPE_STR_MAX 200
#define TL_SHAPE_STR(s) tl_shape_str((s), (char[TL_SHAPE_STR_MAX]){0}, TL_SHAPE_STR_MAX)

#endif
