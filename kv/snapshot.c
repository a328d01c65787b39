/* kv/snapshot.c: the store's canonical snapshot and its checked restore.
 *
 * Format (little-endian): u8 version (2), u64 clock (now_ms), u64 version
 * counter, then for each of the 16 databases: 256 x u64 versions of
 * absent keys (by hash slot), u64 sweep
 * cursor, u64 key count, then each key in hash order (kv_dict_scan, which
 * depends only on the keys): u32 length + key, u64 expiry (0 none), u64
 * WATCH version, u8 type, the type's own encoding (kv_type_ops.save);
 * then (version 3) the script cache (script.c: kv_scripts_save), then
 * (version 4) u8 the agreed feature level (features.c). A store writes the
 * lowest version that holds its state: 2 while no script was cached and
 * no level agreed (what builds before scripts read), 3 with scripts, 4
 * once a level was agreed; all three are read. A level above this build's,
 * or a version above 4, is refused with RABIA_E_FEATURE: a later build
 * adds a snapshot version only together with a feature level, so such a
 * snapshot means the cluster agreed a level this build lacks.
 * Equal stores give equal bytes; restore checks every field and builds a
 * new store, so a corrupt snapshot leaves the old state alone. */
#include <string.h>

#include "internal.h"
#include "le.h"
#include "rabia/types.h"

#define KV_SNAPSHOT_VERSION 4

bool kv_rd_u8(struct kv_rd *r, uint8_t *v)
{
    if (r->end - r->p < 1)
        return false;
    *v = *r->p++;
    return true;
}

bool kv_rd_u32(struct kv_rd *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return false;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return true;
}

bool kv_rd_u64(struct kv_rd *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return false;
    *v = rabia_le_get64(r->p);
    r->p += 8;
    return true;
}

bool kv_rd_f64(struct kv_rd *r, double *v)
{
    uint64_t bits;
    if (!kv_rd_u64(r, &bits))
        return false;
    double d;
    memcpy(&d, &bits, sizeof d);
    if (d != d) /* NaN is never a score or a value */
        return false;
    *v = d;
    return true;
}

bool kv_rd_str(struct kv_rd *r, const uint8_t **p, uint32_t *n)
{
    uint32_t len;
    if (!kv_rd_u32(r, &len) || (size_t)(r->end - r->p) < len)
        return false;
    *p = r->p;
    *n = len;
    r->p += len;
    return true;
}

int kv_wr_u8(struct rabia_buf *b, uint8_t v) { return rabia_buf_put_u8(b, v); }
int kv_wr_u32(struct rabia_buf *b, uint32_t v) { return rabia_buf_put_u32(b, v); }
int kv_wr_u64(struct rabia_buf *b, uint64_t v) { return rabia_buf_put_u64(b, v); }

int kv_wr_f64(struct rabia_buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return rabia_buf_put_u64(b, bits);
}

int kv_wr_str(struct rabia_buf *b, const uint8_t *p, uint32_t n)
{
    int rc = rabia_buf_reserve(b, 4 + (size_t)n);
    if (rc)
        return rc;
    rabia_buf_put_u32(b, n);
    return n ? rabia_buf_append(b, p, n) : 0;
}

struct save_walk {
    struct kv_store *s;
    struct rabia_buf *out;
};

static int save_key(void *arg, struct kv_dent *e)
{
    struct save_walk *w = arg;
    return kv_save_record(w->s, e, w->out);
}

int kv_store_save(struct kv_store *s, struct rabia_buf *out)
{
    size_t at = out->len;
    int rc;
    /* version 2 (no script section) while no script was ever cached: an
     * older build in the same cluster (a rolling upgrade) or rolled back
     * to still reads these snapshots */
    uint8_t version = s->feature_level ? 4 : s->script_seq ? 3 : 2;
    /* version 4 (the feature level after the scripts) once a level was
     * agreed: every replica ran a build that reads it by then */
    if ((rc = kv_wr_u8(out, version)) || (rc = kv_wr_u64(out, s->now_ms)) ||
        (rc = kv_wr_u64(out, s->version)))
        goto fail;
    for (uint32_t i = 0; i < KV_DBS; i++) {
        struct kv_db *db = &s->db[i];
        for (int k = 0; k < KV_GONE_SLOTS; k++)
            if ((rc = kv_wr_u64(out, db->gone[k])))
                goto fail;
        if ((rc = kv_wr_u64(out, db->sweep)) ||
            (rc = kv_wr_u64(out, kv_dict_size(&db->keys))))
            goto fail;
        struct save_walk w = {.s = s, .out = out};
        uint64_t cursor = 0;
        do {
            int err = 0;
            cursor = kv_dict_scan(s, &db->keys, cursor, 1024, save_key, &w, &err);
            if ((rc = err))
                goto fail;
        } while (cursor != 0);
    }
    if (version >= 3 && (rc = kv_scripts_save(s, out)))
        goto fail;
    if (version >= 4 && (rc = kv_wr_u8(out, s->feature_level)))
        goto fail;
    return 0;
fail:
    out->len = at;
    return rc;
}

