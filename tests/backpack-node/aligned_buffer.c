/*
 * Stand-in for the `aligned-buffer` addon that Backpack 0.5.5 depends on.
 *
 * The node reads its data files with O_DIRECT, which makes the kernel transfer straight
 * into the caller's memory: the buffer's address (and the read's offset and length) must
 * be multiples of the device's block size, or read() fails with EINVAL. JavaScript cannot
 * choose where a Buffer lives, hence a native helper. The published addon is written
 * against a pre-2015 V8 API and no longer compiles; this one uses Node-API, which is
 * stable across Node.js versions, and offers the two calls the node makes:
 *
 *   alignment()            the alignment to use: the page size, a multiple of every
 *                          block size Linux supports for O_DIRECT
 *   buffer(align, length)  a Buffer of `length` bytes whose memory starts on a multiple
 *                          of `align`; freed when the Buffer is garbage collected
 */
#include <node_api.h>
#include <stdlib.h>
#include <unistd.h>

static napi_value fail(napi_env env, const char *message) {
    napi_throw_error(env, NULL, message);
    return NULL;
}

static napi_value alignment(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value result;
    long page = sysconf(_SC_PAGESIZE);
    if (napi_create_uint32(env, page > 0 ? (uint32_t)page : 4096, &result) != napi_ok) {
        return fail(env, "aligned-buffer: cannot create a number");
    }
    return result;
}

/* Runs when the Buffer is collected: give the memory back, and tell the collector. */
static void release(napi_env env, void *data, void *hint) {
    int64_t ignored;
    free(data);
    napi_adjust_external_memory(env, -(int64_t)(size_t)hint, &ignored);
}

static napi_value buffer(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2];
    uint32_t align, length;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
        napi_get_value_uint32(env, argv[0], &align) != napi_ok ||
        napi_get_value_uint32(env, argv[1], &length) != napi_ok) {
        return fail(env, "aligned-buffer: buffer(alignment, length) takes two numbers");
    }
    /* posix_memalign wants a power of two that is a multiple of sizeof(void *). */
    if (align < sizeof(void *) || (align & (align - 1)) != 0) {
        return fail(env, "aligned-buffer: the alignment must be a power of two");
    }
    void *memory = NULL;
    size_t size = length > 0 ? length : align;
    if (posix_memalign(&memory, align, size) != 0) {
        return fail(env, "aligned-buffer: out of memory");
    }
    napi_value result;
    if (napi_create_external_buffer(env, length, memory, release, (void *)size, &result) !=
        napi_ok) {
        free(memory);
        return fail(env, "aligned-buffer: cannot wrap the memory in a Buffer");
    }
    /* The collector only sees the small Buffer object: say how much memory it holds. */
    int64_t ignored;
    napi_adjust_external_memory(env, (int64_t)size, &ignored);
    return result;
}

NAPI_MODULE_INIT() {
    napi_value fn;
    if (napi_create_function(env, "alignment", NAPI_AUTO_LENGTH, alignment, NULL, &fn) !=
            napi_ok ||
        napi_set_named_property(env, exports, "alignment", fn) != napi_ok ||
        napi_create_function(env, "buffer", NAPI_AUTO_LENGTH, buffer, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, "buffer", fn) != napi_ok) {
        return NULL;
    }
    return exports;
}
