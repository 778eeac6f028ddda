/*
 * tb_plus.store._scan: the hot loop of the event store, in C.
 *
 * One call of Scanner.scan(buf, base_offset, final) walks the TFRecord framing of a chunk of an
 * event file, checks the masked CRC32C of every header and (optionally) every payload, decodes
 * each tensorflow.Event just far enough to index it, and returns:
 *
 *   (consumed, need, values, specials, n_records)
 *
 *   consumed   bytes of buf fully handled; the caller re-reads from base_offset + consumed
 *   need       > 0 when the record at `consumed` is longer than what buf holds (read that many)
 *   values     bytes: one 48-byte VALUE_OUT per Summary.Value (see VALUE_DTYPE in scan.py)
 *   specials   list of tuples for rare things: new tag metadata, file_version, session_log,
 *              graph/run-metadata records, and problems (bad CRC, resync, unparsable record)
 *   n_records  records whose framing was complete (good or bad)
 *
 * Tags are interned per scanner into int32 ids (Scanner.tags lists them in id order), so the
 * Python side groups values by integer id with numpy and never touches a value in Python.
 * The pure-Python twin in scan.py produces the same output and is the reference in the tests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

/* ---------------------------------------------------------------- CRC32C */

static uint32_t crc_tab[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^ crc_tab[5][(w >> 16) & 0xff] ^
              crc_tab[4][(w >> 24) & 0xff] ^ crc_tab[3][(w >> 32) & 0xff] ^
              crc_tab[2][(w >> 40) & 0xff] ^ crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_HW_CRC 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

static int use_hw = 0;

static inline uint32_t crc32c(const uint8_t *p, size_t n) {
#ifdef HAVE_HW_CRC
    if (use_hw) return crc_hw(0, p, n);
#endif
    return crc_sw(0, p, n);
}

static inline uint32_t masked_crc(const uint8_t *p, size_t n) {
    uint32_t c = crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* ---------------------------------------------------------------- protobuf wire format */

typedef struct { const uint8_t *p, *end; } Rd;

static inline int rd_varint(Rd *r, uint64_t *out) {
    uint64_t v = 0;
    for (int s = 0; s < 70; s += 7) {
        if (r->p >= r->end) return 0;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) { *out = v; return 1; }
    }
    return 0;
}

/* Reads a field key; returns 0 at end, -1 on error. */
static inline int rd_key(Rd *r, uint32_t *field, uint32_t *wt) {
    if (r->p >= r->end) return 0;
    uint64_t k;
    if (!rd_varint(r, &k)) return -1;
    *field = (uint32_t)(k >> 3);
    *wt = (uint32_t)(k & 7);
    if (*field == 0) return -1;
    return 1;
}

static inline int rd_len(Rd *r, const uint8_t **s, size_t *n) {
    uint64_t l;
    if (!rd_varint(r, &l)) return 0;
    if (l > (uint64_t)(r->end - r->p)) return 0;
    *s = r->p;
    *n = (size_t)l;
    r->p += l;
    return 1;
}

static int skip_field(Rd *r, uint32_t wt) {
    uint64_t v;
    const uint8_t *s;
    size_t n;
    switch (wt) {
    case 0: return rd_varint(r, &v);
    case 1: if (r->end - r->p < 8) return 0; r->p += 8; return 1;
    case 2: return rd_len(r, &s, &n);
    case 5: if (r->end - r->p < 4) return 0; r->p += 4; return 1;
    default: return 0; /* groups (3, 4) are not used by event files */
    }
}

/* ---------------------------------------------------------------- output records */

typedef struct {
    int64_t step;
    double wall;
    double value;
    int64_t rec_off;
    uint32_t rec_len;
    int32_t tag_id;
    uint32_t vindex;
    uint8_t kind;
    uint8_t flags;
    uint16_t pad;
} ValueOut;

enum { K_NONE = 0, K_SIMPLE = 1, K_TSCALAR = 2, K_TENSOR = 3, K_HISTO = 4, K_IMAGE = 5, K_AUDIO = 6 };
enum { F_HAS_META = 1, F_NEW_META = 2, F_NEEDS_PY = 4 };

typedef struct {
    ValueOut *v;
    size_t n, cap;
} VBuf;

static int vbuf_push(VBuf *b, const ValueOut *x) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        ValueOut *nv = (ValueOut *)realloc(b->v, nc * sizeof(ValueOut));
        if (!nv) return 0;
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = *x;
    return 1;
}

