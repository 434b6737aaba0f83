#!/bin/sh
# Regenerates the enrollment fixtures of crates/veritee-tpm/tests with swtpm, its local
# CA (swtpm_localca), tpm2-tools 5.x and certify.c (cc, libtss2-dev). Run from anywhere:
#     sh crates/veritee-tpm/tests/data/make-fixtures.sh [PORT]
# PORT (default 2340) and PORT+1 are used by swtpm, then by a second swtpm at PORT+2.
# Every output lands next to this script; the TPM states are thrown away.
#
# Outputs (TPMT_PUBLIC files have no TPM2B size; attests are TPMS_ATTEST bytes;
# signatures are TPMT_SIGNATURE):
#   ca-root.pem, ca-intermediate.pem   TPM A's local CA: root, then the EK issuer
#   ek.der, ek.pub                     TPM A's EK certificate and RSA-2048 EK
#   ak.pub                             AK (restricted RSASSA-SHA256 signing key)
#   storage.pub                        storage key: fixedTPM|fixedParent, policy PCR only
#   certify.attest, certify.sig        TPM2_Certify(storage key) by the AK over nonce.bin
#   quote.attest, quote.sig            TPM2_Quote(sha256:0,1,7,8) by the AK over nonce.bin
#   pcrs.bin                           the quoted SHA-256 PCR values, concatenated
#   nonce.bin                          the enrollment nonce
#   exportable.pub/.attest/.sig        a storage key without fixedTPM/fixedParent, certified
#   userwithauth.pub/.attest/.sig      a storage key with userWithAuth set, certified
#   otherpolicy.pub/.attest/.sig       a storage key whose policy is over PCR 0 only
#   other-ca-ek.der, other-ca-root.pem TPM B's EK certificate and its own local CA's root
#   quote16.attest/.sig, pcrs16.bin    a quote over sha256:0,16 (PCR 16 is resettable)
set -eu

OUT=$(cd "$(dirname "$0")" && pwd)
PORT=${1:-2340}
WORK=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# setup_tpm DIR: a TPM state with an EK certificate issued by a local CA in DIR/ca.
setup_tpm() {
    d=$1
    mkdir -p "$d/state" "$d/ca"
    cat >"$d/localca.conf" <<EOF
statedir = $d/ca
signingkey = $d/ca/signkey.pem
issuercert = $d/ca/issuercert.pem
certserial = $d/ca/certserial
EOF
    cat >"$d/setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $d/localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
EOF
    swtpm_setup --tpm2 --tpmstate "$d/state" --create-ek-cert --create-platform-cert \
        --lock-nvram --overwrite --config "$d/setup.conf" >"$d/setup.log" 2>&1
}

# start_tpm DIR PORT
start_tpm() {
    swtpm socket --tpmstate dir="$1/state" --tpm2 \
        --server type=tcp,port="$2" --ctrl type=tcp,port=$(($2 + 1)) \
        --flags not-need-init,startup-clear &
    PIDS="$PIDS $!"
    sleep 1
}

strip2b() { tail -c +3 "$1" >"$2"; }

# --- TPM B: only its EK certificate and CA root (a different manufacturer) ----------
setup_tpm "$WORK/b"
start_tpm "$WORK/b" $((PORT + 2))
TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$((PORT + 2))" tpm2_nvread 0x01c00002 -o "$OUT/other-ca-ek.der"
cp "$WORK/b/ca/swtpm-localca-rootca-cert.pem" "$OUT/other-ca-root.pem"

# --- TPM A: the enrolling target ------------------------------------------------------
setup_tpm "$WORK/a"
start_tpm "$WORK/a" "$PORT"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
cd "$WORK"
# tpm2-tools 5.4's tpm2_certify takes no qualifying data: a small ESAPI program does.
cc "$OUT/certify.c" -o certify -ltss2-esys -ltss2-tctildr -ltss2-mu
cp a/ca/swtpm-localca-rootca-cert.pem "$OUT/ca-root.pem"
cp a/ca/issuercert.pem "$OUT/ca-intermediate.pem"
tpm2_nvread 0x01c00002 -o "$OUT/ek.der"

