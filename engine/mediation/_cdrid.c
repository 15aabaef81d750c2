/*
 * engine.mediation._cdrid: CDR identities of a whole column at once.
 *
 * cdr_ids(prefix, origins) -> [str, ...]
 *
 * For every origin id (a str) the first 32 hex digits of SHA-256 of the UTF-8 of
 * ``prefix + origin``: exactly engine.cdr.cdr_identity, whose prefix is
 * engine.cdr.identity_prefix.  Doing it in one C call per batch removes the
 * per-record hashlib object, update and hexdigest that the batch path paid (about
 * 1 microsecond a record, a fifth of the whole mapping).  A str that cannot be
 * encoded as UTF-8 (a lone surrogate) raises UnicodeEncodeError, as str.encode does;
 * anything but a str raises TypeError.
 *
 * SHA-256 is FIPS 180-4.  Where the CPU has the SHA extensions (x86-64 with GCC
 * or clang) their instructions run the compression; elsewhere the portable code
 * does.  At import the two are compared on test messages and the SHA-extension
 * path is used only if it agrees; the unit tests hold cdr_ids to hashlib.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

typedef void (*compress_fn)(uint32_t state[8], const unsigned char *data, size_t blocks);

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
compress_portable(uint32_t state[8], const unsigned char *data, size_t blocks)
{
    uint32_t w[64];
    for (; blocks; blocks--, data += 64) {
        for (int t = 0; t < 16; t++)
            w[t] = ((uint32_t)data[4 * t] << 24) | ((uint32_t)data[4 * t + 1] << 16) | ((uint32_t)data[4 * t + 2] << 8) | data[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>

/* The SHA extensions keep the state as ABEF / CDGH; each sha256rnds2 does two rounds. */
__attribute__((target("sha,sse4.1")))
static void
compress_sha_ni(uint32_t state[8], const unsigned char *data, size_t blocks)
{
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);      /* CDAB */
    __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);   /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                                         /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                                              /* CDGH */
    __m128i w[16];
    for (; blocks; blocks--, data += 64) {
        __m128i abef = state0, cdgh = state1;
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), byte_swap);
        for (int i = 4; i < 16; i++) {
            __m128i x = _mm_sha256msg1_epu32(w[i - 4], w[i - 3]);
            x = _mm_add_epi32(x, _mm_alignr_epi8(w[i - 1], w[i - 2], 4));
            w[i] = _mm_sha256msg2_epu32(x, w[i - 1]);
        }
        for (int i = 0; i < 16; i++) {
            __m128i msg = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&K[4 * i]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(msg, 0x0E));
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);                  /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);               /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);            /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);               /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}
#endif

static compress_fn compress = compress_portable;
#ifdef HAVE_SHA_NI
static int sha_ni_usable = 0;
#endif

/* SHA-256 of prefix + text (one message, never copied whole): the first 16 bytes of the digest as 32 hex digits. */
static void
identity_hex(const unsigned char *prefix, size_t plen, const unsigned char *text, size_t tlen, char out[32])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t state[8];
    unsigned char block[128];
    size_t total = plen + tlen, done = 0, fill = 0;
    memcpy(state, H0, sizeof state);
    /* whole blocks straight from the inputs where they are contiguous, the rest through ``block`` */
    const unsigned char *parts[2] = {prefix, text};
    size_t lens[2] = {plen, tlen};
    for (int p = 0; p < 2; p++) {
        const unsigned char *src = parts[p];
        size_t len = lens[p];
        if (fill) {
            size_t take = 64 - fill < len ? 64 - fill : len;
            memcpy(block + fill, src, take);
            fill += take; src += take; len -= take;
            if (fill == 64) { compress(state, block, 1); fill = 0; done += 64; }
        }
        if (len >= 64) {
            size_t whole = len / 64;
            compress(state, src, whole);
            src += whole * 64; len -= whole * 64; done += whole * 64;
        }
        if (len) { memcpy(block + fill, src, len); fill += len; }
    }
    (void)done;
    block[fill++] = 0x80;
    size_t end = fill <= 56 ? 64 : 128;
    memset(block + fill, 0, end - fill);
    uint64_t bits = (uint64_t)total * 8;
    for (int i = 0; i < 8; i++)
        block[end - 1 - i] = (unsigned char)(bits >> (8 * i));
    compress(state, block, end / 64);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++)
            out[8 * i + j] = hex[(state[i] >> (28 - 4 * j)) & 0xF];
}