/* ---------------------------------------------------------------- scanner object */

typedef struct {
    PyObject_HEAD
    int verify;
    PyObject *tags;      /* list of bytes, index = tag id */
    uint8_t *meta_seen;  /* per tag id */
    size_t meta_cap;
    uint64_t *ht_hash;   /* open addressing: hash (0 = empty) */
    int32_t *ht_id;
    size_t ht_cap;
} Scanner;

static inline uint64_t hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ull; }
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
    return h ? h : 1;
}

static int ht_grow(Scanner *sc) {
    size_t nc = sc->ht_cap ? sc->ht_cap * 2 : 1024;
    uint64_t *nh = (uint64_t *)calloc(nc, sizeof(uint64_t));
    int32_t *ni = (int32_t *)calloc(nc, sizeof(int32_t));
    if (!nh || !ni) { free(nh); free(ni); return 0; }
    for (size_t i = 0; i < sc->ht_cap; i++) {
        if (!sc->ht_hash[i]) continue;
        size_t j = sc->ht_hash[i] & (nc - 1);
        while (nh[j]) j = (j + 1) & (nc - 1);
        nh[j] = sc->ht_hash[i];
        ni[j] = sc->ht_id[i];
    }
    free(sc->ht_hash);
    free(sc->ht_id);
    sc->ht_hash = nh;
    sc->ht_id = ni;
    sc->ht_cap = nc;
    return 1;
}

/* Returns the id of tag s[0:n], interning it if new; -1 on memory error. */
static int32_t intern_tag(Scanner *sc, const uint8_t *s, size_t n) {
    Py_ssize_t count = PyList_GET_SIZE(sc->tags);
    if ((size_t)(count + 1) * 2 > sc->ht_cap && !ht_grow(sc)) return -1;
    uint64_t h = hash_bytes(s, n);
    size_t j = h & (sc->ht_cap - 1);
    while (sc->ht_hash[j]) {
        if (sc->ht_hash[j] == h) {
            PyObject *t = PyList_GET_ITEM(sc->tags, sc->ht_id[j]);
            if ((size_t)PyBytes_GET_SIZE(t) == n && memcmp(PyBytes_AS_STRING(t), s, n) == 0)
                return sc->ht_id[j];
        }
        j = (j + 1) & (sc->ht_cap - 1);
    }
    PyObject *t = PyBytes_FromStringAndSize((const char *)s, (Py_ssize_t)n);
    if (!t) return -1;
    if (PyList_Append(sc->tags, t) < 0) { Py_DECREF(t); return -1; }
    Py_DECREF(t);
    if ((size_t)count + 1 > sc->meta_cap) {
        size_t nc = sc->meta_cap ? sc->meta_cap * 2 : 1024;
        while (nc < (size_t)count + 1) nc *= 2;
        uint8_t *nm = (uint8_t *)realloc(sc->meta_seen, nc);
        if (!nm) return -1;
        memset(nm + sc->meta_cap, 0, nc - sc->meta_cap);
        sc->meta_seen = nm;
        sc->meta_cap = nc;
    }
    sc->ht_hash[j] = h;
    sc->ht_id[j] = (int32_t)count;
    return (int32_t)count;
}

/* ---------------------------------------------------------------- decoding */

static double half_to_double(uint16_t h) {
    int s = (h >> 15) & 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0) v = ldexp((double)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp((double)(m | 0x400), e - 25);
    return s ? -v : v;
}

/* Decodes a TensorProto holding exactly one number. Returns 1 and sets *out, 0 if not such a
 * tensor (the Python side then decodes it with protobuf when the series is a scalar one), -1 on
 * malformed bytes. */