printf '\000\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017veritee-enroll!!' >"$OUT/nonce.bin"
NONCE=$(od -An -tx1 -v "$OUT/nonce.bin" | tr -d ' \n')
PCRS=sha256:0,1,7,8

tpm2_createek -c ek.ctx -G rsa -u ek.2b >/dev/null
strip2b ek.2b "$OUT/ek.pub"
tpm2_flushcontext -t
tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.2b -n ak.name >/dev/null
strip2b ak.2b "$OUT/ak.pub"
tpm2_flushcontext -t
tpm2_evictcontrol -C o -c ak.ctx 0x81000100 >/dev/null
tpm2_flushcontext -t

# A non-zero PCR 8 (an OS PCR, not resettable), so that the policy and quote are over
# more than zeros.
tpm2_pcrextend 8:sha256=$(printf 'veritee fixture' | sha256sum | cut -d' ' -f1)
tpm2_pcrread "$PCRS" -o "$OUT/pcrs.bin" >/dev/null
tpm2_pcrread sha256:0 -o pcr0.bin >/dev/null
# policy_of PCRS VALUES OUT: PolicyPCR in a trial session.
policy_of() {
    tpm2_startauthsession -S trial.ctx >/dev/null
    tpm2_policypcr -S trial.ctx -l "$1" -f "$2" -L "$3" >/dev/null
    tpm2_flushcontext trial.ctx
}
policy_of "$PCRS" "$OUT/pcrs.bin" policy.bin
policy_of sha256:0 pcr0.bin policy0.bin

tpm2_createprimary -C o -G rsa2048 -c primary.ctx >/dev/null
tpm2_flushcontext -t

# make_key NAME ATTRIBUTES POLICY: creates, loads and certifies a storage key.
make_key() {
    tpm2_flushcontext -t
    tpm2_create -C primary.ctx -G rsa2048 -a "$2" -L "$3" -u "$1.2b" -r "$1.priv" >/dev/null
    strip2b "$1.2b" "$OUT/$1.pub"
    tpm2_flushcontext -t
    tpm2_load -C primary.ctx -u "$1.2b" -r "$1.priv" -c "$1.ctx" >/dev/null
    tpm2_flushcontext -t
    tpm2_evictcontrol -C o -c "$1.ctx" 0x81000101 >/dev/null
    tpm2_flushcontext -t
    ./certify 0x81000100 0x81000101 "$OUT/nonce.bin" "$1.attest" "$1.sig"
    tpm2_evictcontrol -C o -c 0x81000101 >/dev/null
}
make_key storage "fixedtpm|fixedparent|sensitivedataorigin|decrypt|noda" policy.bin
make_key exportable "sensitivedataorigin|decrypt|noda" policy.bin
make_key userwithauth "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt|noda" policy.bin
make_key otherpolicy "fixedtpm|fixedparent|sensitivedataorigin|decrypt|noda" policy0.bin
cp storage.attest "$OUT/certify.attest"
cp storage.sig "$OUT/certify.sig"
for k in exportable userwithauth otherpolicy; do
    cp "$k.attest" "$OUT/$k.attest"
    cp "$k.sig" "$OUT/$k.sig"
done

tpm2_quote -c 0x81000100 -l "$PCRS" -q "$NONCE" -g sha256 -m "$OUT/quote.attest" -s "$OUT/quote.sig" >/dev/null
# A quote that selects the resettable PCR 16, which no policy may rest on.
tpm2_quote -c 0x81000100 -l sha256:0,16 -q "$NONCE" -g sha256 -m "$OUT/quote16.attest" -s "$OUT/quote16.sig" >/dev/null
tpm2_pcrread sha256:0,16 -o "$OUT/pcrs16.bin" >/dev/null
echo "fixtures written to $OUT"
