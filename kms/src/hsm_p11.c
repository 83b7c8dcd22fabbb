/*
 * hsm_p11.c - PKCS#11 token operations of the HSM process (hsm_p11.h).
 *
 * Owns the loaded module, the session and every object handle.  It must
 * never export a key in plaintext (every key it makes is sensitive; the
 * only way out is C_WrapKey under the root), never keep an unwrapped key
 * past the request that needed it, never fall back to software crypto when
 * the token refuses, and never log the PIN or any key or plaintext byte.
 */
#include "hsm_p11.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "luna/bytes.h"
#include "luna/log.h"

#define COMPONENT "kms-hsm"
#define TOKEN_LABEL_LEN 32
#define LABEL_MAX 64

struct luna_p11 {
    void *dl;
    CK_FUNCTION_LIST *f;
    bool initialized;
    bool have_session;
    bool logged_in;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE root;
    bool have_root;
    CK_OBJECT_HANDLE mac;
    bool have_mac;
    CK_RV last_rv;
};

static CK_BBOOL ck_true = CK_TRUE;
static CK_BBOOL ck_false = CK_FALSE;
static CK_OBJECT_CLASS class_secret = CKO_SECRET_KEY;
static CK_KEY_TYPE type_aes = CKK_AES;
static CK_KEY_TYPE type_generic = CKK_GENERIC_SECRET;
static CK_ULONG len_32 = LUNA_HSM_KEY_LEN;

#define ATTR(t, v) {(t), &(v), sizeof(v)}

/*
 * What any key unwrapped under the root becomes (CKA_UNWRAP_TEMPLATE), and
 * the exact template unwrap_kek passes.  The root carries it so that the
 * token, not this process, forces it: a process that has the PIN but not
 * this code (a compromised KMS, H2) cannot unwrap a KEK as extractable or
 * non-sensitive and read its value.  SoftHSM2 2.6.1 enforces it strictly:
 * every attribute here must be in the caller's template with the same
 * value, else CKR_TEMPLATE_INCONSISTENT (docs/kms-hsm.md).
 */
static CK_ATTRIBUTE kek_unwrap_tmpl[] = {
    ATTR(CKA_CLASS, class_secret),
    ATTR(CKA_KEY_TYPE, type_aes),
    ATTR(CKA_TOKEN, ck_false),
    ATTR(CKA_PRIVATE, ck_true),
    ATTR(CKA_SENSITIVE, ck_true),
    ATTR(CKA_EXTRACTABLE, ck_false),
    ATTR(CKA_ENCRYPT, ck_true),
    ATTR(CKA_DECRYPT, ck_true),
    ATTR(CKA_WRAP, ck_false),
    ATTR(CKA_UNWRAP, ck_false),
    ATTR(CKA_SIGN, ck_false),
    ATTR(CKA_VERIFY, ck_false),
    ATTR(CKA_DERIVE, ck_false),
};
#define KEK_UNWRAP_N (sizeof(kek_unwrap_tmpl) / sizeof(kek_unwrap_tmpl[0]))

/*
 * What a key must be for the root to wrap it (CKA_WRAP_TEMPLATE): an inert,
 * sensitive AES key generated in the token, i.e. what gen_kek makes.  The
 * root then cannot wrap (export) any other kind of object, and a key
 * imported with a known value (CKA_LOCAL FALSE) cannot become a "KEK".
 */
static CK_ATTRIBUTE kek_wrap_tmpl[] = {
    ATTR(CKA_CLASS, class_secret),
    ATTR(CKA_KEY_TYPE, type_aes),
    ATTR(CKA_SENSITIVE, ck_true),
    ATTR(CKA_LOCAL, ck_true),
    ATTR(CKA_ENCRYPT, ck_false),
    ATTR(CKA_DECRYPT, ck_false),
    ATTR(CKA_WRAP, ck_false),
    ATTR(CKA_UNWRAP, ck_false),
    ATTR(CKA_SIGN, ck_false),
    ATTR(CKA_VERIFY, ck_false),
    ATTR(CKA_DERIVE, ck_false),
};
#define KEK_WRAP_N (sizeof(kek_wrap_tmpl) / sizeof(kek_wrap_tmpl[0]))
/* Read-back cap: a template longer than this is refused, never truncated. */
#define TMPL_READ_MAX 32