static int decode_scalar_tensor(const uint8_t *s, size_t n, double *out) {
    Rd r = {s, s + n};
    uint32_t f, wt;
    int rc;
    uint64_t dtype = 0, v;
    int64_t nelem = 1;
    int nvals = 0, vfield = 0;
    double val = 0;
    const uint8_t *content = NULL;
    size_t content_n = 0;
    int have_content = 0;
    while ((rc = rd_key(&r, &f, &wt)) > 0) {
        if (f == 1 && wt == 0) {
            if (!rd_varint(&r, &dtype)) return -1;
        } else if (f == 2 && wt == 2) { /* TensorShapeProto */
            const uint8_t *ss; size_t sn;
            if (!rd_len(&r, &ss, &sn)) return -1;
            Rd rs = {ss, ss + sn};
            uint32_t f2, w2;
            int rc2;
            while ((rc2 = rd_key(&rs, &f2, &w2)) > 0) {
                if (f2 == 2 && w2 == 2) {
                    const uint8_t *ds; size_t dn;
                    if (!rd_len(&rs, &ds, &dn)) return -1;
                    Rd rd = {ds, ds + dn};
                    uint32_t f3, w3;
                    int rc3;
                    int64_t size = 0;
                    while ((rc3 = rd_key(&rd, &f3, &w3)) > 0) {
                        if (f3 == 1 && w3 == 0) { if (!rd_varint(&rd, &v)) return -1; size = (int64_t)v; }
                        else if (!skip_field(&rd, w3)) return -1;
                    }
                    if (rc3 < 0) return -1;
                    nelem *= size;
                } else if (f2 == 3 && w2 == 0) {
                    if (!rd_varint(&rs, &v)) return -1;
                    if (v) nelem = -1; /* unknown rank */
                } else if (!skip_field(&rs, w2)) return -1;
            }
            if (rc2 < 0) return -1;
        } else if (f == 4 && wt == 2) {
            if (!rd_len(&r, &content, &content_n)) return -1;
            have_content = 1;
        } else if (f == 5 && (wt == 2 || wt == 5)) { /* float_val */
            if (wt == 5) {
                if (r.end - r.p < 4) return -1;
                float x; memcpy(&x, r.p, 4); r.p += 4; val = x; nvals++; vfield = 5;
            } else {
                const uint8_t *ps; size_t pn;
                if (!rd_len(&r, &ps, &pn) || pn % 4) return -1;
                if (pn >= 4) { float x; memcpy(&x, ps, 4); val = x; }
                nvals += (int)(pn / 4);
                vfield = 5;
            }
        } else if (f == 6 && (wt == 2 || wt == 1)) { /* double_val */
            if (wt == 1) {
                if (r.end - r.p < 8) return -1;
                memcpy(&val, r.p, 8); r.p += 8; nvals++; vfield = 6;
            } else {
                const uint8_t *ps; size_t pn;
                if (!rd_len(&r, &ps, &pn) || pn % 8) return -1;
                if (pn >= 8) memcpy(&val, ps, 8);
                nvals += (int)(pn / 8);
                vfield = 6;
            }
        } else if ((f == 7 || f == 10 || f == 11 || f == 13) && (wt == 0 || wt == 2)) {
            /* int_val, int64_val, bool_val, half_val: varints */
            Rd pr;
            if (wt == 0) { pr = r; }
            else {
                const uint8_t *ps; size_t pn;
                if (!rd_len(&r, &ps, &pn)) return -1;
                pr.p = ps; pr.end = ps + pn;
            }
            do {
                if (!rd_varint(&pr, &v)) return -1;
                if (nvals == 0) {
                    if (f == 7) val = (double)(int32_t)(uint32_t)v;
                    else if (f == 10) val = (double)(int64_t)v;
                    else if (f == 11) val = v ? 1.0 : 0.0;
                    else val = half_to_double((uint16_t)v);
                }
                nvals++;
            } while (wt == 2 && pr.p < pr.end);
            vfield = (int)f;
            if (wt == 0) r.p = pr.p;
        } else if (!skip_field(&r, wt)) {
            return -1;
        }
    }
    if (rc < 0) return -1;
    if (nelem != 1) return 0;
    if (have_content) {
        if (nvals) return 0;
        switch (dtype) {
        case 1: if (content_n != 4) return 0; { float x; memcpy(&x, content, 4); *out = x; } return 1;
        case 2: if (content_n != 8) return 0; memcpy(out, content, 8); return 1;
        case 3: if (content_n != 4) return 0; { int32_t x; memcpy(&x, content, 4); *out = x; } return 1;
        case 9: if (content_n != 8) return 0; { int64_t x; memcpy(&x, content, 8); *out = (double)x; } return 1;
        case 19: if (content_n != 2) return 0; { uint16_t x; memcpy(&x, content, 2); *out = half_to_double(x); } return 1;
        default: return 0;
        }
    }
    if (nvals != 1) return 0;
    /* the value field must be the one make_ndarray reads for the dtype */
    *out = val;
    return ((dtype == 1 && vfield == 5) || (dtype == 2 && vfield == 6) || (dtype == 3 && vfield == 7) ||
            (dtype == 9 && vfield == 10) || (dtype == 10 && vfield == 11) || (dtype == 19 && vfield == 13));
}

