/* fuzz_npy.c - libFuzzer target: tl_npy_parse on arbitrary bytes.
 * Any input must give either a tensor whose shape matches its element count, or a one-line error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tl_import.h"

/* libFuzzer's entry points: no header declares them (-Wmissing-prototypes) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_tensor *t = NULL;
    tl_err err;
    err.msg[0] = 0;
    if (tl_npy_parse(data, size, "fuzz.npy", &t, &err) == 0) {
        int64_t n;
        if (!t || tl_shape_numel_checked(&t->shape, &n) != 0) abort();
        /* touch every element so ASan sees any short allocation */
        volatile float acc = 0;
        for (int64_t i = 0; i < n; i++) acc += t->data[i];
        (void)acc;
        tl_tensor_free(t);
    } else {
        if (t || err.msg[0] == 0 || strchr(err.msg, '\n') || strncmp(err.msg, "fuzz.npy: ", 10) != 0) abort();
    }
    return 0;
}