/* Maps a token return value; the caller has already stored it in last_rv. */
static luna_err map_rv(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return LUNA_OK;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
        return LUNA_ERR_UNAUTHENTICATED;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_SIGNATURE_INVALID:
    case CKR_SIGNATURE_LEN_RANGE:
        return LUNA_ERR_VERIFY;
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return LUNA_ERR_UNAVAILABLE;
    case CKR_HOST_MEMORY:
        return LUNA_ERR_NOMEM;
    default:
        return LUNA_ERR_CRYPTO;
    }
}

static luna_err ck(luna_p11 *p, CK_RV rv)
{
    p->last_rv = rv;
    return map_rv(rv);
}

unsigned long luna_p11_last_rv(const luna_p11 *p)
{
    return p != NULL ? (unsigned long)p->last_rv : 0;
}

/* Space-padded 32-byte label as CK_TOKEN_INFO holds it. */
static luna_err pad_label(const char *label, unsigned char out[TOKEN_LABEL_LEN])
{
    size_t n = strlen(label);
    LUNA_ENSURE(n >= 1 && n <= TOKEN_LABEL_LEN, LUNA_ERR_CONFIG);
    memset(out, ' ', TOKEN_LABEL_LEN);
    memcpy(out, label, n);
    return LUNA_OK;
}