typedef struct {
    Scanner *sc;
    VBuf *vb;
    PyObject *specials;
} Ctx;

static int add_special(Ctx *c, PyObject *t) {
    if (!t) return 0;
    int ok = PyList_Append(c->specials, t) == 0;
    Py_DECREF(t);
    return ok;
}

/* Parses one Summary.Value. Returns 1 ok, 0 malformed, -1 Python error. */
static int parse_value(Ctx *c, const uint8_t *s, size_t n, ValueOut *o) {
    Rd r = {s, s + n};
    uint32_t f, wt;
    int rc;
    const uint8_t *tag = NULL, *node = NULL, *meta = NULL, *tens = NULL;
    size_t tag_n = 0, node_n = 0, meta_n = 0, tens_n = 0;
    int have_meta = 0, kind = K_NONE;
    float simple = 0;
    while ((rc = rd_key(&r, &f, &wt)) > 0) {
        const uint8_t *xs; size_t xn;
        if (f == 1 && wt == 2) { if (!rd_len(&r, &tag, &tag_n)) return 0; }
        else if (f == 7 && wt == 2) { if (!rd_len(&r, &node, &node_n)) return 0; }
        else if (f == 9 && wt == 2) { if (!rd_len(&r, &meta, &meta_n)) return 0; have_meta = 1; }
        else if (f == 2 && wt == 5) {
            if (r.end - r.p < 4) return 0;
            memcpy(&simple, r.p, 4); r.p += 4; kind = K_SIMPLE;
        }
        else if (f == 8 && wt == 2) { if (!rd_len(&r, &tens, &tens_n)) return 0; kind = K_TENSOR; }
        else if (f == 5 && wt == 2) { if (!rd_len(&r, &xs, &xn)) return 0; kind = K_HISTO; }
        else if (f == 4 && wt == 2) { if (!rd_len(&r, &xs, &xn)) return 0; kind = K_IMAGE; }
        else if (f == 6 && wt == 2) { if (!rd_len(&r, &xs, &xn)) return 0; kind = K_AUDIO; }
        else if (!skip_field(&r, wt)) return 0;
    }
    if (rc < 0) return 0;
    o->flags = 0;
    o->value = 0;
    if (kind == K_SIMPLE) o->value = (double)simple;
    else if (kind == K_TENSOR) {
        double x;
        int d = decode_scalar_tensor(tens, tens_n, &x);
        if (d < 0) return 0;
        if (d == 1) { kind = K_TSCALAR; o->value = x; }
        else o->flags |= F_NEEDS_PY;
    }
    o->kind = (uint8_t)kind;
    /* TensorBoard files a value without a tag under its node_name (old tensor summaries) */
    if (tag_n == 0 && kind != K_NONE && node) { tag = node; tag_n = node_n; }
    int32_t id = intern_tag(c->sc, tag ? tag : (const uint8_t *)"", tag_n);
    if (id < 0) return -1;
    o->tag_id = id;
    if (have_meta) {
        o->flags |= F_HAS_META;
        if (!c->sc->meta_seen[id]) {
            c->sc->meta_seen[id] = 1;
            o->flags |= F_NEW_META;
            if (!add_special(c, Py_BuildValue("(sny#)", "meta", (Py_ssize_t)id, meta, (Py_ssize_t)meta_n)))
                return -1;
        }
    }
    return 1;
}

