/* TPM2_Certify with qualifying data (tpm2-tools 5.4's tpm2_certify has no -q).
 * Used by make-fixtures.sh:  certify AK_HANDLE OBJECT_HANDLE NONCE_FILE ATTEST_OUT SIG_OUT
 * Both handles are persistent with empty auth; TCTI from TPM2TOOLS_TCTI.
 * Build: cc certify.c -o certify -ltss2-esys -ltss2-tctildr -ltss2-mu */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#define CHECK(rc, what) if ((rc) != TSS2_RC_SUCCESS) { fprintf(stderr, "%s: 0x%x\n", what, rc); return 1; }

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: certify AK OBJ NONCE ATTEST SIG\n"); return 2; }
    TSS2_TCTI_CONTEXT *tcti; ESYS_CONTEXT *esys;
    CHECK(Tss2_TctiLdr_Initialize(getenv("TPM2TOOLS_TCTI"), &tcti), "tcti");
    CHECK(Esys_Initialize(&esys, tcti, NULL), "esys");
    ESYS_TR ak, obj;
    CHECK(Esys_TR_FromTPMPublic(esys, strtoul(argv[1], NULL, 0), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ak), "ak");
    CHECK(Esys_TR_FromTPMPublic(esys, strtoul(argv[2], NULL, 0), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &obj), "obj");
    TPM2B_DATA q = { 0 };
    FILE *f = fopen(argv[3], "rb"); if (!f) return 1;
    q.size = fread(q.buffer, 1, sizeof(q.buffer), f); fclose(f);
    TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
    TPM2B_ATTEST *attest; TPMT_SIGNATURE *sig;
    CHECK(Esys_Certify(esys, obj, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &q, &scheme, &attest, &sig), "certify");
    f = fopen(argv[4], "wb"); fwrite(attest->attestationData, 1, attest->size, f); fclose(f);
    uint8_t buf[sizeof(TPMT_SIGNATURE)]; size_t off = 0;
    CHECK(Tss2_MU_TPMT_SIGNATURE_Marshal(sig, buf, sizeof(buf), &off), "marshal");
    f = fopen(argv[5], "wb"); fwrite(buf, 1, off, f); fclose(f);
    Esys_Free(attest); Esys_Free(sig); Esys_Finalize(&esys); Tss2_TctiLdr_Finalize(&tcti);
    return 0;
}
