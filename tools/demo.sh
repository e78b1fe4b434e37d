#!/usr/bin/env bash
# demo.sh - a guided tour of the `ccr` command on a small generated dataset.
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

if [[ -w /dev/fuse ]] && command -v fusermount3 >/dev/null 2>&1; then
    step "The clean room's view: alice's data mounted read-only (decrypted on the fly), a datasink mounted read-write"
    echo "   The job's results go to a datastore of their own, encrypted under the results owner's key."
    run "$CCR" datastore add results --url "$BASE/results" --new-key
    mkdir -p mnt/in mnt/out
    MOUNTED=()
    unmount_all() { for m in "${MOUNTED[@]}"; do "$CCR" unmount "$m" >/dev/null 2>&1 || fusermount3 -u -z "$m" 2>/dev/null || true; done; }
    trap 'unmount_all; cleanup' EXIT
    run "$CCR" mount alice-sales mnt/in --ready-file in.ready
    MOUNTED+=("$WORK/mnt/in")
    run "$CCR" mount results mnt/out --read-write --ready-file out.ready
    MOUNTED+=("$WORK/mnt/out")
    run ls -l mnt/in/sales
    echo "   The job (here: compress every CSV of the input into the sink, like the platform's hello-world job):"
    echo "   \$ for f in mnt/in/sales/*.csv; do gzip -n -c \"\$f\" > mnt/out/\$(basename \"\$f\").gz; done"
    for f in mnt/in/sales/*.csv; do gzip -n -c "$f" > "mnt/out/$(basename "$f").gz"; done
    run "$CCR" unmount mnt/out
    run "$CCR" unmount mnt/in
    MOUNTED=()

    step "The results owner downloads and decrypts the output, and checks it"
    run "$CCR" datastore ls results --long
    run "$CCR" datastore download results results-back --quiet
    for f in owners/alice/sales/*.csv; do
        gzip -n -c "$f" | cmp - "results-back/$(basename "$f").gz" || fail "result for $(basename "$f") differs"
    done
    echo "   every result equals the job run on the plaintext"
else
    printf '\n== (the mount part is skipped: no writable /dev/fuse or no fusermount3 on this machine)\n'
fi

printf '\ndemo OK\n'