/* Event's oneof `what` (fields 3-9); source_metadata (10) is outside it and ignored */
static const char *what_names[] = {NULL, NULL, NULL, "file_version", "graph_def", "summary",
                                   "log_message", "session_log", "tagged_run_metadata",
                                   "meta_graph_def"};

/* Parses one Event record. Returns 1 ok, 0 malformed (caller rolls back), -1 Python error. */
static int parse_event(Ctx *c, const uint8_t *s, size_t n, int64_t rec_off, uint32_t rec_len) {
    Rd r = {s, s + n};
    uint32_t f, wt;
    int rc;
    double wall = 0;
    int64_t step = 0;
    const uint8_t *summ = NULL, *other = NULL;
    size_t summ_n = 0, other_n = 0;
    int what = 0;
    while ((rc = rd_key(&r, &f, &wt)) > 0) {
        if (f == 1 && wt == 1) {
            if (r.end - r.p < 8) return 0;
            memcpy(&wall, r.p, 8); r.p += 8;
        } else if (f == 2 && wt == 0) {
            uint64_t v;
            if (!rd_varint(&r, &v)) return 0;
            step = (int64_t)v;
        } else if (f == 5 && wt == 2) {
            if (!rd_len(&r, &summ, &summ_n)) return 0;
            what = 5;
        } else if (f >= 3 && f <= 9 && wt == 2) {
            if (!rd_len(&r, &other, &other_n)) return 0;
            what = (int)f;
        } else if (!skip_field(&r, wt)) {
            return 0;
        }
    }
    if (rc < 0) return 0;
    size_t mark = c->vb->n;
    Py_ssize_t smark = PyList_GET_SIZE(c->specials);
    if (what == 5) {
        Rd rs = {summ, summ + summ_n};
        uint32_t f2, w2;
        int rc2;
        uint32_t vi = 0;
        while ((rc2 = rd_key(&rs, &f2, &w2)) > 0) {
            if (f2 == 1 && w2 == 2) {
                const uint8_t *vs; size_t vn;
                if (!rd_len(&rs, &vs, &vn)) goto malformed;
                ValueOut o;
                memset(&o, 0, sizeof o);
                o.step = step; o.wall = wall; o.rec_off = rec_off; o.rec_len = rec_len;
                o.vindex = vi;
                int pv = parse_value(c, vs, vn, &o);
                if (pv < 0) return -1;
                if (pv == 0) goto malformed;
                if (!vbuf_push(c->vb, &o)) { PyErr_NoMemory(); return -1; }
                vi++;
            } else if (!skip_field(&rs, w2)) goto malformed;
        }
        if (rc2 < 0) goto malformed;
        return 1;
    }
    if (what == 7) { /* SessionLog: status (1), checkpoint_path (2), msg (3) */
        Rd rl = {other, other + other_n};
        uint32_t f2, w2;
        int rc2;
        uint64_t status = 0;
        while ((rc2 = rd_key(&rl, &f2, &w2)) > 0) {
            if (f2 == 1 && w2 == 0) { if (!rd_varint(&rl, &status)) return 0; }
            else if (!skip_field(&rl, w2)) return 0;
        }
        if (rc2 < 0) return 0;
        return add_special(c, Py_BuildValue("(sLLdnK)", "session_log", (long long)rec_off,
                                            (long long)step, wall, (Py_ssize_t)c->vb->n,
                                            (unsigned long long)status)) ? 1 : -1;
    }
    if (what == 3) {
        return add_special(c, Py_BuildValue("(sLLdy#)", "file_version", (long long)rec_off,
                                            (long long)step, wall, other, (Py_ssize_t)other_n))
                   ? 1 : -1;
    }
    if (what >= 4) {
        return add_special(c, Py_BuildValue("(sLLdI)", what_names[what], (long long)rec_off,
                                            (long long)step, wall, rec_len)) ? 1 : -1;
    }
    return 1;
malformed:
    /* roll back what this record emitted, including metadata first-seen marks */
    c->vb->n = mark;
    while (PyList_GET_SIZE(c->specials) > smark) {
        PyObject *t = PyList_GET_ITEM(c->specials, PyList_GET_SIZE(c->specials) - 1);
        Py_ssize_t id = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        c->sc->meta_seen[id] = 0;
        if (PyList_SetSlice(c->specials, PyList_GET_SIZE(c->specials) - 1, PyList_GET_SIZE(c->specials), NULL) < 0)
            return -1;
    }
    return 0;
}