static luna_err find_slot(luna_p11 *p, const char *token_label, CK_SLOT_ID *slot)
{
    unsigned char want[TOKEN_LABEL_LEN];
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    luna_err err;

    LUNA_GUARD(pad_label(token_label, want));
    LUNA_GUARD(ck(p, p->f->C_GetSlotList(CK_TRUE, NULL, &n)));
    LUNA_ENSURE(n > 0, LUNA_ERR_CONFIG);
    LUNA_ENSURE(n <= 4096, LUNA_ERR_CONFIG);
    slots = calloc(n, sizeof(*slots));
    LUNA_ENSURE(slots != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY(ck(p, p->f->C_GetSlotList(CK_TRUE, slots, &n)), out);
    err = LUNA_ERR_CONFIG; /* no token with that label */
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (p->f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if (memcmp(info.label, want, TOKEN_LABEL_LEN) == 0) {
            *slot = slots[i];
            err = LUNA_OK;
            break;
        }
    }
out:
    free(slots);
    return err;
}

luna_err luna_p11_open(const char *module_path, const char *token_label, const luna_secret *pin,
                       luna_p11 **out, unsigned long *rv)
{
    CK_C_GetFunctionList get_list;
    CK_SLOT_ID slot = 0;
    luna_p11 *p;
    void *sym;
    luna_err err;

    LUNA_ENSURE(out != NULL && rv != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    *rv = 0;
    LUNA_ENSURE(module_path != NULL && token_label != NULL && pin != NULL, LUNA_ERR_INVALID_ARG);
    /* An absolute path only: never let the loader search for a module. */
    LUNA_ENSURE(module_path[0] == '/', LUNA_ERR_CONFIG);
    p = calloc(1, sizeof(*p));
    LUNA_ENSURE(p != NULL, LUNA_ERR_NOMEM);

    p->dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    LUNA_TRY_ENSURE(p->dl != NULL, LUNA_ERR_CONFIG, fail);
    sym = dlsym(p->dl, "C_GetFunctionList");
    LUNA_TRY_ENSURE(sym != NULL, LUNA_ERR_CONFIG, fail);
    /* ISO C has no object-to-function pointer cast; POSIX guarantees the copy. */
    memcpy(&get_list, &sym, sizeof(get_list));
    LUNA_TRY(ck(p, get_list(&p->f)), fail);
    LUNA_TRY_ENSURE(p->f != NULL, LUNA_ERR_CONFIG, fail);
    LUNA_TRY(ck(p, p->f->C_Initialize(NULL)), fail);
    p->initialized = true;
    LUNA_TRY(find_slot(p, token_label, &slot), fail);
    LUNA_TRY(ck(p, p->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                       &p->session)),
             fail);
    p->have_session = true;
    {
        CK_RV lrv = p->f->C_Login(p->session, CKU_USER,
                                  (CK_UTF8CHAR *)(uintptr_t)luna_secret_cdata(pin),
                                  (CK_ULONG)luna_secret_len(pin));
        if (lrv == CKR_USER_ALREADY_LOGGED_IN)
            lrv = CKR_OK;
        LUNA_TRY(ck(p, lrv), fail);
    }
    p->logged_in = true;
    *out = p;
    return LUNA_OK;
fail:
    *rv = (unsigned long)p->last_rv;
    luna_p11_close(p);
    return err;
}

void luna_p11_close(luna_p11 *p)
{
    if (p == NULL)
        return;
    if (p->logged_in)
        (void)p->f->C_Logout(p->session);
    if (p->have_session)
        (void)p->f->C_CloseSession(p->session);
    if (p->initialized)
        (void)p->f->C_Finalize(NULL);
    if (p->dl != NULL)
        (void)dlclose(p->dl);
    luna_wipe(p, sizeof(*p));
    free(p);
}

/* The one secret key with this label; *found false when there is none. */
static luna_err find_key(luna_p11 *p, const char *label, CK_OBJECT_HANDLE *h, bool *found)
{
    CK_OBJECT_HANDLE hs[2];
    CK_ULONG n = 0;
    CK_ATTRIBUTE t[] = {
        ATTR(CKA_CLASS, class_secret),
        ATTR(CKA_TOKEN, ck_true),
        {CKA_LABEL, (void *)(uintptr_t)label, (CK_ULONG)strlen(label)},
    };
    luna_err err;

    *found = false;
    LUNA_GUARD(ck(p, p->f->C_FindObjectsInit(p->session, t, sizeof(t) / sizeof(t[0]))));
    err = ck(p, p->f->C_FindObjects(p->session, hs, 2, &n));
    (void)p->f->C_FindObjectsFinal(p->session);
    LUNA_GUARD(err);
    /* Two keys under one label: refuse rather than guess which is ours. */
    LUNA_ENSURE(n <= 1, LUNA_ERR_CONFLICT);
    if (n == 1) {
        *h = hs[0];
        *found = true;
    }
    return LUNA_OK;
}

typedef struct want_bool {
    CK_ATTRIBUTE_TYPE type;
    const char *name;
    CK_BBOOL value;
} want_bool;

/* The most dangerous properties first, so a refusal names the worst one. */
static const want_bool root_want[] = {
    {CKA_SENSITIVE, "CKA_SENSITIVE", CK_TRUE},
    {CKA_EXTRACTABLE, "CKA_EXTRACTABLE", CK_FALSE},
    {CKA_DECRYPT, "CKA_DECRYPT", CK_FALSE},
    {CKA_ENCRYPT, "CKA_ENCRYPT", CK_FALSE},
    {CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", CK_TRUE},
    {CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", CK_TRUE},
    {CKA_WRAP, "CKA_WRAP", CK_TRUE},
    {CKA_UNWRAP, "CKA_UNWRAP", CK_TRUE},
    {CKA_SIGN, "CKA_SIGN", CK_FALSE},
    {CKA_VERIFY, "CKA_VERIFY", CK_FALSE},
    {CKA_DERIVE, "CKA_DERIVE", CK_FALSE},
    {CKA_TOKEN, "CKA_TOKEN", CK_TRUE},
    {CKA_PRIVATE, "CKA_PRIVATE", CK_TRUE},
    {CKA_MODIFIABLE, "CKA_MODIFIABLE", CK_FALSE},
};

static const want_bool mac_want[] = {
    {CKA_SENSITIVE, "CKA_SENSITIVE", CK_TRUE},
    {CKA_EXTRACTABLE, "CKA_EXTRACTABLE", CK_FALSE},
    {CKA_DECRYPT, "CKA_DECRYPT", CK_FALSE},
    {CKA_ENCRYPT, "CKA_ENCRYPT", CK_FALSE},
    {CKA_UNWRAP, "CKA_UNWRAP", CK_FALSE},
    {CKA_WRAP, "CKA_WRAP", CK_FALSE},
    {CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", CK_TRUE},
    {CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", CK_TRUE},
    {CKA_SIGN, "CKA_SIGN", CK_TRUE},
    {CKA_VERIFY, "CKA_VERIFY", CK_TRUE},
    {CKA_DERIVE, "CKA_DERIVE", CK_FALSE},
    {CKA_TOKEN, "CKA_TOKEN", CK_TRUE},
    {CKA_PRIVATE, "CKA_PRIVATE", CK_TRUE},
    {CKA_MODIFIABLE, "CKA_MODIFIABLE", CK_FALSE},
};

static void refuse_log(const char *which, const char *attribute)
{
    LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "key attributes refused", LUNA_LOG_STR("key", which),
              LUNA_LOG_STR("attribute", attribute));
}

/* Reads the key back and refuses (LUNA_ERR_CONFIG) on any wrong attribute. */
static luna_err check_key(luna_p11 *p, CK_OBJECT_HANDLE h, const char *which, CK_KEY_TYPE kt,
                          const want_bool *want, size_t n_want)
{
    CK_OBJECT_CLASS cls = 0;
    CK_KEY_TYPE type = 0;
    CK_ULONG vlen = 0;
    CK_ATTRIBUTE t[] = {
        ATTR(CKA_CLASS, cls),
        ATTR(CKA_KEY_TYPE, type),
        ATTR(CKA_VALUE_LEN, vlen),
    };
    size_t i;
    CK_RV rv;

    rv = p->f->C_GetAttributeValue(p->session, h, t, sizeof(t) / sizeof(t[0]));
    if (rv != CKR_OK) {
        p->last_rv = rv;
        refuse_log(which, "CKA_CLASS/CKA_KEY_TYPE/CKA_VALUE_LEN");
        return map_rv(rv) == LUNA_ERR_UNAVAILABLE ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_CONFIG;
    }
    if (cls != CKO_SECRET_KEY || type != kt || vlen != LUNA_HSM_KEY_LEN) {
        refuse_log(which, "CKA_CLASS/CKA_KEY_TYPE/CKA_VALUE_LEN");
        return LUNA_ERR_CONFIG;
    }
    for (i = 0; i < n_want; i++) {
        CK_BBOOL v = CK_FALSE;
        CK_ATTRIBUTE a = {want[i].type, &v, sizeof(v)};
        rv = p->f->C_GetAttributeValue(p->session, h, &a, 1);
        if (rv != CKR_OK || a.ulValueLen != sizeof(v) || v != want[i].value) {
            if (rv != CKR_OK)
                p->last_rv = rv;
            refuse_log(which, want[i].name);
            if (rv != CKR_OK && map_rv(rv) == LUNA_ERR_UNAVAILABLE)
                return LUNA_ERR_UNAVAILABLE;
            return LUNA_ERR_CONFIG;
        }
    }
    return LUNA_OK;
}

static luna_err check_label(const char *label)
{
    size_t n;
    LUNA_ENSURE(label != NULL, LUNA_ERR_INVALID_ARG);
    n = strlen(label);
    LUNA_ENSURE(n >= 1 && n <= LABEL_MAX, LUNA_ERR_CONFIG);
    return LUNA_OK;
}

luna_err luna_p11_ensure_root(luna_p11 *p, const char *label)
{
    bool found = false;

    LUNA_ENSURE(p != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(check_label(label));
    LUNA_GUARD(find_key(p, label, &p->root, &found));
    if (!found) {
        CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ATTRIBUTE t[] = {
            ATTR(CKA_CLASS, class_secret),
            ATTR(CKA_KEY_TYPE, type_aes),
            ATTR(CKA_VALUE_LEN, len_32),
            ATTR(CKA_TOKEN, ck_true),
            ATTR(CKA_PRIVATE, ck_true),
            ATTR(CKA_SENSITIVE, ck_true),
            ATTR(CKA_EXTRACTABLE, ck_false),
            ATTR(CKA_WRAP, ck_true),
            ATTR(CKA_UNWRAP, ck_true),
            ATTR(CKA_ENCRYPT, ck_false),
            ATTR(CKA_DECRYPT, ck_false),
            ATTR(CKA_SIGN, ck_false),
            ATTR(CKA_VERIFY, ck_false),
            ATTR(CKA_DERIVE, ck_false),
            ATTR(CKA_MODIFIABLE, ck_false),
            {CKA_LABEL, (void *)(uintptr_t)label, (CK_ULONG)strlen(label)},
            {CKA_UNWRAP_TEMPLATE, kek_unwrap_tmpl, (CK_ULONG)sizeof(kek_unwrap_tmpl)},
            {CKA_WRAP_TEMPLATE, kek_wrap_tmpl, (CK_ULONG)sizeof(kek_wrap_tmpl)},
        };
        LUNA_GUARD(ck(p, p->f->C_GenerateKey(p->session, &m, t, sizeof(t) / sizeof(t[0]),
                                             &p->root)));
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "root key created", LUNA_LOG_STR("label", label));
    }
    p->have_root = true;
    return luna_p11_check_root(p);
}

/*
 * Reads the attribute-array attribute `type` of h back and refuses
 * (LUNA_ERR_CONFIG) unless it holds exactly the attributes of want, each
 * with the same length and value, in any order.  Absent or empty is
 * refused: that is a root any PIN holder can unwrap into anything.
 * SoftHSM2 2.6.1 reports length 0 (not the size) for a NULL pValue query,
 * so the array is always passed at TMPL_READ_MAX entries (a longer
 * template is CKR_BUFFER_TOO_SMALL, refused) and each value slot is a
 * CK_ULONG, the largest attribute the wanted templates hold.
 */
static luna_err check_template(luna_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                               const char *name, const CK_ATTRIBUTE *want, size_t n_want)
{
    CK_ATTRIBUTE got[TMPL_READ_MAX];
    CK_ULONG vals[TMPL_READ_MAX];
    CK_ATTRIBUTE a = {type, got, (CK_ULONG)sizeof(got)};
    size_t n, i, j;
    CK_RV rv;

    memset(got, 0, sizeof(got));
    memset(vals, 0, sizeof(vals));
    rv = p->f->C_GetAttributeValue(p->session, h, &a, 1);
    if (rv == CKR_OK && a.ulValueLen % sizeof(CK_ATTRIBUTE) == 0 &&
        a.ulValueLen <= sizeof(got)) {
        n = a.ulValueLen / sizeof(CK_ATTRIBUTE);
        for (i = 0; i < n; i++) {
            if (got[i].ulValueLen > sizeof(vals[i]))
                goto refused;
            got[i].pValue = &vals[i];
        }
        rv = p->f->C_GetAttributeValue(p->session, h, &a, 1);
    }
    if (rv != CKR_OK) {
        p->last_rv = rv;
        refuse_log("root", name);
        return map_rv(rv) == LUNA_ERR_UNAVAILABLE ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_CONFIG;
    }
    if (a.ulValueLen != n_want * sizeof(CK_ATTRIBUTE))
        goto refused;
    for (i = 0; i < n_want; i++) {
        bool match = false;
        for (j = 0; j < n_want && !match; j++)
            match = got[j].type == want[i].type && got[j].ulValueLen == want[i].ulValueLen &&
                    memcmp(got[j].pValue, want[i].pValue, want[i].ulValueLen) == 0;
        if (!match)
            goto refused;
    }
    return LUNA_OK;
refused:
    refuse_log("root", name);
    return LUNA_ERR_CONFIG;
}

luna_err luna_p11_check_root(luna_p11 *p)
{
    LUNA_ENSURE(p != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(p->have_root, LUNA_ERR_CONFIG);
    LUNA_GUARD(check_key(p, p->root, "root", CKK_AES, root_want,
                         sizeof(root_want) / sizeof(root_want[0])));
    LUNA_GUARD(check_template(p, p->root, CKA_UNWRAP_TEMPLATE, "CKA_UNWRAP_TEMPLATE",
                              kek_unwrap_tmpl, KEK_UNWRAP_N));
    return check_template(p, p->root, CKA_WRAP_TEMPLATE, "CKA_WRAP_TEMPLATE", kek_wrap_tmpl,
                          KEK_WRAP_N);
}

luna_err luna_p11_ensure_mac(luna_p11 *p, const char *label)
{
    bool found = false;

    LUNA_ENSURE(p != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(check_label(label));
    LUNA_GUARD(find_key(p, label, &p->mac, &found));
    if (!found) {
        CK_MECHANISM m = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
        CK_ATTRIBUTE t[] = {
            ATTR(CKA_CLASS, class_secret),
            ATTR(CKA_KEY_TYPE, type_generic),
            ATTR(CKA_VALUE_LEN, len_32),
            ATTR(CKA_TOKEN, ck_true),
            ATTR(CKA_PRIVATE, ck_true),
            ATTR(CKA_SENSITIVE, ck_true),
            ATTR(CKA_EXTRACTABLE, ck_false),
            ATTR(CKA_SIGN, ck_true),
            ATTR(CKA_VERIFY, ck_true),
            ATTR(CKA_WRAP, ck_false),
            ATTR(CKA_UNWRAP, ck_false),
            ATTR(CKA_ENCRYPT, ck_false),
            ATTR(CKA_DECRYPT, ck_false),
            ATTR(CKA_DERIVE, ck_false),
            ATTR(CKA_MODIFIABLE, ck_false),
            {CKA_LABEL, (void *)(uintptr_t)label, (CK_ULONG)strlen(label)},
        };
        LUNA_GUARD(ck(p, p->f->C_GenerateKey(p->session, &m, t, sizeof(t) / sizeof(t[0]),
                                             &p->mac)));
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "mac key created", LUNA_LOG_STR("label", label));
    }
    p->have_mac = true;
    return luna_p11_check_mac(p);
}

luna_err luna_p11_check_mac(luna_p11 *p)
{
    LUNA_ENSURE(p != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(p->have_mac, LUNA_ERR_CONFIG);
    return check_key(p, p->mac, "mac", CKK_GENERIC_SECRET, mac_want,
                     sizeof(mac_want) / sizeof(mac_want[0]));
}

luna_err luna_p11_gen_kek(luna_p11 *p, uint8_t wrapped[LUNA_HSM_WRAPPED_LEN])
{
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    /* A session object whose only possible use is to be wrapped once. */
    CK_ATTRIBUTE t[] = {
        ATTR(CKA_CLASS, class_secret),
        ATTR(CKA_KEY_TYPE, type_aes),
        ATTR(CKA_VALUE_LEN, len_32),
        ATTR(CKA_TOKEN, ck_false),
        ATTR(CKA_PRIVATE, ck_true),
        ATTR(CKA_SENSITIVE, ck_true),
        ATTR(CKA_EXTRACTABLE, ck_true),
        ATTR(CKA_ENCRYPT, ck_false),
        ATTR(CKA_DECRYPT, ck_false),
        ATTR(CKA_WRAP, ck_false),
        ATTR(CKA_UNWRAP, ck_false),
        ATTR(CKA_SIGN, ck_false),
        ATTR(CKA_VERIFY, ck_false),
        ATTR(CKA_DERIVE, ck_false),
    };
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    CK_ULONG wlen = LUNA_HSM_WRAPPED_LEN;
    luna_err err;

    LUNA_ENSURE(p != NULL && wrapped != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(p->have_root, LUNA_ERR_CONFIG);
    LUNA_GUARD(ck(p, p->f->C_GenerateKey(p->session, &gen, t, sizeof(t) / sizeof(t[0]), &k)));
    LUNA_TRY(ck(p, p->f->C_WrapKey(p->session, &wrap, p->root, k, wrapped, &wlen)), out);
    LUNA_TRY_ENSURE(wlen == LUNA_HSM_WRAPPED_LEN, LUNA_ERR_CRYPTO, out);
out:
    (void)p->f->C_DestroyObject(p->session, k);
    if (err != LUNA_OK)
        luna_wipe(wrapped, LUNA_HSM_WRAPPED_LEN);
    return err;
}

/* Unwraps into an encrypt/decrypt-only, non-extractable session object. */
static luna_err unwrap_kek(luna_p11 *p, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                           CK_OBJECT_HANDLE *k)
{
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    luna_err err;

    LUNA_ENSURE(p->have_root, LUNA_ERR_CONFIG);
    *k = CK_INVALID_HANDLE;
    /* The root's own unwrap template, so the token's check and ours agree. */
    err = ck(p, p->f->C_UnwrapKey(p->session, &m, p->root, (CK_BYTE *)(uintptr_t)wrapped,
                                  LUNA_HSM_WRAPPED_LEN, kek_unwrap_tmpl, (CK_ULONG)KEK_UNWRAP_N,
                                  k));
    /* SoftHSM2 reports a failed RFC 5649 integrity check as CKR_GENERAL_ERROR. */
    if (err == LUNA_ERR_CRYPTO)
        err = LUNA_ERR_VERIFY;
    if (err != LUNA_OK) {
        *k = CK_INVALID_HANDLE;
        return err;
    }
    /*
     * No CKA_VALUE_LEN read-back: SoftHSM2 neither accepts it in an unwrap
     * template nor derives it.  The length is pinned anyway: 40 wrapped
     * bytes hold 25..32 key bytes, only the root's holder can make a blob
     * that passes the RFC 5649 integrity check, and AES accepts only 32 of
     * those lengths (a 16- or 24-byte key wraps to 24 or 32 bytes, which the
     * exact message size refuses).
     */
    return LUNA_OK;
}

static void gcm_params(CK_GCM_PARAMS *g, uint8_t *nonce, const uint8_t *aad, size_t aad_len)
{
    g->pIv = nonce;
    g->ulIvLen = LUNA_HSM_NONCE_LEN;
    g->ulIvBits = LUNA_HSM_NONCE_LEN * 8;
    g->pAAD = aad_len > 0 ? (CK_BYTE *)(uintptr_t)aad : NULL;
    g->ulAADLen = (CK_ULONG)aad_len;
    g->ulTagBits = LUNA_HSM_TAG_LEN * 8;
}

luna_err luna_p11_random(luna_p11 *p, uint8_t *out, size_t n)
{
    LUNA_ENSURE(p != NULL && out != NULL && n > 0, LUNA_ERR_INVALID_ARG);
    return ck(p, p->f->C_GenerateRandom(p->session, out, (CK_ULONG)n));
}

luna_err luna_p11_seal(luna_p11 *p, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                       const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                       uint8_t *out)
{
    CK_GCM_PARAMS g;
    CK_MECHANISM m = {CKM_AES_GCM, &g, sizeof(g)};
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    CK_ULONG clen = (CK_ULONG)(pt_len + LUNA_HSM_TAG_LEN);
    luna_err err;

    LUNA_ENSURE(p != NULL && wrapped != NULL && pt != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad != NULL || aad_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(pt_len >= 1 && pt_len <= LUNA_HSM_SEAL_MAX, LUNA_ERR_TOO_LARGE);
    LUNA_ENSURE(aad_len <= LUNA_HSM_AAD_MAX, LUNA_ERR_TOO_LARGE);
    LUNA_GUARD(unwrap_kek(p, wrapped, &k));
    /* Random 96-bit nonces: keep well under 2^32 seals per KEK (NIST SP 800-38D). */
    LUNA_TRY(luna_p11_random(p, out, LUNA_HSM_NONCE_LEN), out);
    gcm_params(&g, out, aad, aad_len);
    LUNA_TRY(ck(p, p->f->C_EncryptInit(p->session, &m, k)), out);
    LUNA_TRY(ck(p, p->f->C_Encrypt(p->session, (CK_BYTE *)(uintptr_t)pt, (CK_ULONG)pt_len,
                                   out + LUNA_HSM_NONCE_LEN, &clen)),
             out);
    LUNA_TRY_ENSURE(clen == pt_len + LUNA_HSM_TAG_LEN, LUNA_ERR_CRYPTO, out);
out:
    (void)p->f->C_DestroyObject(p->session, k);
    if (err != LUNA_OK)
        luna_wipe(out, pt_len + LUNA_HSM_SEAL_OVERHEAD);
    return err;
}

luna_err luna_p11_open_sealed(luna_p11 *p, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                              size_t sealed_len, uint8_t *out)
{
    uint8_t nonce[LUNA_HSM_NONCE_LEN];
    uint8_t tmp[LUNA_HSM_SEAL_MAX + LUNA_HSM_TAG_LEN];
    CK_GCM_PARAMS g;
    CK_MECHANISM m = {CKM_AES_GCM, &g, sizeof(g)};
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    CK_ULONG plen = sizeof(tmp);
    size_t clen;
    luna_err err;

    LUNA_ENSURE(p != NULL && wrapped != NULL && sealed != NULL && out != NULL,
                LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad != NULL || aad_len == 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(aad_len <= LUNA_HSM_AAD_MAX, LUNA_ERR_TOO_LARGE);
    LUNA_ENSURE(sealed_len > LUNA_HSM_SEAL_OVERHEAD &&
                    sealed_len <= LUNA_HSM_SEAL_MAX + LUNA_HSM_SEAL_OVERHEAD,
                LUNA_ERR_FORMAT);
    clen = sealed_len - LUNA_HSM_NONCE_LEN;
    memcpy(nonce, sealed, LUNA_HSM_NONCE_LEN);
    LUNA_GUARD(unwrap_kek(p, wrapped, &k));
    gcm_params(&g, nonce, aad, aad_len);
    LUNA_TRY(ck(p, p->f->C_DecryptInit(p->session, &m, k)), out);
    err = ck(p, p->f->C_Decrypt(p->session, (CK_BYTE *)(uintptr_t)(sealed + LUNA_HSM_NONCE_LEN),
                                (CK_ULONG)clen, tmp, &plen));
    /* Tokens differ in how they report a bad tag; all of them mean "refused". */
    if (err == LUNA_ERR_CRYPTO)
        err = LUNA_ERR_VERIFY;
    if (err != LUNA_OK)
        goto out;
    LUNA_TRY_ENSURE(plen == clen - LUNA_HSM_TAG_LEN, LUNA_ERR_CRYPTO, out);
    memcpy(out, tmp, plen);
out:
    (void)p->f->C_DestroyObject(p->session, k);
    luna_wipe(tmp, sizeof(tmp));
    return err;
}

luna_err luna_p11_mac(luna_p11 *p, const uint8_t *msg, size_t len, uint8_t tag[LUNA_HSM_MAC_LEN])
{
    static uint8_t empty;
    CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG tlen = LUNA_HSM_MAC_LEN;

    LUNA_ENSURE(p != NULL && tag != NULL && (msg != NULL || len == 0), LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(len <= LUNA_HSM_MAC_MSG_MAX, LUNA_ERR_TOO_LARGE);
    LUNA_ENSURE(p->have_mac, LUNA_ERR_CONFIG);
    LUNA_GUARD(ck(p, p->f->C_SignInit(p->session, &m, p->mac)));
    LUNA_GUARD(ck(p, p->f->C_Sign(p->session, len > 0 ? (CK_BYTE *)(uintptr_t)msg : &empty,
                                  (CK_ULONG)len, tag, &tlen)));
    LUNA_ENSURE(tlen == LUNA_HSM_MAC_LEN, LUNA_ERR_CRYPTO);
    return LUNA_OK;
}

luna_err luna_p11_mac_verify(luna_p11 *p, const uint8_t *msg, size_t len,
                             const uint8_t tag[LUNA_HSM_MAC_LEN])
{
    uint8_t mine[LUNA_HSM_MAC_LEN];
    luna_err err;

    LUNA_ENSURE(tag != NULL, LUNA_ERR_INVALID_ARG);
    /* Recompute and compare in constant time rather than trust C_Verify's timing. */
    err = luna_p11_mac(p, msg, len, mine);
    if (err == LUNA_OK && !luna_ct_equal(mine, tag, LUNA_HSM_MAC_LEN))
        err = LUNA_ERR_VERIFY;
    luna_wipe(mine, sizeof(mine));
    return err;
}