/* One key of database i. */
static int load_key(struct kv_store *s, uint32_t i, struct kv_rd *r)
{
    const uint8_t *k, *rec = r->p;
    uint32_t kn;
    uint64_t exp, ver;
    uint8_t type;
    if (!kv_rd_str(r, &k, &kn) || !kv_rd_u64(r, &exp) || !kv_rd_u64(r, &ver) || !kv_rd_u8(r, &type))
        return -EINVAL;
    const struct kv_type_ops *t = kv_type_ops(type);
    if (!t || !t->load || ver > s->version)
        return -EINVAL;
    struct kv_db *db = &s->db[i];
    if (kv_dict_find(s, &db->keys, k, kn))
        return -EINVAL; /* a key twice */
    struct kv_obj *o = NULL;
    int rc = t->load(s, r, &o);
    if (rc)
        return rc;
    if (!o || o->type != type) {
        kv_obj_free(s, o);
        return -EINVAL;
    }
    struct kv_dent *e = kv_dict_add(s, &db->keys, k, kn);
    if (!e) {
        kv_obj_free(s, o);
        return -ENOMEM;
    }
    e->v.p = o;
    e->ver = ver;
    /* the key's hash term from the record just read: the bytes a save of
     * it writes again (canonical encoding) */
    o->hsum = kv_record_term(i, rec, (size_t)(r->p - rec));
    s->key_sum += o->hsum;
    if (exp) {
        struct kv_dent *x = kv_dict_add(s, &db->expires, k, kn);
        if (!x)
            return -ENOMEM; /* e is in the store: freed with it */
        x->v.p = e;
        e->x = exp;
    }
    return 0;
}

int kv_store_load(const uint8_t *p, size_t n, struct kv_store **out)
{
    *out = NULL;
    if (n == 0)
        return -EINVAL; /* p may be NULL: an empty buffer */
    struct kv_rd r = {.p = p, .end = p + n};
    uint8_t v;
    struct kv_store *s = kv_store_new();
    if (!s)
        return -ENOMEM;
    int rc = -EINVAL;
    if (!kv_rd_u8(&r, &v))
        goto fail;
    if (v > KV_SNAPSHOT_VERSION) {
        rc = RABIA_E_FEATURE; /* a later build's: a new version comes only with a feature level */
        goto fail;
    }
    if (v < 2 || !kv_rd_u64(&r, &s->now_ms) ||
        !kv_rd_u64(&r, &s->version))
        goto fail;
    for (uint32_t i = 0; i < KV_DBS; i++) {
        struct kv_db *db = &s->db[i];
        uint64_t count;
        for (int k = 0; k < KV_GONE_SLOTS; k++)
            if (!kv_rd_u64(&r, &db->gone[k]) || db->gone[k] > s->version)
                goto fail;
        if (!kv_rd_u64(&r, &db->sweep) || !kv_rd_u64(&r, &count) ||
            count > (uint64_t)(r.end - r.p) / 21) /* 21: smallest key record */
            goto fail;
        for (uint64_t k = 0; k < count; k++)
            if ((rc = load_key(s, i, &r)))
                goto fail;
        rc = -EINVAL;
    }
    if (v >= 3 && (rc = kv_scripts_load(s, &r)))
        goto fail;
    rc = -EINVAL;
    if (v >= 4 && (!kv_rd_u8(&r, &s->feature_level) || s->feature_level == 0))
        goto fail;
    if (s->feature_level > RABIA_KV_FEATURE_LEVEL) {
        rc = RABIA_E_FEATURE; /* taken by newer builds: this one cannot carry on from it */
        goto fail;
    }
    if (r.p != r.end)
        goto fail;
    *out = s;
    return 0;
fail:
    kv_store_free(s);
    return rc;
}