#define MAX_RECORD (1ull << 31)

/* True when a plausible record starts at q (header CRC ok; payload CRC ok when verifying) - used
 * to resynchronise. The payload CRCs checked while resynchronising are paid from *budget (bytes):
 * a crafted file with a valid header every 12 bytes, each claiming the rest of the file, would
 * otherwise cost CRC work quadratic in its size. Once the budget is spent the header CRC alone
 * decides (a false match of random bytes has odds 2^-32), and the main loop then finds a bad
 * payload CRC and steps over the whole record: linear in the bytes. */
static int good_record_at(const uint8_t *b, size_t q, size_t end, int verify, size_t *budget) {
    if (end - q < 12) return 0;
    if (masked_crc(b + q, 8) != rd32(b + q + 8)) return 0;
    uint64_t len = rd64(b + q);
    if (len > MAX_RECORD) return 0;
    if (end - q < 16 + len) return 1; /* header looks right; payload not here yet */
    if (verify && len <= *budget) {
        *budget -= (size_t)len;
        return masked_crc(b + q + 12, len) == rd32(b + q + 12 + len);
    }
    return 1;
}

static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    Py_buffer view;
    long long base;
    int final = 0;
    if (!PyArg_ParseTuple(args, "y*L|p", &view, &base, &final)) return NULL;
    const uint8_t *b = (const uint8_t *)view.buf;
    size_t end = (size_t)view.len, p = 0;
    long long need = 0, nrec = 0;
    size_t resync_budget = end + ((size_t)1 << 20);
    VBuf vb = {NULL, 0, 0};
    PyObject *specials = PyList_New(0);
    Ctx c = {self, &vb, specials};
    if (!specials) goto error;
    while (p < end) {
        if (end - p < 12) break;
        uint64_t len = rd64(b + p);
        if (masked_crc(b + p, 8) != rd32(b + p + 8) || len > MAX_RECORD) {
            size_t q = p + 1;
            while (q + 12 <= end && !good_record_at(b, q, end, self->verify, &resync_budget)) q++;
            if (q + 12 > end && !final) {
                /* no header here yet: keep the last 11 bytes, a header may straddle the chunk */
                size_t keep = end > 11 ? end - 11 : 0;
                if (keep > p) {
                    if (!add_special(&c, Py_BuildValue("(sLL)", "skipped", base + (long long)p,
                                                       (long long)(keep - p))))
                        goto error;
                    p = keep;
                }
                break;
            }
            if (q + 12 > end) q = end;
            if (!add_special(&c, Py_BuildValue("(sLL)", "skipped", base + (long long)p, (long long)(q - p))))
                goto error;
            p = q;
            continue;
        }
        if (end - p < 16 + len) { need = (long long)(16 + len); break; }
        nrec++;
        const uint8_t *payload = b + p + 12;
        if (self->verify && masked_crc(payload, len) != rd32(payload + len)) {
            if (!add_special(&c, Py_BuildValue("(sLL)", "bad_crc", base + (long long)p, (long long)len)))
                goto error;
            p += 16 + len;
            continue;
        }
        int pe = parse_event(&c, payload, (size_t)len, base + (long long)p, (uint32_t)len);
        if (pe < 0) goto error;
        if (pe == 0 &&
            !add_special(&c, Py_BuildValue("(sLL)", "unparsable", base + (long long)p, (long long)len)))
            goto error;
        p += 16 + len;
    }
    PyBuffer_Release(&view);
    PyObject *vals = PyBytes_FromStringAndSize((const char *)vb.v, (Py_ssize_t)(vb.n * sizeof(ValueOut)));
    free(vb.v);
    if (!vals) { Py_DECREF(specials); return NULL; }
    return Py_BuildValue("(nLNNL)", (Py_ssize_t)p, need, vals, specials, nrec);
