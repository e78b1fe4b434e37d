#!/usr/bin/env bash
# demo.sh - a guided tour of `ccr` and `ccr-gov` on a small generated dataset: encryption, datastores,
# governance (members, contract, consent, key release) and the clean room's mounts.
# Usage: tools/demo.sh path/to/ccr        (what `make demo` runs)
#        STORE=azurite tools/demo.sh path/to/ccr   (the datastores in Azurite, the Azure storage emulator,
#                                                   on a free loopback port: `make demo STORE=azurite`)
# Every step checks its result; the script exits non-zero at the first step that misbehaves.
set -euo pipefail

STORE=${STORE:-local}
case "$STORE" in
    local | azurite) ;;
    *) echo "demo: unknown STORE '$STORE' (local or azurite)" >&2; exit 1 ;;
esac

CCR=${1:-}
if [[ -z "$CCR" || ! -x "$CCR" ]]; then
    echo "usage: $0 path/to/ccr   (build it first: make build)" >&2
    exit 1
fi
CCR=$(cd "$(dirname "$CCR")" && pwd)/$(basename "$CCR")

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ccr-demo.XXXXXX")
AZURITE_PID=""
cleanup() {
    if [[ -n "$AZURITE_PID" ]]; then kill "$AZURITE_PID" 2>/dev/null || true; wait "$AZURITE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

n=0
step() { n=$((n + 1)); printf '\n== %d. %s\n' "$n" "$*"; }
run() { printf '   $ %s\n' "$*"; "$@"; }
fail() { printf '\ndemo FAILED: %s\n' "$*" >&2; exit 1; }

step "Generate a small dataset: nested directories, an empty file, an empty directory"
mkdir -p data/images/2024 data/tables data/empty-dir
head -c 300000 /dev/urandom > data/images/2024/photo.raw
head -c 70000 /dev/urandom > data/images/thumb.raw
seq 1 20000 | awk '{print $1 "," $1 * $1 ",row" $1}' > data/tables/squares.csv
: > data/tables/empty.csv
printf 'hello, clean room\n' > data/README.txt
find data | sort | sed 's/^/   /'

step "Create a data encryption key (32 random bytes, mode 0600) and show its key id"
run "$CCR" key new --out dek.bin
[[ $(stat -c %a dek.bin) == 600 ]] || fail "the key file is not mode 0600"
[[ $(stat -c %s dek.bin) == 32 ]] || fail "the key file is not 32 bytes"
echo "   \$ $CCR key id --key dek.bin"
KEY_ID=$("$CCR" key id --key dek.bin)
echo "   $KEY_ID"
[[ $KEY_ID =~ ^[0-9a-f]{32}$ ]] || fail "key id is not 32 hex characters"

step "Encrypt the whole tree in ccr1 (64 KiB regions, so files span several regions)"
run "$CCR" encrypt --key dek.bin --region-size 64K --quiet data data.ccr1
find data.ccr1 | sort | sed 's/^/   /'
[[ -d data.ccr1/empty-dir ]] || fail "the empty directory was not recreated"
[[ -f data.ccr1/tables/empty.csv ]] || fail "the empty file was not kept"

step "Encrypt one file in cleanroom-cse (the clean room platform's format, 16 MiB chunks)"
run "$CCR" encrypt --key dek.bin --mode cleanroom-cse --quiet data/tables/squares.csv squares.csv.cse
echo "   $(stat -c %s data/tables/squares.csv) plaintext bytes -> $(stat -c %s squares.csv.cse) bytes" \
    "(one zero-padded 16 MiB chunk + nonce, tag and trailer)"
[[ $(stat -c %s squares.csv.cse) == 16777252 ]] || fail "unexpected cleanroom-cse blob size"

step "Inspect an encrypted file without the key: format, sizes, key id"
run "$CCR" inspect data.ccr1/images/2024/photo.raw
"$CCR" inspect --json data.ccr1/images/2024/photo.raw | grep -q "\"key_id\":\"$KEY_ID\"" ||
    fail "inspect does not show the key id"

step "Inspect with the key: every region is authenticated (nothing is written)"
run "$CCR" inspect --key dek.bin data.ccr1/images/2024/photo.raw
run "$CCR" inspect --key dek.bin squares.csv.cse
"$CCR" inspect --key dek.bin --json squares.csv.cse | grep -q '"authenticated":true' ||
    fail "the cleanroom-cse file does not authenticate"

step "Flip one byte in a copy (region 2 of photo.raw) and try to decrypt it"
cp -r data.ccr1 tampered
# region i starts at 64 + i * (65536 + 16); change a byte 100 bytes into region 2
OFF=$((64 + 2 * 65552))
printf '\x5a' | dd of=tampered/images/2024/photo.raw bs=1 seek=$((OFF + 100)) conv=notrunc status=none
set +e
"$CCR" decrypt --key dek.bin --quiet tampered/images/2024/photo.raw photo.out 2> err.txt
rc=$?
set -e
sed 's/^/   stderr: /' err.txt
echo "   exit code: $rc"
[[ $rc == 3 ]] || fail "decrypting tampered data should exit 3, got $rc"
grep -q "region 2" err.txt || fail "the message does not name region 2"
grep -q "byte offset $OFF" err.txt || fail "the message does not give byte offset $OFF"
[[ ! -e photo.out ]] || fail "a partial output file was left behind"
if ls -A | grep -q 'ccr-tmp'; then fail "a temporary file was left behind"; fi
echo "   refused, and nothing was left behind"

step "The same tampered tree: the bad file is reported, the good ones are decrypted"
set +e
"$CCR" decrypt --key dek.bin --quiet tampered tampered.out 2> err.txt
rc=$?
set -e
sed 's/^/   stderr: /' err.txt
[[ $rc == 3 ]] || fail "tree decrypt with one tampered file should exit 3, got $rc"
[[ ! -e tampered.out/images/2024/photo.raw ]] || fail "the tampered file was decrypted"
cmp -s data/tables/squares.csv tampered.out/tables/squares.csv || fail "a good file was not decrypted"

step "Decrypt the good copies and compare them with the originals"
run "$CCR" decrypt --key dek.bin --quiet data.ccr1 data.back
run diff -r data data.back
run "$CCR" decrypt --key dek.bin --mode cleanroom-cse --quiet squares.csv.cse squares.back.csv
run cmp data/tables/squares.csv squares.back.csv
echo "   identical"

step "A wrong key is reported as such (ccr1 records the key id)"
"$CCR" key new --out other.bin
set +e
"$CCR" decrypt --key other.bin --quiet data.ccr1/README.txt readme.out 2> err.txt
rc=$?
set -e
sed 's/^/   stderr: /' err.txt
[[ $rc == 2 ]] || fail "a wrong key should exit 2, got $rc"
grep -q "wrong key" err.txt || fail "the message does not say wrong key"

step "Wrap the DEK under a new RSA key-encryption key, then unwrap it"
run "$CCR" kek new --out kek.pem --pub-out kek.pub.pem
[[ $(stat -c %a kek.pem) == 600 ]] || fail "the private KEK is not mode 0600"
run "$CCR" key wrap --kek kek.pub.pem --key dek.bin --out dek.wrapped
echo "   wrapped DEK: $(cut -c 1-48 dek.wrapped)..."
run "$CCR" key unwrap --kek kek.pem --wrapped @dek.wrapped --out dek.unwrapped.bin
run cmp dek.bin dek.unwrapped.bin
[[ $("$CCR" key id --key dek.unwrapped.bin) == "$KEY_ID" ]] || fail "the unwrapped key has another id"
echo "   the unwrapped key is the original DEK"

if [[ "$STORE" == azurite ]]; then
    step "Start Azurite, Microsoft's Azure Storage emulator, on a free loopback port (in memory)"
    "$ROOT/tools/bootstrap-azurite.sh"
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/azurite"
    (cd "$WORK/azurite" && exec "$ROOT/tests/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 \
        --blobPort "$PORT" --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent \
        > "$WORK/azurite/out.log" 2>&1) &
    AZURITE_PID=$!
    for _ in $(seq 1 300); do
        if (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
        kill -0 "$AZURITE_PID" 2>/dev/null || fail "Azurite did not start: $(cat "$WORK/azurite/out.log")"
        sleep 0.1
    done
    # the emulator's well-known development account and key (public, from its documentation)
    export AZURE_STORAGE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    BASE="http://127.0.0.1:$PORT/devstoreaccount1"
    echo "   Azurite listens on 127.0.0.1:$PORT; datastores are containers at $BASE/NAME (SharedKey)"
    WHERE="Azurite (the Azure Blob protocol over HTTP)"
else
    BASE="$WORK/blobstore"
    WHERE="the local store (a directory acting as blob storage)"
fi

step "Two data owners publish to datastores in $WHERE"
export CCR_CONFIG="$WORK/ccr-config/config.json" XDG_STATE_HOME="$WORK/state"
mkdir -p owners/alice/sales owners/bob/clinics
for m in 01 02 03; do
    seq 1 3000 | awk -v m="$m" '{print "2024-" m "," $1 "," ($1 * 7) % 1000}' > "owners/alice/sales/2024-$m.csv"
done
head -c 2000000 /dev/urandom > owners/alice/sales/raw.bin
for c in north south; do
    seq 1 5000 | awk -v c="$c" '{print c "," $1 "," ($1 * 13) % 97}' > "owners/bob/clinics/$c.csv"
done
: > owners/bob/clinics/empty.csv
echo "   alice: $(find owners/alice -type f | wc -l) files, bob: $(find owners/bob -type f | wc -l) files"
echo "   Each owner gets a datastore with its own new key (the config and keys live in a temp dir here)."
run "$CCR" datastore add alice-sales --url "$BASE/alice-sales" --new-key
run "$CCR" datastore add bob-clinics --url "$BASE/bob-clinics" --mode cleanroom-cse --new-key
run "$CCR" datastore list

step "Publish both datasets, encrypted on this machine (only ciphertext reaches the store)"
run "$CCR" datastore upload alice-sales owners/alice --quiet
run "$CCR" datastore upload bob-clinics owners/bob --quiet
if [[ "$STORE" == local ]]; then
    if grep -rq "2024-01," "$WORK/blobstore/alice-sales"; then fail "plaintext found in the store"; fi
    echo "   the store holds only ciphertext"
fi
echo "   Running the same upload again skips what is already published (resume journal):"
"$CCR" datastore upload alice-sales owners/alice --json | tee up.json | sed 's/^/   /'
grep -q '"resumed":4' up.json || fail "the re-run did not resume the 4 files"

step "Verify every region of every blob, in place, writing nothing"
for ds in alice-sales bob-clinics; do
    echo "   \$ $CCR datastore verify $ds --json"
    "$CCR" datastore verify "$ds" --json | tee v.json | sed 's/^/   /'
    grep -q '"errors":0' v.json || fail "verify of $ds reported errors"
done
echo "   every blob authenticates"

step "List what alice's datastore holds: plaintext size, stored size, time"
run "$CCR" datastore ls alice-sales --long

step "Download alice's data back and compare it with the original"
run "$CCR" datastore download alice-sales alice-back --quiet
run diff -r owners/alice alice-back
echo "   identical"

# ------------------------------------------------------------------------------------------------------------
# Governance: the parties agree on what the clean room runs, and only that clean room gets the keys.
# ------------------------------------------------------------------------------------------------------------
CCR_GOV="$(dirname "$CCR")/ccr-gov"
[[ -x "$CCR_GOV" ]] || fail "ccr-gov not found next to $CCR (build it: make build)"

step "Three parties make their member identities: an operator, alice (data) and bob (results)"
mkdir -p gov/keys
for who in operator alice bob; do
    run "$CCR" gov member keygen --name "$who" --out-dir gov/keys
done
[[ $(stat -c %a gov/keys/alice_privk.pem) == 600 ]] || fail "a member key is not mode 0600"

step "The operator starts the governance service (virtual attestation: this machine has no TEE)"
run "$CCR_GOV" init --data-dir gov/service --operator-cert gov/keys/operator_cert.pem
"$CCR_GOV" serve --data-dir gov/service --port 0 --port-file gov/port --ready-file gov/ready \
    --allow-virtual-attestation --log-file gov/requests.log 2> gov/serve.err &
GOV_PID=$!
trap 'kill "$GOV_PID" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 200); do [[ -e gov/ready ]] && break; sleep 0.05; done
[[ -e gov/ready ]] || fail "ccr-gov did not start: $(cat gov/serve.err)"
export CCR_GOV_ENDPOINT="https://127.0.0.1:$(cat gov/port)" CCR_GOV_SERVICE_CERT="$WORK/gov/service/service_cert.pem"
echo "   serving at $CCR_GOV_ENDPOINT; clients pin its certificate ($CCR_GOV_SERVICE_CERT)"
OP=(--member gov/keys/operator) ALICE=(--member gov/keys/alice) BOB=(--member gov/keys/bob)
# gov_as OP|ALICE|BOB ARGS...: runs `ccr gov ARGS` signed by that member's key.
gov_as() { local -n who=$1; shift; run "$CCR" gov "$@" "${who[@]}"; }

step "The operator proposes alice and bob as members; once accepted, each activates itself"
gov_as OP member add --cert gov/keys/alice_cert.pem --name alice
gov_as OP member add --cert gov/keys/bob_cert.pem --name bob
for p in $("$CCR" gov proposal list --state open --json "${OP[@]}" | python3 -c \
    'import json,sys; print(" ".join(p["proposal_id"] for p in json.load(sys.stdin)["proposals"]))'); do
    gov_as OP proposal vote "$p" accept
done
gov_as ALICE member activate
gov_as BOB member activate
gov_as BOB member list

step "Each owner wraps its datastore's DEK under a new RSA KEK of its own"
echo "   (alice: her published sales data; bob: a new, empty datastore for the job's results)"
run "$CCR" datastore add results --url "$BASE/results" --new-key
CFG_DIR=$(dirname "$CCR_CONFIG")
run "$CCR" kek new --out gov/alice-kek.pem --pub-out gov/alice-kek.pub.pem
run "$CCR" key wrap --kek gov/alice-kek.pub.pem --key "$CFG_DIR/alice-sales.key" --out gov/sales.wrapped
run "$CCR" kek new --out gov/bob-kek.pem --pub-out gov/bob-kek.pub.pem
run "$CCR" key wrap --kek gov/bob-kek.pub.pem --key "$CFG_DIR/results.key" --out gov/results.wrapped

step "Each party writes its fragment of the clean room specification; bob merges and validates them"
run "$CCR" spec init gov/alice.yaml --party alice --member-cert gov/keys/alice_cert.pem
run "$CCR" spec add-datasource gov/alice.yaml --name sales --datastore alice-sales --mount-path /mnt/remote/sales \
    --kek-secret kek-alice --wrapped-dek @gov/sales.wrapped
run "$CCR" spec init gov/bob.yaml --party bob --member-cert gov/keys/bob_cert.pem
run "$CCR" spec add-datasink gov/bob.yaml --name results --datastore results --mount-path /mnt/remote/results \
    --kek-secret kek-bob --wrapped-dek @gov/results.wrapped
run "$CCR" spec add-application gov/bob.yaml --name compress --command gzip --arg -n --mount sales --mount results
run "$CCR" spec set-network gov/bob.yaml --egress deny
run "$CCR" spec merge gov/contract.yaml gov/alice.yaml gov/bob.yaml
run "$CCR" spec validate gov/contract.yaml
sed 's/^/   | /' gov/contract.yaml | cut -c 1-110

step "The contract: alice creates it, proposes it, and all three members accept it"
gov_as ALICE contract create c1 --spec gov/contract.yaml
gov_as ALICE contract propose c1
for who in OP ALICE BOB; do
    gov_as "$who" contract vote c1 accept
done
"$CCR" gov contract show c1 --json "${BOB[@]}" | grep -q '"state": *"accepted"' || fail "contract c1 not accepted"

step "The deployment spec the clean room will run, its measurement, and the policy allowing only that"
gov_as OP deployment generate c1 --out gov/deployment.json
gov_as OP deployment propose c1 --spec gov/deployment.json
gov_as OP policy propose c1 --from-spec gov/deployment.json
for p in $("$CCR" gov proposal list --state open --json "${OP[@]}" | python3 -c \
    'import json,sys; print(" ".join(p["proposal_id"] for p in json.load(sys.stdin)["proposals"]))'); do
    for who in OP ALICE BOB; do gov_as "$who" proposal vote "$p" accept; done
done
gov_as BOB policy show c1

step "Alice and bob deposit their KEK private keys as contract secrets"
gov_as ALICE secret deposit c1 kek-alice --file gov/alice-kek.pem
gov_as BOB secret deposit c1 kek-bob --file gov/bob-kek.pem
gov_as BOB secret list c1

# The clean room's launcher: what it mounts comes from the deployment spec, its keys from ccr-gov.
mount_field() { python3 -c 'import json,sys; m = next(m for m in json.load(open(sys.argv[1]))["mounts"] if m["name"] == sys.argv[2]); print(m[sys.argv[3]])' gov/deployment.json "$1" "$2"; }
CR="$WORK/cleanroom"
mkdir -p "$CR"
DEP=(--deployment-spec gov/deployment.json)

step "A member withdraws consent: the clean room may not start and gets no key"
gov_as BOB execution disable c1
set +e
"$CCR" gov cleanroom consent c1 --action execution "${DEP[@]}" 2> err.txt
rc=$?
"$CCR" gov key release c1 --secret kek-alice "${DEP[@]}" --wrapped-dek "$(mount_field sales wrapped_dek)" \
    --dek-out "$CR/refused.key" 2>> err.txt
rc2=$?
set -e
sed 's/^/   stderr: /' err.txt
[[ $rc == 3 && $rc2 == 3 && ! -e "$CR/refused.key" ]] || fail "consent or release was not refused ($rc, $rc2)"
gov_as BOB execution enable c1

step "The clean room asks for consent, then for its keys (encrypted to its ephemeral key, virtual evidence)"
run "$CCR" gov cleanroom consent c1 --action execution "${DEP[@]}"
run "$CCR" gov cleanroom event c1 --type started "${DEP[@]}"
for m in sales results; do
    run "$CCR" gov key release c1 --secret "$(mount_field $m kek_secret)" "${DEP[@]}" \
        --wrapped-dek "$(mount_field $m wrapped_dek)" --dek-out "$CR/$m.key"
done
cmp -s "$CR/sales.key" "$CFG_DIR/alice-sales.key" || fail "the released sales DEK is not alice's DEK"
echo "   the clean room now holds the two DEKs, and nobody else received them"
export CCR_CONFIG="$CR/config.json"
for m in sales results; do
    run "$CCR" datastore add "$m" --url "$(mount_field $m url)" --mode "$(mount_field $m mode)" --key "$CR/$m.key"
done

if [[ -w /dev/fuse ]] && command -v fusermount3 >/dev/null 2>&1; then
    step "The clean room mounts sales read-only (decrypted on the fly) and results read-write, and runs the job"
    mkdir -p mnt/in mnt/out
    MOUNTED=()
    unmount_all() { for m in "${MOUNTED[@]}"; do "$CCR" unmount "$m" >/dev/null 2>&1 || fusermount3 -u -z "$m" 2>/dev/null || true; done; }
    trap 'unmount_all; kill "$GOV_PID" 2>/dev/null || true; cleanup' EXIT
    run "$CCR" mount sales mnt/in --ready-file in.ready
    MOUNTED+=("$WORK/mnt/in")
    run "$CCR" mount results mnt/out --read-write --ready-file out.ready
    MOUNTED+=("$WORK/mnt/out")
    run ls -l mnt/in/sales
    echo "   The job (compress every CSV of the input into the sink, like the platform's hello-world job):"
    echo "   \$ for f in mnt/in/sales/*.csv; do gzip -n -c \"\$f\" > mnt/out/\$(basename \"\$f\").gz; done"
    for f in mnt/in/sales/*.csv; do gzip -n -c "$f" > "mnt/out/$(basename "$f").gz"; done
    run "$CCR" unmount mnt/out
    run "$CCR" unmount mnt/in
    MOUNTED=()
else
    step "The clean room runs the job (no /dev/fuse here: it downloads, compresses and uploads instead of mounting)"
    run "$CCR" datastore download sales cr-in --quiet
    mkdir -p cr-out
    for f in cr-in/sales/*.csv; do gzip -n -c "$f" > "cr-out/$(basename "$f").gz"; done
    run "$CCR" datastore upload results cr-out --quiet
fi
run "$CCR" gov cleanroom event c1 --type finished --data '{"exit_code":0}' "${DEP[@]}"

step "Bob, the results owner, downloads and decrypts the output with his own key, and checks it"
export CCR_CONFIG="$CFG_DIR/config.json"
run "$CCR" datastore ls results --long
run "$CCR" datastore download results results-back --quiet
for f in owners/alice/sales/*.csv; do
    gzip -n -c "$f" | cmp - "results-back/$(basename "$f").gz" || fail "result for $(basename "$f") differs"
done
echo "   every result equals the job run on the plaintext"

step "Any member reads the audit trail: the clean room's events, and the verified hash chain of every change"
gov_as ALICE event list c1 --all
gov_as ALICE audit verify
kill "$GOV_PID"
wait "$GOV_PID" || fail "ccr-gov did not stop cleanly"
run "$CCR_GOV" verify --data-dir gov/service

printf '\ndemo OK\n'