static PyObject *
cdr_ids(PyObject *self, PyObject *args)
{
    PyObject *prefix_obj, *origins;
    if (!PyArg_ParseTuple(args, "UO", &prefix_obj, &origins))
        return NULL;
    Py_ssize_t plen;
    const char *prefix = PyUnicode_AsUTF8AndSize(prefix_obj, &plen);
    if (prefix == NULL)
        return NULL;
    PyObject *seq = PySequence_Fast(origins, "cdr_ids: origins must be a sequence of str");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_Check(items[i])) {
            PyErr_SetString(PyExc_TypeError, "cdr_ids: every origin id must be a str");
            goto fail;
        }
        Py_ssize_t tlen;
        const char *text = PyUnicode_AsUTF8AndSize(items[i], &tlen);
        if (text == NULL)
            goto fail;
        PyObject *id = PyUnicode_New(32, 127);
        if (id == NULL)
            goto fail;
        identity_hex((const unsigned char *)prefix, (size_t)plen, (const unsigned char *)text, (size_t)tlen,
                     (char *)PyUnicode_1BYTE_DATA(id));
        PyList_SET_ITEM(out, i, id);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

/* Which compression runs ("sha-ni" or "portable"); given a name, switch to it (the tests run both). */
static PyObject *
compression(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s", &name))
        return NULL;
    if (name != NULL) {
        if (strcmp(name, "portable") == 0)
            compress = compress_portable;
#ifdef HAVE_SHA_NI
        else if (strcmp(name, "sha-ni") == 0 && sha_ni_usable)
            compress = compress_sha_ni;
#endif
        else {
            PyErr_Format(PyExc_ValueError, "compression %s is not available here", name);
            return NULL;
        }
    }
#ifdef HAVE_SHA_NI
    if (compress == compress_sha_ni)
        return PyUnicode_FromString("sha-ni");
#endif
    return PyUnicode_FromString("portable");
}

static PyMethodDef methods[] = {
    {"cdr_ids", cdr_ids, METH_VARARGS, "cdr_ids(prefix, origins) -> [sha256(prefix + origin).hexdigest()[:32], ...]"},
    {"compression", compression, METH_VARARGS, "compression([name]) -> the SHA-256 compression in use ('sha-ni' or 'portable')"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cdrid", "CDR identities of a whole column at once.", -1, methods,
};

#ifdef HAVE_SHA_NI
/* The SHA-extension compression, if the CPU has it and it agrees with the portable one on messages of 0..200 bytes. */
static void
choose_compress(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_SSE4_1))
        return;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(ebx & (1u << 29)))   /* CPUID.7.0:EBX.SHA */
        return;
    unsigned char msg[200];
    for (int i = 0; i < 200; i++)
        msg[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= 200; len += 7) {
        char a[32], b[32];
        compress = compress_portable;
        identity_hex(msg, len / 3, msg + len / 3, len - len / 3, a);
        compress = compress_sha_ni;
        identity_hex(msg, len / 3, msg + len / 3, len - len / 3, b);
        if (memcmp(a, b, 32) != 0) {
            compress = compress_portable;
            return;
        }
    }
    sha_ni_usable = 1;
}
#endif

PyMODINIT_FUNC
PyInit__cdrid(void)
{
#ifdef HAVE_SHA_NI
    choose_compress();
#endif
    return PyModule_Create(&module);
}