error:
    PyBuffer_Release(&view);
    free(vb.v);
    Py_XDECREF(specials);
    return NULL;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"verify_crc", "tags", "meta_seen", NULL};
    int verify = 1;
    PyObject *tags = NULL, *meta = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pOO", kwlist, &verify, &tags, &meta)) return -1;
    self->verify = verify;
    Py_XSETREF(self->tags, PyList_New(0));
    if (!self->tags) return -1;
    if (tags && tags != Py_None) {
        PyObject *seq = PySequence_Fast(tags, "tags must be a sequence of bytes");
        if (!seq) return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyBytes_Check(t)) { Py_DECREF(seq); PyErr_SetString(PyExc_TypeError, "tags must be bytes"); return -1; }
            if (intern_tag(self, (const uint8_t *)PyBytes_AS_STRING(t), (size_t)PyBytes_GET_SIZE(t)) != i) {
                Py_DECREF(seq);
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "duplicate tag");
                return -1;
            }
        }
        Py_DECREF(seq);
    }
    if (meta && meta != Py_None) {
        PyObject *seq = PySequence_Fast(meta, "meta_seen must be a sequence of tag ids");
        if (!seq) return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            Py_ssize_t id = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
            if (id < 0 || id >= PyList_GET_SIZE(self->tags)) {
                Py_DECREF(seq);
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "meta_seen id out of range");
                return -1;
            }
            self->meta_seen[id] = 1;
        }
        Py_DECREF(seq);
    }
    return 0;
}

static void Scanner_dealloc(Scanner *self) {
    Py_XDECREF(self->tags);
    free(self->meta_seen);
    free(self->ht_hash);
    free(self->ht_id);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Scanner_get_tags(Scanner *self, void *closure) {
    (void)closure;
    Py_INCREF(self->tags);
    return self->tags;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(buf, base_offset, final=False) -> (consumed, need, values, specials, n_records)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Scanner_getset[] = {
    {"tags", (getter)Scanner_get_tags, NULL, "interned tags (bytes), index = tag id", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tb_plus.store._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Incremental TFRecord + Event scanner for one event file.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
    .tp_getset = Scanner_getset,
};

static PyObject *py_masked_crc(PyObject *mod, PyObject *arg) {
    (void)mod;
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t c = masked_crc((const uint8_t *)v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    return PyLong_FromUnsignedLong(c);
}

/* _set_hw_crc(flag) -> the previous setting. The SSE4.2 CRC32C instruction is used when the CPU has
   it; False forces the table-driven path (what other CPUs run), so that tests cover both. */
static PyObject *py_set_hw_crc(PyObject *mod, PyObject *arg) {
    (void)mod;
    int want = PyObject_IsTrue(arg);
    if (want < 0) return NULL;
    int prev = use_hw;
#ifdef HAVE_HW_CRC
    use_hw = want && __builtin_cpu_supports("sse4.2");
#else
    use_hw = 0;
#endif
    return PyBool_FromLong(prev);
}

/* ------------------------------------------------------------------ evaluation buckets */
/* bucket_counts(scores, labels, weights, counts, logit, bits, emin, emax)
   -> (NaN count, lowest bucket touched, highest bucket touched; size and -1 when none).
   The float-bit bucket scheme of tb_plus.evaluation.buckets.Scheme, counted in one pass:
   scores float64 or float32, labels uint8 (0/1), weights float64 or None, counts an int64
   (unweighted) or float64 (weighted) array [2, size]: negatives, then positives. */
static inline int64_t eval_side(double c, int shift, int64_t off, int64_t nside) {
    float f = (float)c;
    uint32_t u;
    memcpy(&u, &f, 4);
    if (u & 0x80000000u) u = 0;
    int64_t b = (int64_t)(u >> shift) - off;
    if (b < 0) b = 0;
    if (b >= nside) b = nside - 1;
    return b;
}

static PyObject *py_bucket_counts(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *so, *lo, *wo, *co;
    int logit, bits, emin, emax;
    if (!PyArg_ParseTuple(args, "OOOOiiii", &so, &lo, &wo, &co, &logit, &bits, &emin, &emax)) return NULL;
    Py_buffer sv, lv, wv, cv;
    int have_w = wo != Py_None;
    if (PyObject_GetBuffer(so, &sv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(lo, &lv, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&sv); return NULL; }
    if (have_w && PyObject_GetBuffer(wo, &wv, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&sv); PyBuffer_Release(&lv); return NULL;
    }
    if (PyObject_GetBuffer(co, &cv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&sv); PyBuffer_Release(&lv); if (have_w) PyBuffer_Release(&wv); return NULL;
    }
    PyObject *result = NULL;
    int is_f32 = sv.format && strcmp(sv.format, "f") == 0;
    Py_ssize_t isz = is_f32 ? 4 : 8;
    Py_ssize_t n = sv.len / isz;
    int64_t nside = (int64_t)(emax - emin) << bits;
    int64_t size = 2 * nside;
    if ((!is_f32 && !(sv.format && strcmp(sv.format, "d") == 0)) || lv.len != n || (have_w && wv.len != n * 8) ||
        cv.len != 2 * size * 8 || bits < 1 || bits > 23) {
        PyErr_SetString(PyExc_ValueError, "bucket_counts: bad buffer types or sizes");
        goto done;
    }
    {
        const float *sf = (const float *)sv.buf;
        const double *sd = (const double *)sv.buf;
        const uint8_t *lab = (const uint8_t *)lv.buf;
        const double *w = have_w ? (const double *)wv.buf : NULL;
        int shift = 23 - bits;
        int64_t off = (int64_t)(emin + 127) << bits;
        double nan = 0;
        int64_t lo = size, hi = -1;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            double s = is_f32 ? (double)sf[i] : sd[i];
            double wi = w ? w[i] : 1.0;
            if (s != s) { nan += wi; continue; }
            /* arithmetic instead of branches: scores and labels are random, branches mispredict */
            int64_t g, up;
            if (!logit) {
                up = s > 0.5;
                double t = 1.0 - s; /* exact for s in [0.5, 1] */
                double c = up ? t : s; /* both computed: a select, not a branch */
                int64_t b = eval_side(c, shift, off, nside);
                g = b + up * (size - 1 - 2 * b);
            } else {
                up = s >= 0;
                int64_t b = eval_side(fabs(s), shift, off, nside);
                g = nside - 1 - b + up * (2 * b + 1);
            }
            lo = g < lo ? g : lo;
            hi = g > hi ? g : hi;
            g += (int64_t)(lab[i] != 0) * size;
            if (w) ((double *)cv.buf)[g] += wi;
            else ((int64_t *)cv.buf)[g] += 1;
        }
        Py_END_ALLOW_THREADS
        result = Py_BuildValue("dLL", nan, (long long)lo, (long long)hi);
    }
done:
    PyBuffer_Release(&sv); PyBuffer_Release(&lv); if (have_w) PyBuffer_Release(&wv);
    PyBuffer_Release(&cv);
    return result;
}

static PyMethodDef module_methods[] = {
    {"masked_crc", py_masked_crc, METH_O, "masked CRC32C of a bytes-like object, as TFRecord stores it"},
    {"bucket_counts", py_bucket_counts, METH_VARARGS, "count scores into tb_plus.evaluation's buckets"},
    {"_set_hw_crc", py_set_hw_crc, METH_O, "use the CPU's CRC32C instruction when it has one (True) or not; returns the previous setting"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef scan_module = {PyModuleDef_HEAD_INIT, "_scan",
                                         "C accelerator for tb_plus (store scanner, evaluation buckets)", -1, module_methods};

PyMODINIT_FUNC PyInit__scan(void) {
    crc_init();
#ifdef HAVE_HW_CRC
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2") != 0;
#endif
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&scan_module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "HW_CRC", use_hw);
    return m;
}
