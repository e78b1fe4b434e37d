/*
 * ccr_gov.c - `ccr gov NOUN VERB ...`: the governance client. Option mapping onto the signing client
 * (ccr/gov_client.h) and the REST routes of docs/governance.md; the clean room verbs (consent, events,
 * documents, key release) and `audit verify` are here too.
 *
 * Every verb that talks to ccr-gov takes --endpoint, --service-cert, --member and --json. Output is text
 * for people by default (tables for lists, one line per action); --json prints the service's answer as
 * is, pretty, for scripts. Exit codes: 0 ok; 1 usage; 2 transport, file or service error; 3 refused for
 * authentication or attestation (401, 403), a refused consent, or a problem found by `audit verify`.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ccr/gov_client.h"
#include "ccr/gov_crypto.h"
#include "ccr/spec.h"
#include "ccr_tool.h"

#define GOV_FILE_MAX   (1024 * 1024) /* a spec, an actions file, a document */
#define GOV_SECRET_MAX (64 * 1024)   /* the service's limit on a secret */
#define GOV_PAGE_MAX   1000          /* the service's largest page */
#define GOV_ID_MAX     128
#define GOV_PATH_MAX   512

/* ===================================================================================================== */
/* Options                                                                                                */
/* ===================================================================================================== */

enum {
    O_BASE = 1000,
    O_ENDPOINT = O_BASE,
    O_SERVICE_CERT,
    O_MEMBER,
    O_JSON,
    O_SPEC,
    O_VERSION,
    O_CERT,
    O_NAME,
    O_OUT_DIR,
    O_ACTIONS,
    O_STATE,
    O_OUT,
    O_MEASUREMENT,
    O_FROM_SPEC,
    O_FILE,
    O_CONTRACT,
    O_FROM,
    O_LIMIT,
    O_ALL,
    O_ACTION,
    O_TYPE,
    O_DATA,
    O_DEPLOYMENT_SPEC,
    O_SECRET,
    O_WRAPPED_DEK,
    O_DEK_OUT,
    O_FORCE,
    O_END
};
#define F(o) (1ull << ((o)-O_BASE))
/* The common flags: a member verb, a clean room verb (no member key: it signs with an ephemeral key). */
#define NET (F(O_ENDPOINT) | F(O_SERVICE_CERT) | F(O_MEMBER) | F(O_JSON))
#define CR  (F(O_ENDPOINT) | F(O_SERVICE_CERT) | F(O_JSON) | F(O_DEPLOYMENT_SPEC))

static const struct option long_opts[] = {
    {"endpoint", required_argument, NULL, O_ENDPOINT},
    {"service-cert", required_argument, NULL, O_SERVICE_CERT},
    {"member", required_argument, NULL, O_MEMBER},
    {"json", no_argument, NULL, O_JSON},
    {"spec", required_argument, NULL, O_SPEC},
    {"version", required_argument, NULL, O_VERSION},
    {"cert", required_argument, NULL, O_CERT},
    {"name", required_argument, NULL, O_NAME},
    {"out-dir", required_argument, NULL, O_OUT_DIR},
    {"actions", required_argument, NULL, O_ACTIONS},
    {"state", required_argument, NULL, O_STATE},
    {"out", required_argument, NULL, O_OUT},
    {"measurement", required_argument, NULL, O_MEASUREMENT},
    {"from-spec", required_argument, NULL, O_FROM_SPEC},
    {"file", required_argument, NULL, O_FILE},
    {"contract", required_argument, NULL, O_CONTRACT},
    {"from", required_argument, NULL, O_FROM},
    {"limit", required_argument, NULL, O_LIMIT},
    {"all", no_argument, NULL, O_ALL},
    {"action", required_argument, NULL, O_ACTION},
    {"type", required_argument, NULL, O_TYPE},
    {"data", required_argument, NULL, O_DATA},
    {"deployment-spec", required_argument, NULL, O_DEPLOYMENT_SPEC},
    {"secret", required_argument, NULL, O_SECRET},
    {"wrapped-dek", required_argument, NULL, O_WRAPPED_DEK},
    {"dek-out", required_argument, NULL, O_DEK_OUT},
    {"force", no_argument, NULL, O_FORCE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

#define MAX_POS 4

/* One invocation: the parsed options and what the verb acquired (released by gov_fini). */
struct gov {
    char cmd[64];            /* "gov contract update", for messages */
    const char *noun, *verb; /* "contract", "update": verbs shared by nouns look at them */
    const char *opt[O_END - O_BASE];
    bool json;
    int npos;
    const char *pos[MAX_POS];
    struct ccr_gov_client *cl;
    struct ccr_gov_ident *member;
    struct ccr_gov_ephkey *eph;
    uint8_t *evidence;
    size_t evidence_len;
};

#define OPT(g, o) ((g)->opt[(o)-O_BASE])

static void gov_fini(struct gov *g)
{
    ccr_gov_client_destroy(g->cl);
    ccr_gov_ident_destroy(g->member);
    ccr_gov_ephkey_destroy(g->eph);
    ccr_free(g->evidence);
    g->cl = NULL;
    g->member = NULL;
    g->eph = NULL;
    g->evidence = NULL;
}

/* ===================================================================================================== */
/* Help                                                                                                   */
/* ===================================================================================================== */

#define NET_HELP                                                                                          \
    "Connection:\n"                                                                                       \
    "      --endpoint URL       the service, https://HOST:PORT (default: $CCR_GOV_ENDPOINT)\n"            \
    "      --service-cert FILE  the service's certificate, pinned (default: $CCR_GOV_SERVICE_CERT)\n"     \
    "      --member PREFIX      sign as the member whose keys are PREFIX_cert.pem and PREFIX_privk.pem\n" \
    "                           (default: $CCR_GOV_MEMBER)\n"                                             \
    "      --json               print the service's JSON answer (pretty) instead of text\n"               \
    "  -h, --help               show this help\n"

#define CR_HELP                                                                                          \
    "Clean room (signs with a fresh ephemeral P-384 key and virtual evidence of the measurement of\n"    \
    "--deployment-spec; the service must run with --allow-virtual-attestation):\n"                       \
    "      --deployment-spec FILE  the deployment spec (JSON) the clean room runs; its measurement is\n" \
    "                              the SHA-256 of its canonical bytes\n"                                 \
    "      --endpoint URL       the service (default: $CCR_GOV_ENDPOINT)\n"                              \
    "      --service-cert FILE  the service's certificate, pinned (default: $CCR_GOV_SERVICE_CERT)\n"    \
    "      --json               print the service's JSON answer (pretty) instead of text\n"              \
    "  -h, --help               show this help\n"

#define EXITS_HELP                                                                                          \
    "Exit codes: 0 ok; 1 usage error; 2 transport, file or service error (the service's status, code and\n" \
    "message are printed, e.g. '412 VersionMismatch: ...'); 3 refused: authentication or attestation\n"     \
    "(401, 403).\n"

#define ENV_EXAMPLE                                                                              \
    "  export CCR_GOV_ENDPOINT=https://gov.example:8443 CCR_GOV_SERVICE_CERT=service_cert.pem\n" \
    "  export CCR_GOV_MEMBER=keys/alice\n"

static const char gov_help[] =
    "Usage: ccr gov <noun> <verb> [options]\n"
    "\n"
    "The governance client: talks to a ccr-gov service over HTTPS, every request signed (COSE_Sign1,\n"
    "ES384) by a member's key, or by a clean room's ephemeral key with its attestation evidence.\n"
    "\n"
    "  member keygen --name N [--out-dir D]      create a member identity (key and certificate)\n"
    "  member id --cert FILE                     print a certificate's member id\n"
    "  member add --cert FILE [--name N]         propose a new member\n"
    "  member activate | list                    activate yourself once accepted; list the members\n"
    "  proposal create --actions FILE | list [--state S] | show ID | vote ID accept|reject | withdraw ID\n"
    "  contract create ID --spec FILE | update ID --spec FILE --version N | show ID | list [--state S]\n"
    "  contract propose ID [--version N] | vote ID accept|reject\n"
    "  deployment generate ID [--out FILE] | propose ID --spec FILE | show ID\n"
    "  policy propose ID (--measurement HEX | --from-spec FILE) | show ID\n"
    "  execution enable|disable|status ID\n"
    "  logging enable|disable ID ; telemetry enable|disable ID      (proposals)\n"
    "  secret deposit ID NAME --file FILE | list ID\n"
    "  document create DOC --contract ID --file F | update DOC --file F --version N | show DOC\n"
    "  document propose DOC [--version N] | vote DOC accept|reject\n"
    "  event list ID [--from S] [--limit N] [--all]\n"
    "  audit list [--from S] [--limit N] [--all] | verify\n"
    "  cleanroom consent ID --action A --deployment-spec FILE\n"
    "  cleanroom event ID --type T [--data JSON] --deployment-spec FILE\n"
    "  cleanroom document ID DOC --deployment-spec FILE\n"
    "  key release ID --secret NAME --deployment-spec FILE\n"
    "              (--out FILE | --wrapped-dek B64|@FILE --dek-out FILE)\n"
    "\n"
    "Common options: --endpoint URL ($CCR_GOV_ENDPOINT), --service-cert FILE ($CCR_GOV_SERVICE_CERT),\n"
    "--member PREFIX ($CCR_GOV_MEMBER: PREFIX_cert.pem and PREFIX_privk.pem), --json.\n"
    "Run 'ccr gov <noun> <verb> --help' for a verb's options and examples.\n"
    "\n"
    "Example:\n" ENV_EXAMPLE "  ccr gov contract create c1 --spec merged.yaml\n"
    "  ccr gov contract propose c1\n"
    "  ccr gov proposal list --state open\n"
    "\n" EXITS_HELP;

/* ----------------------------------------------------------------------------------------------------- */

static const char h_member_keygen[] =
    "Usage: ccr gov member keygen --name N [--out-dir D] [--json]\n"
    "\n"
    "Creates a member identity: an EC P-384 key (D/N_privk.pem, mode 0600) and a self-signed certificate\n"
    "(D/N_cert.pem, CN=N, valid 10 years). Prints the member id (the SHA-256 of the certificate) and the\n"
    "two file names. Give the certificate to the other members (ccr gov member add); keep the key.\n"
    "Refuses to overwrite existing files.\n"
    "\n"
    "Options:\n"
    "      --name N       the member's name (required)\n"
    "      --out-dir D    where to write the files (default: the current directory)\n"
    "      --json         print {\"member_id\",\"cert\",\"privk\"}\n"
    "  -h, --help         show this help\n"
    "\n"
    "Example:\n"
    "  ccr gov member keygen --name alice --out-dir keys   # then --member keys/alice\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 a file exists or cannot be written.\n";

static const char h_member_id[] =
    "Usage: ccr gov member id --cert FILE [--json]\n"
    "\n"
    "Prints the member id of a certificate: the lowercase hex SHA-256 of its DER encoding.\n"
    "\n"
    "Options:\n"
    "      --cert FILE    the member's certificate, PEM (required)\n"
    "      --json         print {\"member_id\",\"name\"}\n"
    "  -h, --help         show this help\n"
    "\n"
    "Example:\n"
    "  ccr gov member id --cert keys/bob_cert.pem\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 unreadable or not an EC P-384 certificate.\n";

static const char h_member_add[] =
    "Usage: ccr gov member add --cert FILE [--name N] [common options]\n"
    "\n"
    "Proposes a new member (action add_member). Once every active member accepted it, the new member\n"
    "activates itself with 'ccr gov member activate'.\n"
    "\n"
    "Options:\n"
    "      --cert FILE          the new member's certificate, PEM (required)\n"
    "      --name N             its name (default: the certificate's CN)\n" NET_HELP "\n"
    "Example:\n" ENV_EXAMPLE "  ccr gov member add --cert bob_cert.pem\n"
    "\n" EXITS_HELP;

static const char h_member_activate[] =
    "Usage: ccr gov member activate [common options]\n"
    "\n"
    "Activates the signing member once its add_member proposal was accepted "
    "(message type ack).\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov member activate --member keys/bob\n"
    "\n" EXITS_HELP;

static const char h_member_list[] =
    "Usage: ccr gov member list [common options]\n"
    "\n"
    "Lists the members: name, status (accepted, active, removed) and member id.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov member list\n"
    "\n" EXITS_HELP;

static const char h_proposal_create[] =
    "Usage: ccr gov proposal create --actions FILE [common options]\n"
    "\n"
    "Creates a proposal from a JSON or YAML file holding {\"actions\":[{\"name\",\"args\"}...]} or just\n"
    "the array of actions (docs/governance.md lists the actions).\n"
    "\n"
    "Options:\n"
    "      --actions FILE       the actions (required)\n" NET_HELP "\n"
    "Example:\n"
    "  echo '[{\"name\":\"remove_member\",\"args\":{\"member_id\":\"ab12...\"}}]' > remove.json\n"
    "  ccr gov proposal create --actions remove.json\n"
    "\n" EXITS_HELP;

static const char h_proposal_list[] =
    "Usage: ccr gov proposal list [--state S] [common options]\n"
    "\n"
    "Lists proposals, oldest first: id, state, votes, actions.\n"
    "\n"
    "Options:\n"
    "      --state S            open, accepted, rejected or withdrawn\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov proposal list --state open\n"
    "\n" EXITS_HELP;

static const char h_proposal_show[] =
    "Usage: ccr gov proposal show ID [common options]\n"
    "\n"
    "Shows a proposal: its state, proposer, times, every action with its arguments, and the ballots.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov proposal show p-3\n"
    "\n" EXITS_HELP;

static const char h_proposal_vote[] =
    "Usage: ccr gov proposal vote ID accept|reject [common options]\n"
    "\n"
    "Votes on an open proposal (message type ballot). A proposal is accepted when every active member\n"
    "accepted it; one reject closes it as rejected.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov proposal vote p-3 accept\n"
    "\n" EXITS_HELP;

static const char h_proposal_withdraw[] = "Usage: ccr gov proposal withdraw ID [common options]\n"
                                          "\n"
                                          "Withdraws an open proposal you made (message type withdrawal).\n"
                                          "\n" NET_HELP "\n"
                                          "Example:\n"
                                          "  ccr gov proposal withdraw p-3\n"
                                          "\n" EXITS_HELP;

static const char h_contract_create[] =
    "Usage: ccr gov contract create ID --spec FILE [common options]\n"
    "\n"
    "Creates contract ID as a draft (version 1) holding the clean room spec in FILE (YAML or JSON, e.g.\n"
    "the output of 'ccr spec merge').\n"
    "\n"
    "Options:\n"
    "      --spec FILE          the spec (required)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov contract create c1 --spec merged.yaml\n"
    "\n" EXITS_HELP;

static const char h_contract_update[] =
    "Usage: ccr gov contract update ID --spec FILE --version N [common options]\n"
    "\n"
    "Replaces the spec of draft contract ID. N is the version you last saw (ccr gov contract show): a\n"
    "stale N is refused with 412 VersionMismatch, so concurrent edits are not lost.\n"
    "\n"
    "Options:\n"
    "      --spec FILE          the spec (required)\n"
    "      --version N          the contract's current version (required)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov contract update c1 --spec merged.yaml --version 1\n"
    "\n" EXITS_HELP;

static const char h_contract_show[] =
    "Usage: ccr gov contract show ID [common options]\n"
    "\n"
    "Shows a contract: version, state, open proposal, author, time and spec.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov contract show c1\n"
    "\n" EXITS_HELP;

static const char h_contract_list[] = "Usage: ccr gov contract list [--state S] [common options]\n"
                                      "\n"
                                      "Lists contracts: id, version, state, open proposal, last update.\n"
                                      "\n"
                                      "Options:\n"
                                      "      --state S            draft, proposed or accepted\n" NET_HELP "\n"
                                      "Example:\n"
                                      "  ccr gov contract list --state draft\n"
                                      "\n" EXITS_HELP;

static const char h_contract_propose[] =
    "Usage: ccr gov contract propose ID [--version N] [common options]\n"
    "\n"
    "Proposes draft contract ID for acceptance (action set_contract). Without --version the contract's\n"
    "current version is proposed.\n"
    "\n"
    "Options:\n"
    "      --version N          the version to propose (stale: 412)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov contract propose c1 --version 2\n"
    "\n" EXITS_HELP;

static const char h_contract_vote[] =
    "Usage: ccr gov contract vote ID accept|reject [common options]\n"
    "\n"
    "Votes on the contract's open proposal (the proposal_id of the contract).\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov contract vote c1 accept\n"
    "\n" EXITS_HELP;

static const char h_deployment_generate[] =
    "Usage: ccr gov deployment generate ID [--out FILE] [common options]\n"
    "\n"
    "Turns accepted contract ID into its deployment spec (mounts, applications, network, logging,\n"
    "telemetry) and prints its measurement, the SHA-256 of its canonical bytes. Without --out the spec is\n"
    "printed on stdout and the measurement on stderr.\n"
    "\n"
    "Options:\n"
    "      --out FILE           write the spec (pretty JSON) to FILE\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov deployment generate c1 --out c1-deployment.json\n"
    "  ccr gov deployment propose c1 --spec c1-deployment.json\n"
    "\n" EXITS_HELP;

static const char h_deployment_propose[] =
    "Usage: ccr gov deployment propose ID --spec FILE [common options]\n"
    "\n"
    "Proposes the deployment spec in FILE for contract ID (action set_deployment_spec).\n"
    "\n"
    "Options:\n"
    "      --spec FILE          the deployment spec, JSON (required)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov deployment propose c1 --spec c1-deployment.json\n"
    "\n" EXITS_HELP;

static const char h_deployment_show[] =
    "Usage: ccr gov deployment show ID [common options]\n"
    "\n"
    "Shows the accepted deployment spec of contract ID and its measurement (404 until accepted).\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov deployment show c1\n"
    "\n" EXITS_HELP;

static const char h_policy_propose[] =
    "Usage: ccr gov policy propose ID (--measurement HEX | --from-spec FILE) [common options]\n"
    "\n"
    "Proposes the clean room policy of contract ID (action set_cleanroom_policy): the measurement a clean\n"
    "room must attest to before it gets consent, documents or keys.\n"
    "\n"
    "Options:\n"
    "      --measurement HEX    the allowed measurement (64 hex digits)\n"
    "      --from-spec FILE     measure this deployment spec (SHA-256 of its canonical bytes)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov policy propose c1 --from-spec c1-deployment.json\n"
    "\n" EXITS_HELP;

static const char h_policy_show[] = "Usage: ccr gov policy show ID [common options]\n"
                                    "\n"
                                    "Shows the accepted measurements of contract ID (404 until accepted).\n"
                                    "\n" NET_HELP "\n"
                                    "Example:\n"
                                    "  ccr gov policy show c1\n"
                                    "\n" EXITS_HELP;

static const char h_execution[] =
    "Usage: ccr gov execution enable|disable|status ID [common options]\n"
    "\n"
    "Contract execution is enabled from acceptance while no member holds it disabled. 'disable' places\n"
    "your own hold (the clean room is then refused consent and keys), 'enable' lifts your hold, 'status'\n"
    "shows execution, logging and telemetry.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov execution disable c1\n"
    "  ccr gov execution status c1\n"
    "\n" EXITS_HELP;

static const char h_logging[] =
    "Usage: ccr gov logging enable|disable ID [common options]\n"
    "       ccr gov telemetry enable|disable ID [common options]\n"
    "\n"
    "Proposes to enable or disable the clean room's logging or telemetry for contract ID. Disabling needs\n"
    "no votes: the proposal is accepted when it is created.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov logging enable c1\n"
    "\n" EXITS_HELP;

static const char h_secret_deposit[] =
    "Usage: ccr gov secret deposit ID NAME --file FILE [common options]\n"
    "\n"
    "Deposits secret NAME (at most 64 KiB, e.g. a KEK private key made with 'ccr kek new') for contract\n"
    "ID. The service keeps it sealed and releases it only to an attested clean room of the contract.\n"
    "Only its owner may replace it. The value is never printed.\n"
    "\n"
    "Options:\n"
    "      --file FILE          the secret's bytes (required)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov secret deposit c1 kek-northwind --file kek.pem\n"
    "\n" EXITS_HELP;

static const char h_secret_list[] = "Usage: ccr gov secret list ID [common options]\n"
                                    "\n"
                                    "Lists the secrets of contract ID: name, owner, time (never values).\n"
                                    "\n" NET_HELP "\n"
                                    "Example:\n"
                                    "  ccr gov secret list c1\n"
                                    "\n" EXITS_HELP;

static const char h_document_create[] =
    "Usage: ccr gov document create DOC --contract ID --file F [common options]\n"
    "\n"
    "Creates document DOC (a draft, version 1) for contract ID with the text of file F.\n"
    "\n"
    "Options:\n"
    "      --contract ID        the contract (required)\n"
    "      --file F             the document's text, UTF-8 (required)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov document create terms --contract c1 --file terms.md\n"
    "\n" EXITS_HELP;

static const char h_document_update[] =
    "Usage: ccr gov document update DOC --file F --version N [--contract ID] [common options]\n"
    "\n"
    "Replaces the text of draft document DOC; N is the version you last saw (stale: 412).\n"
    "\n"
    "Options:\n"
    "      --file F             the document's text (required)\n"
    "      --version N          its current version (required)\n"
    "      --contract ID        its contract (default: the document's)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov document update terms --file terms.md --version 1\n"
    "\n" EXITS_HELP;

static const char h_document_show[] = "Usage: ccr gov document show DOC [common options]\n"
                                      "\n"
                                      "Shows document DOC: contract, version, state, proposal and text.\n"
                                      "\n" NET_HELP "\n"
                                      "Example:\n"
                                      "  ccr gov document show terms\n"
                                      "\n" EXITS_HELP;

static const char h_document_propose[] =
    "Usage: ccr gov document propose DOC [--version N] [common options]\n"
    "\n"
    "Proposes draft document DOC for acceptance (action set_document); default: its current version.\n"
    "\n"
    "Options:\n"
    "      --version N          the version to propose\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov document propose terms\n"
    "\n" EXITS_HELP;

static const char h_document_vote[] = "Usage: ccr gov document vote DOC accept|reject [common options]\n"
                                      "\n"
                                      "Votes on the document's open proposal.\n"
                                      "\n" NET_HELP "\n"
                                      "Example:\n"
                                      "  ccr gov document vote terms accept\n"
                                      "\n" EXITS_HELP;

static const char h_event_list[] =
    "Usage: ccr gov event list ID [--from S] [--limit N] [--all] [common options]\n"
    "\n"
    "Lists the clean room events of contract ID (consent, key releases, the clean room's own events):\n"
    "sequence number, time, type, source, data.\n"
    "\n"
    "Options:\n"
    "      --from S             start at sequence number S\n"
    "      --limit N            at most N per page (1 to 1000; the service's default is 100)\n"
    "      --all                follow the pages to the end (with --json: one object with every "
    "event)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov event list c1 --all\n"
    "\n" EXITS_HELP;

static const char h_audit_list[] =
    "Usage: ccr gov audit list [--from S] [--limit N] [--all] [common options]\n"
    "\n"
    "Lists the service's hash-chained log: sequence number, time, actor, action, hash.\n"
    "\n"
    "Options:\n"
    "      --from S             start at sequence number S\n"
    "      --limit N            at most N per page (1 to 1000)\n"
    "      --all                follow the pages to the end (with --json: one object with every "
    "entry)\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov audit list --all\n"
    "\n" EXITS_HELP;

static const char h_audit_verify[] =
    "Usage: ccr gov audit verify [common options]\n"
    "\n"
    "Fetches the whole log and checks it here: sequence numbers, every entry's hash\n"
    "(SHA-256(prev_hash || \"\\n\" || canonical entry)) and its link to the previous one; then asks the\n"
    "service to check it too (which also replays the row images against its tables). Prints\n"
    "'audit: N entries, head HASH: OK', or each problem found.\n"
    "\n" NET_HELP "\n"
    "Example:\n"
    "  ccr gov audit verify\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 transport or service error; 3 a problem was found, or refused.\n";

static const char h_cleanroom_consent[] =
    "Usage: ccr gov cleanroom consent ID --action A --deployment-spec FILE [options]\n"
    "\n"
    "Asks, as the clean room, whether contract ID consents to an action now. Prints 'allowed' or\n"
    "'refused: REASON' (exit 3). The question is recorded as an event.\n"
    "\n"
    "Options:\n"
    "      --action A           execution, logging or telemetry (required)\n" CR_HELP "\n"
    "Example:\n"
    "  ccr gov cleanroom consent c1 --action execution --deployment-spec c1-deployment.json\n"
    "\n"
    "Exit codes: 0 allowed; 1 usage error; 2 transport, file or service error; 3 refused (also 401/403).\n";

static const char h_cleanroom_event[] =
    "Usage: ccr gov cleanroom event ID --type T [--data JSON] --deployment-spec FILE [options]\n"
    "\n"
    "Records an event of the clean room for contract ID and prints its sequence number.\n"
    "\n"
    "Options:\n"
    "      --type T             the event type (required)\n"
    "      --data JSON          its data, a JSON object (default {})\n" CR_HELP "\n"
    "Example:\n"
    "  ccr gov cleanroom event c1 --type job.done --data '{\"rows\":42}' --deployment-spec d.json\n"
    "\n" EXITS_HELP;

static const char h_cleanroom_document[] =
    "Usage: ccr gov cleanroom document ID DOC --deployment-spec FILE [options]\n"
    "\n"
    "Fetches, as the clean room of contract ID, the accepted document DOC and prints its text.\n"
    "\n" CR_HELP "\n"
    "Example:\n"
    "  ccr gov cleanroom document c1 terms --deployment-spec c1-deployment.json\n"
    "\n" EXITS_HELP;

static const char h_key_release[] =
    "Usage: ccr gov key release ID --secret NAME --deployment-spec FILE\n"
    "                           (--out FILE | --wrapped-dek B64|@FILE --dek-out FILE) [--force] [options]\n"
    "\n"
    "Asks, as the clean room, for secret NAME of contract ID. The service encrypts it to the request's\n"
    "ephemeral key; it is decrypted here and never printed. With --out the secret is written to FILE\n"
    "(mode 0600, atomically). With --wrapped-dek the secret is taken as an RSA KEK private key: the\n"
    "datastore's wrapped DEK is unwrapped with it and the DEK written to --dek-out (mode 0600). Refused\n"
    "with 403 ExecutionDisabled while a member holds execution disabled.\n"
    "\n"
    "Options:\n"
    "      --secret NAME        the contract secret (required)\n"
    "      --out FILE           write the released secret to FILE\n"
    "      --wrapped-dek B64    the wrapped DEK in base64, or @FILE to read it from FILE\n"
    "      --dek-out FILE       where to write the unwrapped DEK\n"
    "      --force              replace an existing FILE\n" CR_HELP "\n"
    "Example:\n"
    "  ccr gov key release c1 --secret kek-northwind --deployment-spec c1-deployment.json \\\n"
    "      --wrapped-dek @cowin.wrapped --dek-out cowin.bin\n"
    "\n" EXITS_HELP;

/* ===================================================================================================== */
/* Small helpers                                                                                          */
/* ===================================================================================================== */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static json_int_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* IDs and names go into URL paths: keep them to a safe alphabet instead of escaping them. */
static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GOV_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == '~'))
            return false;
    }
    return s[0] != '.';
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Prints v as pretty JSON and a newline on stdout. */
static void print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

/* Compact JSON of v for one table cell (caller frees). */
static char *compact(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* Loads a spec-like file (YAML or JSON). Prints the error and returns EXIT_IO on failure. */
static int load_doc(struct gov *g, const char *path, json_t **out)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_load(path, out, &e);
    if (rc) {
        tool_err_print(g->cmd, &e, path);
        return EXIT_IO;
    }
    return EXIT_OK;
}

/* Reads a whole file (at most max bytes). Prints the error and returns EXIT_IO on failure. */
static int read_file(struct gov *g, const char *path, size_t max, char **out, size_t *out_len)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_file_read_all(path, max, out, out_len, &e);
    if (rc) {
        if (rc == -EFBIG)
            tool_err(g->cmd, path, "larger than %zu bytes", max);
        else
            tool_err_print(g->cmd, &e, path);
        return EXIT_IO;
    }
    return EXIT_OK;
}

/* The short form of a member id for tables. */
static void short_id(const char *id, char out[13])
{
    snprintf(out, 13, "%.12s", id);
}

/* ===================================================================================================== */
/* Connection and calls                                                                                   */
/* ===================================================================================================== */

static const char *opt_or_env(struct gov *g, int o, const char *env)
{
    const char *v = OPT(g, o);
    if (v && *v)
        return v;
    v = getenv(env);
    return v && *v ? v : NULL;
}

/*
 * Creates the client. need_member: load the member's key (member requests). The clean room verbs set
 * g->eph and g->evidence first. Returns EXIT_OK or the exit code after printing the error.
 */
static int gov_connect(struct gov *g, bool need_member)
{
    const char *endpoint = opt_or_env(g, O_ENDPOINT, "CCR_GOV_ENDPOINT");
    const char *cert = opt_or_env(g, O_SERVICE_CERT, "CCR_GOV_SERVICE_CERT");
    if (!endpoint)
        return tool_usage(g->cmd, "missing --endpoint URL (or $CCR_GOV_ENDPOINT)");
    struct ccr_err e;
    ccr_err_clear(&e);
    if (need_member) {
        const char *prefix = opt_or_env(g, O_MEMBER, "CCR_GOV_MEMBER");
        if (!prefix)
            return tool_usage(g->cmd, "missing --member PREFIX (or $CCR_GOV_MEMBER)");
        char cp[PATH_MAX], kp[PATH_MAX];
        if ((size_t)snprintf(cp, sizeof(cp), "%s_cert.pem", prefix) >= sizeof(cp) ||
            (size_t)snprintf(kp, sizeof(kp), "%s_privk.pem", prefix) >= sizeof(kp))
            return tool_usage(g->cmd, "--member PREFIX is too long");
        int rc = ccr_gov_ident_load(cp, kp, &g->member, &e);
        if (rc) {
            tool_err_print(g->cmd, &e, cp);
            return EXIT_IO;
        }
    }
    struct ccr_gov_client_config cfg = {
        .endpoint = endpoint,
        .service_cert = cert,
        .member = g->member,
        .cleanroom = g->eph,
        .evidence = g->evidence,
        .evidence_len = g->evidence_len,
    };
    int rc = ccr_gov_client_create(&cfg, &g->cl, &e);
    if (rc) {
        tool_err_print(g->cmd, &e, endpoint);
        return rc == -EINVAL ? EXIT_USAGE : EXIT_IO;
    }
    return EXIT_OK;
}

/* The exit code of a service error status: refused for authentication or attestation, or another error. */
static int status_exit(int status)
{
    return status == 401 || status == 403 ? EXIT_AUTH : EXIT_IO;
}

/* Prints "ccr gov X: WHERE: 412 VersionMismatch: message" for an error answer. */
static void print_service_error(struct gov *g, const char *where, int status, const json_t *ans)
{
    const json_t *err = json_object_get(ans, "error");
    const char *code = jstr(err, "code"), *msg = jstr(err, "message");
    if (*code || *msg)
        tool_err(g->cmd, where, "%d %s: %s", status, *code ? code : "Error", *msg ? msg : "(no message)");
    else
        tool_err(g->cmd, where, "%d: unexpected answer from the service", status);
}

/*
 * One request. body is borrowed (NULL: empty payload). On a 2xx answer returns EXIT_OK with *out the
 * answer (caller json_decref; an empty answer becomes {}) and *out_status (may be NULL) its status.
 * Otherwise prints the failure (with --json also the answer on stdout) and returns the exit code.
 */
static int gov_call_st(struct gov *g, const char *where, const char *method, const char *path,
                       const json_t *body, const char *type, const char *proposal_id, json_t **out,
                       int *out_status)
{
    struct ccr_gov_call call = {
        .method = method,
        .path_query = path,
        .body = body,
        .msg_type = type,
        .proposal_id = proposal_id,
    };
    struct ccr_err e;
    ccr_err_clear(&e);
    int status = 0;
    json_t *ans = NULL;
    int rc = ccr_gov_client_call(g->cl, &call, &status, &ans, &e);
    if (rc) {
        tool_err_print(g->cmd, &e, where);
        return EXIT_IO;
    }
    if (status < 200 || status > 299) {
        if (g->json && ans)
            print_json(ans);
        print_service_error(g, where, status, ans);
        json_decref(ans);
        return status_exit(status);
    }
    if (!ans)
        ans = json_object();
    if (!ans) {
        tool_err(g->cmd, where, "out of memory");
        return EXIT_IO;
    }
    *out = ans;
    if (out_status)
        *out_status = status;
    return EXIT_OK;
}

static int gov_call(struct gov *g, const char *where, const char *method, const char *path,
                    const json_t *body, const char *type, const char *proposal_id, json_t **out)
{
    return gov_call_st(g, where, method, path, body, type, proposal_id, out, NULL);
}

/* gov_call with a body from json_pack (consumed; NULL, when that failed, gives EXIT_IO). */
static int gov_send(struct gov *g, const char *where, const char *method, const char *path, json_t *body,
                    const char *type, const char *proposal_id, json_t **out)
{
    int ex = body ? gov_call(g, where, method, path, body, type, proposal_id, out) : EXIT_IO;
    json_decref(body);
    return ex;
}

/* Prints an answer for people; with --json the answer itself is printed instead. */
typedef void (*print_fn)(struct gov *g, const json_t *ans);

/* Prints ans (consumed) as --json asks: as is, or with print. Returns EXIT_OK. */
static int show(struct gov *g, json_t *ans, print_fn print)
{
    if (g->json)
        print_json(ans);
    else
        print(g, ans);
    json_decref(ans);
    return EXIT_OK;
}

/* vsnprintf into a path buffer; ids were checked by the parser, so only the length can fail. */
static int path_vfmt(struct gov *g, char *buf, size_t cap, const char *fmt, va_list ap) CCR_PRINTF(4, 0);
static int path_vfmt(struct gov *g, char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0 || (size_t)n >= cap)
        return tool_usage(g->cmd, "arguments too long");
    return EXIT_OK;
}

static int path_fmt(struct gov *g, char *buf, size_t cap, const char *fmt, ...) CCR_PRINTF(4, 5);
static int path_fmt(struct gov *g, char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ex = path_vfmt(g, buf, cap, fmt, ap);
    va_end(ap);
    return ex;
}

/*
 * A member request without a body: connects with the member's key, sends METHOD to the path made from
 * fmt and shows the answer with print. Returns the exit code.
 */
static int member_call(struct gov *g, const char *where, const char *method, const char *type,
                       const char *proposal_id, print_fn print, const char *fmt, ...) CCR_PRINTF(7, 8);
static int member_call(struct gov *g, const char *where, const char *method, const char *type,
                       const char *proposal_id, print_fn print, const char *fmt, ...)
{
    int ex = gov_connect(g, true);
    if (ex)
        return ex;
    char path[GOV_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    ex = path_vfmt(g, path, sizeof(path), fmt, ap);
    va_end(ap);
    json_t *ans = NULL;
    if (ex || (ex = gov_call(g, where, method, path, NULL, type, proposal_id, &ans)))
        return ex;
    return show(g, ans, print);
}

/* A member GET of the path made from fmt, shown with print. */
#define member_get(g, where, print, ...) member_call(g, where, "GET", NULL, NULL, print, __VA_ARGS__)

/* ===================================================================================================== */
/* Proposals: summaries and the lines printed after create and vote                                      */
/* ===================================================================================================== */

/* Appends to buf (cap bytes) a one-line summary of the actions: "set_contract c1 v2, add_member bob". */
static void actions_summary(const json_t *actions, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    size_t i;
    json_t *a;
    json_array_foreach(actions, i, a)
    {
        const json_t *args = json_object_get(a, "args");
        char part[256];
        int n = snprintf(part, sizeof(part), "%s%s", i ? ", " : "", jstr(a, "name"));
        const char *keys[] = {"contract_id", "document_id", "name", "member_id"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && n > 0 && (size_t)n < sizeof(part); k++) {
            const char *v = jstr(args, keys[k]);
            if (*v)
                n += snprintf(part + n, sizeof(part) - (size_t)n, " %.*s",
                              strcmp(keys[k], "member_id") ? 64 : 12, v);
        }
        json_t *ver = json_object_get(args, "version");
        if (json_is_integer(ver) && n > 0 && (size_t)n < sizeof(part))
            n += snprintf(part + n, sizeof(part) - (size_t)n, " v%lld", (long long)json_integer_value(ver));
        json_t *ms = json_object_get(args, "measurements");
        if (json_is_array(ms) && n > 0 && (size_t)n < sizeof(part))
            n += snprintf(part + n, sizeof(part) - (size_t)n, " (%zu measurement%s)", json_array_size(ms),
                          json_array_size(ms) == 1 ? "" : "s");
        if (n < 0)
            continue;
        size_t len = strlen(part);
        if (used + len + 1 > cap) {
            if (cap > 4 && used + 4 <= cap)
                memcpy(buf + used, "...", 4);
            return;
        }
        memcpy(buf + used, part, len + 1);
        used += len;
    }
}

static void ballot_counts(const json_t *p, unsigned *acc, unsigned *rej)
{
    *acc = *rej = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(p, "ballots"), k, v)
    {
        (void)k;
        if (strcmp(json_string_value(v) ? json_string_value(v) : "", "accept") == 0)
            (*acc)++;
        else
            (*rej)++;
    }
}

/* Number of active members that have not voted on p, and of active members; -1 when unknown. */
static void still_to_vote(struct gov *g, const json_t *p, int *missing, int *active)
{
    *missing = *active = -1;
    struct ccr_gov_call call = {.method = "GET", .path_query = "/members"};
    int status = 0;
    json_t *ans = NULL;
    if (ccr_gov_client_call(g->cl, &call, &status, &ans, NULL) != 0 || status != 200) {
        json_decref(ans);
        return;
    }
    const json_t *ballots = json_object_get(p, "ballots");
    int m = 0, a = 0;
    size_t i;
    json_t *mem;
    json_array_foreach(json_object_get(ans, "members"), i, mem)
    {
        if (strcmp(jstr(mem, "status"), "active") != 0)
            continue;
        a++;
        if (!json_object_get(ballots, jstr(mem, "member_id")))
            m++;
    }
    json_decref(ans);
    *missing = m;
    *active = a;
}

/* "proposal p-3 created (set_contract c1 v2); 2 of 3 members must still vote" and the like. */
static void print_proposal_line(struct gov *g, const json_t *p, const char *what)
{
    char sum[512];
    actions_summary(json_object_get(p, "actions"), sum, sizeof(sum));
    const char *state = jstr(p, "state");
    printf("proposal %s %s (%s)", jstr(p, "proposal_id"), what, sum);
    if (strcmp(state, "open") == 0) {
        int missing, active;
        still_to_vote(g, p, &missing, &active);
        if (missing >= 0)
            printf("; %d of %d member%s must still vote\n", missing, active, active == 1 ? "" : "s");
        else
            printf("; open\n");
    } else {
        printf("; %s\n", state);
    }
}

static void print_created(struct gov *g, const json_t *p)
{
    print_proposal_line(g, p, "created");
}

/* Creates a proposal from an actions array (stolen) and prints the result. */
static int propose_actions(struct gov *g, const char *where, json_t *actions)
{
    json_t *body = json_pack("{s:o}", "actions", actions);
    if (!body) {
        tool_err(g->cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    json_t *ans = NULL;
    int ex = gov_send(g, where, "POST", "/proposals", body, "proposal", NULL, &ans);
    return ex ? ex : show(g, ans, print_created);
}

/* One action: {"name":name,"args":args (stolen)}, proposed alone. */
static int propose_one(struct gov *g, const char *where, const char *name, json_t *args)
{
    json_t *actions = args ? json_pack("[{s:s,s:o}]", "name", name, "args", args) : NULL;
    if (!actions) {
        tool_err(g->cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    return propose_actions(g, where, actions);
}

/* The vote of `proposal|contract|document vote`: EXIT_OK for accept or reject, else a usage error. */
static int vote_check(struct gov *g, const char *vote)
{
    if (strcmp(vote, "accept") != 0 && strcmp(vote, "reject") != 0)
        return tool_usage(g->cmd, "the vote must be 'accept' or 'reject', not '%s'", vote);
    return EXIT_OK;
}

/* Votes on proposal pid (the vote was checked by vote_check) and prints the result. */
static int vote_on(struct gov *g, const char *where, const char *pid, const char *vote)
{
    char path[GOV_PATH_MAX];
    int ex = path_fmt(g, path, sizeof(path), "/proposals/%s/ballots", pid);
    json_t *ans = NULL;
    if (ex || (ex = gov_send(g, where, "POST", path, json_pack("{s:s}", "vote", vote), "ballot", pid, &ans)))
        return ex;
    if (g->json) {
        print_json(ans);
    } else {
        char what[64];
        snprintf(what, sizeof(what), "%s recorded", vote);
        print_proposal_line(g, ans, what);
    }
    json_decref(ans);
    return EXIT_OK;
}

/* ===================================================================================================== */
/* member                                                                                                 */
/* ===================================================================================================== */

static int member_keygen(struct gov *g)
{
    const char *name = OPT(g, O_NAME), *dir = OPT(g, O_OUT_DIR) ? OPT(g, O_OUT_DIR) : ".";
    if (!name)
        return tool_usage(g->cmd, "missing --name N");
    if (!id_ok(name))
        return tool_usage(g->cmd, "invalid --name '%s' (letters, digits, '-', '_', '.')", name);
    char id[CCR_GOV_ID_HEX_LEN + 1];
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_gov_ident_keygen(dir, name, id, &e);
    if (rc) {
        if (rc == -EEXIST && !e.msg[0])
            tool_err(g->cmd, dir, "%s_cert.pem or %s_privk.pem already exists", name, name);
        else
            tool_err_print(g->cmd, &e, dir);
        return EXIT_IO;
    }
    char cert[PATH_MAX], key[PATH_MAX];
    snprintf(cert, sizeof(cert), "%s/%s_cert.pem", dir, name);
    snprintf(key, sizeof(key), "%s/%s_privk.pem", dir, name);
    if (g->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "name", name, "member_id", id, "cert", cert, "privk", key);
        print_json(o);
        json_decref(o);
    } else {
        printf("member id %s\n", id);
        printf("certificate %s\n", cert);
        printf("private key %s (keep it secret)\n", key);
    }
    return EXIT_OK;
}

/* Loads the certificate of --cert (no key). Prints the error and returns the exit code on failure. */
static int load_cert(struct gov *g, struct ccr_gov_ident **out)
{
    const char *path = OPT(g, O_CERT);
    if (!path)
        return tool_usage(g->cmd, "missing --cert FILE");
    struct ccr_err e;
    ccr_err_clear(&e);
    if (ccr_gov_ident_load(path, NULL, out, &e)) {
        tool_err_print(g->cmd, &e, path);
        return EXIT_IO;
    }
    return EXIT_OK;
}

static int member_id(struct gov *g)
{
    struct ccr_gov_ident *id = NULL;
    int ex = load_cert(g, &id);
    if (ex)
        return ex;
    if (g->json) {
        json_t *o = json_pack("{s:s,s:s}", "member_id", ccr_gov_ident_id(id), "name", ccr_gov_ident_name(id));
        print_json(o);
        json_decref(o);
    } else {
        printf("%s\n", ccr_gov_ident_id(id));
    }
    ccr_gov_ident_destroy(id);
    return EXIT_OK;
}

static int member_add(struct gov *g)
{
    struct ccr_gov_ident *id = NULL;
    int ex = load_cert(g, &id);
    if (ex)
        return ex;
    ex = gov_connect(g, true);
    if (ex == EXIT_OK) {
        const char *name = OPT(g, O_NAME) ? OPT(g, O_NAME) : ccr_gov_ident_name(id);
        json_t *args = json_pack("{s:s}", "cert", ccr_gov_ident_cert_pem(id));
        if (args && name && *name)
            json_object_set_new(args, "name", json_string(name));
        ex = propose_one(g, OPT(g, O_CERT), "add_member", args);
    }
    ccr_gov_ident_destroy(id);
    return ex;
}

static void print_activated(struct gov *g, const json_t *ans)
{
    (void)g;
    printf("member %s is %s\n", jstr(ans, "member_id"),
           *jstr(ans, "status") ? jstr(ans, "status") : "active");
}

static int member_activate(struct gov *g)
{
    return member_call(g, NULL, "POST", "ack", NULL, print_activated, "/members/activate");
}

static void print_members(struct gov *g, const json_t *ans)
{
    (void)g;
    printf("%-16s %-9s %s\n", "NAME", "STATUS", "MEMBER ID");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(ans, "members"), i, m)
        printf("%-16s %-9s %s\n", jstr(m, "name"), jstr(m, "status"), jstr(m, "member_id"));
}

static int member_list(struct gov *g)
{
    return member_get(g, NULL, print_members, "/members");
}

/* ===================================================================================================== */
/* proposal                                                                                               */
/* ===================================================================================================== */

static int proposal_create(struct gov *g)
{
    const char *path = OPT(g, O_ACTIONS);
    if (!path)
        return tool_usage(g->cmd, "missing --actions FILE");
    json_t *doc = NULL;
    int ex = load_doc(g, path, &doc);
    if (ex)
        return ex;
    json_t *actions = json_is_array(doc) ? json_incref(doc) : json_incref(json_object_get(doc, "actions"));
    json_decref(doc);
    if (!json_is_array(actions) || json_array_size(actions) == 0) {
        json_decref(actions);
        tool_err(g->cmd, path, "expected {\"actions\":[...]} or a non-empty array of actions");
        return EXIT_IO;
    }
    ex = gov_connect(g, true);
    if (ex) {
        json_decref(actions);
        return ex;
    }
    return propose_actions(g, NULL, actions);
}

static void print_proposals(struct gov *g, const json_t *ans)
{
    (void)g;
    printf("%-8s %-9s %-17s %s\n", "ID", "STATE", "VOTES", "ACTIONS");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ans, "proposals"), i, p)
    {
        char sum[512], votes[32];
        unsigned a, r;
        actions_summary(json_object_get(p, "actions"), sum, sizeof(sum));
        ballot_counts(p, &a, &r);
        snprintf(votes, sizeof(votes), "%u accept %u reject", a, r);
        printf("%-8s %-9s %-17s %s\n", jstr(p, "proposal_id"), jstr(p, "state"), votes, sum);
    }
}

static int proposal_list(struct gov *g)
{
    const char *state = OPT(g, O_STATE);
    if (state && strcmp(state, "open") && strcmp(state, "accepted") && strcmp(state, "rejected") &&
        strcmp(state, "withdrawn"))
        return tool_usage(g->cmd, "invalid --state '%s' (open, accepted, rejected or withdrawn)", state);
    return member_get(g, NULL, print_proposals, "/proposals%s%s", state ? "?state=" : "", state ? state : "");
}

/* Compact JSON of an action's arguments for people: a certificate is shown as the member id it names. */
static char *compact_args(const json_t *args)
{
    const char *pem = json_string_value(json_object_get(args, "cert"));
    if (!pem)
        return compact(args);
    json_t *copy = json_deep_copy(args);
    struct ccr_gov_ident *id = NULL;
    if (copy && ccr_gov_ident_from_cert_pem(pem, strlen(pem), &id, NULL) == 0) {
        char what[128];
        snprintf(what, sizeof(what), "<certificate of member %s>", ccr_gov_ident_id(id));
        json_object_set_new(copy, "cert", json_string(what));
    }
    ccr_gov_ident_destroy(id);
    char *s = compact(copy ? copy : args);
    json_decref(copy);
    return s;
}

static void print_proposal(struct gov *g, const json_t *p)
{
    (void)g;
    const json_t *closed = json_object_get(p, "closed_at");
    printf("proposal %s\n", jstr(p, "proposal_id"));
    printf("  state     %s\n", jstr(p, "state"));
    printf("  proposer  %s\n", jstr(p, "proposer"));
    printf("  created   %s\n", jstr(p, "created_at"));
    if (json_is_string(closed))
        printf("  closed    %s\n", json_string_value(closed));
    printf("  actions:\n");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(p, "actions"), i, a)
    {
        char *args = compact_args(json_object_get(a, "args"));
        printf("    %zu. %s %s\n", i + 1, jstr(a, "name"), args ? args : "{}");
        free(args);
    }
    printf("  ballots:%s\n", json_object_size(json_object_get(p, "ballots")) ? "" : " none");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(p, "ballots"), k, v)
        printf("    %s %s\n", k, json_string_value(v) ? json_string_value(v) : "?");
}

static int proposal_show(struct gov *g)
{
    return member_get(g, g->pos[0], print_proposal, "/proposals/%s", g->pos[0]);
}

static int proposal_vote(struct gov *g)
{
    int ex = vote_check(g, g->pos[1]);
    if (!ex)
        ex = gov_connect(g, true);
    return ex ? ex : vote_on(g, g->pos[0], g->pos[0], g->pos[1]);
}

static void print_withdrawn(struct gov *g, const json_t *p)
{
    (void)g;
    printf("proposal %s %s\n", jstr(p, "proposal_id"), jstr(p, "state"));
}

static int proposal_withdraw(struct gov *g)
{
    return member_call(g, g->pos[0], "POST", "withdrawal", g->pos[0], print_withdrawn,
                       "/proposals/%s/withdraw", g->pos[0]);
}

/* ===================================================================================================== */
/* contract and document (drafts, proposals, votes)                                                       */
/* ===================================================================================================== */

static int parse_version(struct gov *g, bool required, int64_t *out)
{
    const char *s = OPT(g, O_VERSION);
    *out = 0;
    if (!s) {
        if (required)
            return tool_usage(g->cmd, "missing --version N");
        return EXIT_OK;
    }
    uint64_t v;
    if (parse_u64(s, 1, INT64_MAX, &v))
        return tool_usage(g->cmd, "invalid --version '%s' (a positive number)", s);
    *out = (int64_t)v;
    return EXIT_OK;
}

/* PUTs body (consumed; NULL: EXIT_IO) to /KINDs/ID and prints "contract c1 created (version 1, draft)". */
static int put_object(struct gov *g, const char *kind, const char *id, json_t *body, bool create)
{
    char path[GOV_PATH_MAX];
    json_t *ans = NULL;
    int status = 0;
    int ex = path_fmt(g, path, sizeof(path), "/%ss/%s", kind, id);
    if (!ex)
        ex = body ? gov_call_st(g, id, "PUT", path, body, NULL, NULL, &ans, &status) : EXIT_IO;
    json_decref(body);
    if (ex)
        return ex;
    if (g->json) {
        print_json(ans);
    } else {
        json_int_t v = jint(ans, "version");
        printf("%s %s %s (version %lld, %s)\n", kind, id,
               create || status == 201 || v == 1 ? "created" : "updated", (long long)v,
               *jstr(ans, "state") ? jstr(ans, "state") : "draft");
    }
    json_decref(ans);
    return EXIT_OK;
}

/* contract create|update ID --spec FILE [--version N] */
static int contract_put(struct gov *g)
{
    bool create = strcmp(g->verb, "create") == 0;
    const char *id = g->pos[0], *spec_path = OPT(g, O_SPEC);
    int64_t version = 0;
    if (!spec_path)
        return tool_usage(g->cmd, "missing --spec FILE");
    int ex = parse_version(g, !create, &version);
    json_t *spec = NULL;
    if (ex || (ex = load_doc(g, spec_path, &spec)))
        return ex;
    json_t *body =
        create ? json_pack("{s:o}", "data", spec) : json_pack("{s:I,s:o}", "version", version, "data", spec);
    if (!body)
        return EXIT_IO;
    if ((ex = gov_connect(g, true))) {
        json_decref(body);
        return ex;
    }
    return put_object(g, "contract", id, body, create);
}

/* GETs /KINDs/ID (kind "contract" or "document"). */
static int get_object(struct gov *g, const char *kind, const char *id, json_t **out)
{
    char path[GOV_PATH_MAX];
    int ex = path_fmt(g, path, sizeof(path), "/%ss/%s", kind, id);
    if (ex)
        return ex;
    return gov_call(g, id, "GET", path, NULL, NULL, NULL, out);
}

static void print_contract(struct gov *g, const json_t *c)
{
    (void)g;
    printf("contract %s\n", jstr(c, "contract_id"));
    printf("  version     %lld\n", (long long)jint(c, "version"));
    printf("  state       %s\n", jstr(c, "state"));
    printf("  proposal    %s\n", *jstr(c, "proposal_id") ? jstr(c, "proposal_id") : "-");
    printf("  created by  %s\n", jstr(c, "created_by"));
    printf("  updated     %s\n", jstr(c, "updated_at"));
    printf("  data:\n");
    print_json(json_object_get(c, "data"));
}

static int contract_show(struct gov *g)
{
    return member_get(g, g->pos[0], print_contract, "/contracts/%s", g->pos[0]);
}

static void print_contracts(struct gov *g, const json_t *ans)
{
    (void)g;
    printf("%-20s %-7s %-9s %-9s %s\n", "ID", "VERSION", "STATE", "PROPOSAL", "UPDATED");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(ans, "contracts"), i, c) printf(
        "%-20s %-7lld %-9s %-9s %s\n", jstr(c, "contract_id"), (long long)jint(c, "version"),
        jstr(c, "state"), *jstr(c, "proposal_id") ? jstr(c, "proposal_id") : "-", jstr(c, "updated_at"));
}

static int contract_list(struct gov *g)
{
    const char *state = OPT(g, O_STATE);
    if (state && strcmp(state, "draft") && strcmp(state, "proposed") && strcmp(state, "accepted"))
        return tool_usage(g->cmd, "invalid --state '%s' (draft, proposed or accepted)", state);
    return member_get(g, NULL, print_contracts, "/contracts%s%s", state ? "?state=" : "", state ? state : "");
}

/* contract|document propose ID [--version N] (the noun is the kind) */
static int object_propose(struct gov *g)
{
    const char *kind = g->noun, *id = g->pos[0];
    int64_t version = 0;
    int ex = parse_version(g, false, &version);
    if (ex || (ex = gov_connect(g, true)))
        return ex;
    if (version == 0) {
        json_t *c = NULL;
        if ((ex = get_object(g, kind, id, &c)))
            return ex;
        version = jint(c, "version");
        json_decref(c);
    }
    char path[GOV_PATH_MAX];
    json_t *p = NULL;
    if ((ex = path_fmt(g, path, sizeof(path), "/%ss/%s/propose", kind, id)) ||
        (ex = gov_send(g, id, "POST", path, json_pack("{s:I}", "version", (json_int_t)version), "proposal",
                       NULL, &p)))
        return ex;
    return show(g, p, print_created);
}

/* contract|document vote ID accept|reject: a vote on the object's open proposal */
static int object_vote(struct gov *g)
{
    const char *kind = g->noun, *id = g->pos[0], *vote = g->pos[1];
    int ex = vote_check(g, vote);
    if (ex || (ex = gov_connect(g, true)))
        return ex;
    json_t *c = NULL;
    if ((ex = get_object(g, kind, id, &c)))
        return ex;
    char pid[GOV_ID_MAX + 1];
    snprintf(pid, sizeof(pid), "%s", jstr(c, "proposal_id"));
    bool open = strcmp(jstr(c, "state"), "proposed") == 0 && id_ok(pid);
    if (!open)
        tool_err(g->cmd, id,
                 "%s has no open proposal (state %s); propose it first with 'ccr gov %s propose %s'", kind,
                 jstr(c, "state"), kind, id);
    json_decref(c);
    if (!open)
        return EXIT_IO;
    return vote_on(g, id, pid, vote);
}

/* document create|update DOC --file F [--contract ID] [--version N] */
static int document_put(struct gov *g)
{
    bool create = strcmp(g->verb, "create") == 0;
    const char *id = g->pos[0], *file = OPT(g, O_FILE), *contract = OPT(g, O_CONTRACT);
    int64_t version = 0;
    if (!file)
        return tool_usage(g->cmd, "missing --file F");
    if (create && !contract)
        return tool_usage(g->cmd, "missing --contract ID");
    if (contract && !id_ok(contract))
        return tool_usage(g->cmd, "invalid --contract '%s'", contract);
    int ex = parse_version(g, !create, &version);
    if (ex)
        return ex;
    char *text = NULL;
    size_t len = 0;
    if ((ex = read_file(g, file, GOV_FILE_MAX, &text, &len)))
        return ex;
    json_t *data = json_stringn(text, len);
    ccr_free(text);
    if (!data) {
        tool_err(g->cmd, file, "not UTF-8 text");
        return EXIT_IO;
    }
    if ((ex = gov_connect(g, true))) {
        json_decref(data);
        return ex;
    }
    json_t *body = json_pack("{s:o}", "data", data);
    char cid[GOV_ID_MAX + 1] = "";
    if (contract) {
        snprintf(cid, sizeof(cid), "%s", contract);
    } else {
        json_t *d = NULL;
        if ((ex = get_object(g, "document", id, &d))) {
            json_decref(body);
            return ex;
        }
        snprintf(cid, sizeof(cid), "%s", jstr(d, "contract_id"));
        json_decref(d);
    }
    if (body && *cid)
        json_object_set_new(body, "contract_id", json_string(cid));
    if (body && !create)
        json_object_set_new(body, "version", json_integer(version));
    return put_object(g, "document", id, body, create);
}

static void print_document(struct gov *g, const json_t *d)
{
    (void)g;
    printf("document %s\n", jstr(d, "document_id"));
    printf("  contract  %s\n", jstr(d, "contract_id"));
    printf("  version   %lld\n", (long long)jint(d, "version"));
    printf("  state     %s\n", jstr(d, "state"));
    printf("  proposal  %s\n", *jstr(d, "proposal_id") ? jstr(d, "proposal_id") : "-");
    const char *text = jstr(d, "data");
    size_t n = strlen(text);
    printf("  data:\n%s%s", text, n && text[n - 1] == '\n' ? "" : "\n");
}

static int document_show(struct gov *g)
{
    return member_get(g, g->pos[0], print_document, "/documents/%s", g->pos[0]);
}

/* ===================================================================================================== */
/* deployment, policy                                                                                     */
/* ===================================================================================================== */

static void measure_hex(const uint8_t m[32], char out[65])
{
    ccr_gov_hex(m, 32, out);
}

static int deployment_generate(struct gov *g)
{
    const char *id = g->pos[0], *out = OPT(g, O_OUT);
    int ex = gov_connect(g, true);
    if (ex)
        return ex;
    json_t *c = NULL;
    if ((ex = get_object(g, "contract", id, &c)))
        return ex;
    json_t *dep = NULL;
    char *text = NULL;
    if (strcmp(jstr(c, "state"), "accepted") != 0) {
        tool_err(g->cmd, id, "the contract is %s; a deployment spec is made from an accepted contract",
                 jstr(c, "state"));
        ex = EXIT_IO;
        goto done;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_deployment(id, jint(c, "version"), json_object_get(c, "data"), &dep, &e);
    if (rc) {
        tool_err_print(g->cmd, &e, id);
        ex = EXIT_IO;
        goto done;
    }
    uint8_t m[32];
    char hex[65];
    if (ccr_json_measure(dep, m) != 0) {
        tool_err(g->cmd, id, "cannot measure the deployment spec");
        ex = EXIT_IO;
        goto done;
    }
    measure_hex(m, hex);
    text = json_dumps(dep, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) {
        ex = EXIT_IO;
        goto done;
    }
    if (out) {
        size_t n = strlen(text);
        text[n] = '\n'; /* json_dumps left room for its NUL; we write n + 1 bytes */
        rc = ccr_file_write_atomic(out, text, n + 1, 0644, true, &e);
        text[n] = '\0';
        if (rc) {
            tool_err_print(g->cmd, &e, out);
            ex = EXIT_IO;
            goto done;
        }
    }
    if (g->json) {
        json_t *o = json_pack("{s:s,s:I,s:s,s:O}", "contract_id", id, "contract_version", jint(c, "version"),
                              "measurement", hex, "spec", dep);
        if (o && out)
            json_object_set_new(o, "path", json_string(out));
        print_json(o);
        json_decref(o);
    } else if (out) {
        printf("deployment spec of contract %s (version %lld) written to %s\nmeasurement %s\n", id,
               (long long)jint(c, "version"), out, hex);
    } else {
        printf("%s\n", text);
        fprintf(stderr, "measurement %s\n", hex);
    }
done:
    free(text);
    json_decref(dep);
    json_decref(c);
    return ex;
}

static int deployment_propose(struct gov *g)
{
    const char *id = g->pos[0], *spec_path = OPT(g, O_SPEC);
    if (!spec_path)
        return tool_usage(g->cmd, "missing --spec FILE");
    json_t *spec = NULL;
    int ex = load_doc(g, spec_path, &spec);
    if (ex)
        return ex;
    if (!json_is_object(spec)) {
        json_decref(spec);
        tool_err(g->cmd, spec_path, "not a deployment spec (expected a JSON object)");
        return EXIT_IO;
    }
    if ((ex = gov_connect(g, true))) {
        json_decref(spec);
        return ex;
    }
    return propose_one(g, id, "set_deployment_spec", json_pack("{s:s,s:o}", "contract_id", id, "spec", spec));
}

static void print_deployment(struct gov *g, const json_t *ans)
{
    (void)g;
    printf("measurement %s\n", jstr(ans, "measurement"));
    print_json(json_object_get(ans, "spec"));
}

static int deployment_show(struct gov *g)
{
    return member_get(g, g->pos[0], print_deployment, "/contracts/%s/deployment", g->pos[0]);
}

/* Reads a deployment spec and its measurement. */
static int measure_file(struct gov *g, const char *path, uint8_t m[32])
{
    json_t *spec = NULL;
    int ex = load_doc(g, path, &spec);
    if (ex)
        return ex;
    int rc = ccr_json_measure(spec, m);
    json_decref(spec);
    if (rc) {
        tool_err(g->cmd, path, "cannot measure the deployment spec: %s", strerror(-rc));
        return EXIT_IO;
    }
    return EXIT_OK;
}

static int policy_propose(struct gov *g)
{
    const char *id = g->pos[0], *hex = OPT(g, O_MEASUREMENT), *from = OPT(g, O_FROM_SPEC);
    if (!hex == !from)
        return tool_usage(g->cmd, "give either --measurement HEX or --from-spec FILE");
    uint8_t m[32];
    char mh[65];
    if (hex) {
        if (strlen(hex) != 64 || ccr_gov_unhex(hex, m, 32) != 0)
            return tool_usage(g->cmd, "invalid --measurement '%s' (64 hex digits)", hex);
    } else {
        int ex = measure_file(g, from, m);
        if (ex)
            return ex;
    }
    measure_hex(m, mh);
    int ex = gov_connect(g, true);
    if (ex)
        return ex;
    return propose_one(g, id, "set_cleanroom_policy",
                       json_pack("{s:s,s:[s]}", "contract_id", id, "measurements", mh));
}

static void print_policy(struct gov *g, const json_t *ans)
{
    size_t i;
    json_t *m;
    printf("allowed measurements of contract %s:\n", g->pos[0]);
    json_array_foreach(json_object_get(ans, "measurements"), i, m)
        printf("  %s\n", json_string_value(m) ? json_string_value(m) : "?");
}

static int policy_show(struct gov *g)
{
    return member_get(g, g->pos[0], print_policy, "/contracts/%s/policy", g->pos[0]);
}

/* ===================================================================================================== */
/* execution, logging, telemetry                                                                          */
/* ===================================================================================================== */

static void print_runtime(struct gov *g, const json_t *rt)
{
    const char *id = g->pos[0];
    const json_t *ex = json_object_get(rt, "execution");
    bool on = json_is_true(json_object_get(ex, "enabled"));
    printf("contract %s\n  execution  %s", id, on ? "enabled" : "disabled");
    const json_t *by = json_object_get(ex, "disabled_by");
    if (json_array_size(by)) {
        printf(" (held by");
        size_t i;
        json_t *m;
        json_array_foreach(by, i, m)
        {
            char s[13];
            short_id(json_string_value(m) ? json_string_value(m) : "?", s);
            printf("%s %s", i ? "," : "", s);
        }
        printf(")");
    }
    printf("\n  logging    %s\n  telemetry  %s\n", jstr(rt, "logging"), jstr(rt, "telemetry"));
}

/* execution enable|disable|status ID (the verb says which) */
static int execution_do(struct gov *g)
{
    const char *id = g->pos[0];
    if (strcmp(g->verb, "status") == 0)
        return member_get(g, id, print_runtime, "/contracts/%s/runtime", id);
    return member_call(g, id, "POST", NULL, NULL, print_runtime, "/contracts/%s/execution/%s", id, g->verb);
}

/* logging|telemetry enable|disable ID: proposes the action VERB_NOUN, e.g. enable_logging */
static int option_propose(struct gov *g)
{
    char action[32];
    snprintf(action, sizeof(action), "%s_%s", g->verb, g->noun);
    int ex = gov_connect(g, true);
    if (ex)
        return ex;
    return propose_one(g, g->pos[0], action, json_pack("{s:s}", "contract_id", g->pos[0]));
}

/* ===================================================================================================== */
/* secret                                                                                                 */
/* ===================================================================================================== */

static int secret_deposit(struct gov *g)
{
    const char *id = g->pos[0], *name = g->pos[1], *file = OPT(g, O_FILE);
    if (!file)
        return tool_usage(g->cmd, "missing --file FILE");
    char *val = NULL;
    size_t len = 0;
    int ex = read_file(g, file, GOV_SECRET_MAX, &val, &len);
    if (ex)
        return ex;
    size_t cap = CCR_BASE64_LEN(len) + 1;
    char *b64 = ccr_malloc(cap);
    json_t *body = NULL;
    if (b64 && ccr_base64_encode(val, len, b64, cap) >= 0)
        body = json_pack("{s:s}", "value", b64);
    ccr_wipe(val, len);
    ccr_free(val);
    if (b64) {
        ccr_wipe(b64, cap);
        ccr_free(b64);
    }
    if (!body) {
        tool_err(g->cmd, file, "out of memory");
        return EXIT_IO;
    }
    char path[GOV_PATH_MAX];
    json_t *ans = NULL;
    ex = gov_connect(g, true);
    if (!ex)
        ex = path_fmt(g, path, sizeof(path), "/contracts/%s/secrets/%s", id, name);
    if (!ex)
        ex = gov_call(g, name, "PUT", path, body, NULL, NULL, &ans);
    /* the body holds the secret: wipe its base64 copy before freeing */
    const char *s = json_string_value(json_object_get(body, "value"));
    if (s)
        ccr_wipe((void *)s, strlen(s));
    json_decref(body);
    if (ex)
        return ex;
    if (g->json)
        print_json(ans);
    else
        printf("secret %s of contract %s deposited (%zu bytes; owner %s)\n", name, id, len,
               jstr(ans, "owner"));
    json_decref(ans);
    return EXIT_OK;
}

static void print_secrets(struct gov *g, const json_t *ans)
{
    (void)g;
    printf("%-24s %-64s %s\n", "NAME", "OWNER", "CREATED");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(ans, "secrets"), i, s)
        printf("%-24s %-64s %s\n", jstr(s, "name"), jstr(s, "owner"), jstr(s, "created_at"));
}

static int secret_list(struct gov *g)
{
    return member_get(g, g->pos[0], print_secrets, "/contracts/%s/secrets", g->pos[0]);
}

/* ===================================================================================================== */
/* event list, audit list (paged)                                                                         */
/* ===================================================================================================== */

typedef void (*row_cb)(const json_t *row);

static void event_row(const json_t *ev)
{
    char *d = compact(json_object_get(ev, "data"));
    printf("%-6lld %-20s %-16s %-16s %s\n", (long long)jint(ev, "seq"), jstr(ev, "timestamp"),
           jstr(ev, "type"), jstr(ev, "source"), d ? d : "{}");
    free(d);
}

static void audit_row(const json_t *en)
{
    printf("%-6lld %-20s %-24.24s %-20s %.16s\n", (long long)jint(en, "seq"), jstr(en, "timestamp"),
           jstr(en, "actor"), jstr(en, "action"), jstr(en, "hash"));
}

/*
 * GETs one page of base ("/audit" or "/contracts/c1/events"): from the sequence number from (if
 * have_from), at most limit entries (0: the service's default). Returns the exit code.
 */
static int get_page(struct gov *g, const char *where, const char *base, bool have_from, uint64_t from,
                    uint64_t limit, json_t **ans)
{
    char path[GOV_PATH_MAX], q[64] = "";
    size_t qn = 0;
    if (have_from)
        qn += (size_t)snprintf(q + qn, sizeof(q) - qn, "from=%llu", (unsigned long long)from);
    if (limit)
        snprintf(q + qn, sizeof(q) - qn, "%slimit=%llu", qn ? "&" : "", (unsigned long long)limit);
    int ex = path_fmt(g, path, sizeof(path), "%s%s%s", base, *q ? "?" : "", q);
    return ex ? ex : gov_call(g, where, "GET", path, NULL, NULL, NULL, ans);
}

/* Whether a page with these items is followed by another; *nx: where that one starts. */
static bool page_next(const json_t *ans, const json_t *items, uint64_t *nx)
{
    const json_t *next = json_object_get(ans, "next");
    bool more = json_is_integer(next) && json_array_size(items) > 0;
    *nx = more ? (uint64_t)json_integer_value(next) : 0;
    return more;
}

/*
 * Pages through base ("/audit" or "/contracts/c1/events") from --from with --limit, printing rows (or,
 * with --json, the answers; with --all one object holding every item). key names the array.
 */
static int page_list(struct gov *g, const char *base, const char *key, const char *where, const char *header,
                     row_cb row)
{
    uint64_t from = 0, limit = 0;
    bool all = OPT(g, O_ALL) != NULL;
    if (OPT(g, O_FROM) && parse_u64(OPT(g, O_FROM), 0, INT64_MAX, &from))
        return tool_usage(g->cmd, "invalid --from '%s' (a sequence number)", OPT(g, O_FROM));
    if (OPT(g, O_LIMIT) && parse_u64(OPT(g, O_LIMIT), 1, GOV_PAGE_MAX, &limit))
        return tool_usage(g->cmd, "invalid --limit '%s' (1 to %d)", OPT(g, O_LIMIT), GOV_PAGE_MAX);
    int ex = gov_connect(g, true);
    if (ex)
        return ex;
    json_t *acc = all && g->json ? json_array() : NULL;
    bool have_from = OPT(g, O_FROM) != NULL;
    if (!g->json)
        printf("%s\n", header);
    for (;;) {
        json_t *ans = NULL;
        if ((ex = get_page(g, where, base, have_from, from, limit, &ans)))
            break;
        const json_t *items = json_object_get(ans, key);
        if (acc) {
            json_array_extend(acc, (json_t *)items);
        } else if (g->json) {
            print_json(ans);
        } else {
            size_t i;
            json_t *it;
            json_array_foreach(items, i, it) row(it);
        }
        uint64_t nx;
        bool more = page_next(ans, items, &nx);
        json_decref(ans);
        if (!more)
            break;
        if (!all) {
            if (!g->json)
                fprintf(stderr, "(more: --from %llu, or --all)\n", (unsigned long long)nx);
            break;
        }
        if (have_from && nx <= from) {
            tool_err(g->cmd, where, "the service's next (%llu) does not advance past %llu",
                     (unsigned long long)nx, (unsigned long long)from);
            ex = EXIT_IO;
            break;
        }
        from = nx;
        have_from = true;
    }
    if (acc) {
        if (!ex) {
            json_t *o = json_pack("{s:O,s:n}", key, acc, "next");
            print_json(o);
            json_decref(o);
        }
        json_decref(acc);
    }
    return ex;
}

static int event_list(struct gov *g)
{
    char base[GOV_PATH_MAX];
    int ex = path_fmt(g, base, sizeof(base), "/contracts/%s/events", g->pos[0]);
    if (ex)
        return ex;
    char header[128];
    snprintf(header, sizeof(header), "%-6s %-20s %-16s %-16s %s", "SEQ", "TIME", "TYPE", "SOURCE", "DATA");
    return page_list(g, base, "events", g->pos[0], header, event_row);
}

static int audit_list(struct gov *g)
{
    char header[128];
    snprintf(header, sizeof(header), "%-6s %-20s %-24s %-20s %s", "SEQ", "TIME", "ACTOR", "ACTION", "HASH");
    return page_list(g, "/audit", "entries", NULL, header, audit_row);
}

/* ----------------------------------------------------------------------------------------------------- */
/* audit verify                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

/* Appends a problem (printf-style) to the problems array. */
static void problem(json_t *problems, const char *fmt, ...) CCR_PRINTF(2, 3);
static void problem(json_t *problems, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

/* Checks one entry against the chain so far (prev: the previous entry's hash, 64 hex). */
static void check_entry(const json_t *en, uint64_t expect_seq, char prev[65], json_t *problems)
{
    json_int_t seq = jint(en, "seq");
    if (!json_is_integer(json_object_get(en, "seq")) || (uint64_t)seq != expect_seq)
        problem(problems, "entry %llu: sequence number %lld, expected %llu", (unsigned long long)expect_seq,
                (long long)seq, (unsigned long long)expect_seq);
    const char *ph = jstr(en, "prev_hash"), *h = jstr(en, "hash");
    if (strcmp(ph, prev) != 0)
        problem(problems,
                "entry %lld: prev_hash %.16s... does not link to the previous entry's hash %.16s...",
                (long long)seq, ph, prev);
    json_t *c = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?}", "action", json_object_get(en, "action"), "actor",
                          json_object_get(en, "actor"), "data", json_object_get(en, "data"), "seq",
                          json_object_get(en, "seq"), "timestamp", json_object_get(en, "timestamp"));
    char *canon = NULL;
    size_t clen = 0;
    if (!c || ccr_json_canonical(c, &canon, &clen) != 0) {
        problem(problems, "entry %lld: cannot compute its canonical form", (long long)seq);
    } else {
        /* hash = SHA-256(prev_hash || "\n" || canonical), prev_hash as recorded in the entry */
        size_t n = strlen(ph) + 1 + clen;
        char *buf = malloc(n);
        if (buf) {
            memcpy(buf, ph, strlen(ph));
            buf[strlen(ph)] = '\n';
            memcpy(buf + strlen(ph) + 1, canon, clen);
            uint8_t d[32];
            char hex[65];
            ccr_gov_sha256(buf, n, d);
            ccr_gov_hex(d, 32, hex);
            if (strcmp(hex, h) != 0)
                problem(problems,
                        "entry %lld: hash mismatch (recorded %.16s..., computed %.16s...): the entry was "
                        "edited",
                        (long long)seq, h, hex);
            free(buf);
        }
    }
    free(canon);
    json_decref(c);
    snprintf(prev, 65, "%s", h);
}

static int audit_verify(struct gov *g)
{
    int ex = gov_connect(g, true);
    if (ex)
        return ex;
    json_t *problems = json_array();
    char prev[65];
    memset(prev, '0', 64);
    prev[64] = '\0';
    uint64_t count = 0, from = 1;
    bool first = true;
    for (;;) {
        json_t *ans = NULL;
        if ((ex = get_page(g, "/audit", "/audit", !first, from, GOV_PAGE_MAX, &ans)))
            goto out;
        const json_t *items = json_object_get(ans, "entries");
        size_t i;
        json_t *en;
        json_array_foreach(items, i, en)
        {
            count++;
            check_entry(en, count, prev, problems);
        }
        uint64_t nx;
        bool more = page_next(ans, items, &nx);
        json_decref(ans);
        if (!more)
            break;
        if (!first && nx <= from) {
            tool_err(g->cmd, "/audit", "the service's next (%llu) does not advance", (unsigned long long)nx);
            ex = EXIT_IO;
            goto out;
        }
        first = false;
        from = nx;
    }
    if (count == 0)
        problem(problems, "the log is empty (it always holds at least the service's creation)");

    json_t *rep = NULL;
    if ((ex = gov_call(g, "/audit/verify", "GET", "/audit/verify", NULL, NULL, NULL, &rep)))
        goto out;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rep, "problems"), i, p)
        problem(problems, "service: %s", json_string_value(p) ? json_string_value(p) : "?");
    if (!json_is_true(json_object_get(rep, "ok")) && json_array_size(json_object_get(rep, "problems")) == 0)
        problem(problems, "service: the log does not verify");
    /* the service checked at least what we fetched; the same length must end in the same head */
    json_int_t sn = jint(rep, "entries");
    if ((uint64_t)sn < count)
        problem(problems, "the service verified %lld entries, fewer than the %llu fetched", (long long)sn,
                (unsigned long long)count);
    else if ((uint64_t)sn == count && count && strcmp(jstr(rep, "head"), prev) != 0)
        problem(problems, "the service's head %.16s... differs from the fetched log's head %.16s...",
                jstr(rep, "head"), prev);

    size_t np = json_array_size(problems);
    if (g->json) {
        json_t *o = json_pack("{s:b,s:I,s:s,s:O,s:O}", "ok", np == 0, "entries", (json_int_t)count, "head",
                              prev, "problems", problems, "service", rep);
        print_json(o);
        json_decref(o);
    } else {
        json_array_foreach(problems, i, p) printf("problem: %s\n", json_string_value(p));
        if (np == 0)
            printf("audit: %llu entries, head %s: OK\n", (unsigned long long)count, prev);
        else
            printf("audit: %llu entries, head %s: %zu problem%s\n", (unsigned long long)count, prev, np,
                   np == 1 ? "" : "s");
    }
    json_decref(rep);
    ex = np ? EXIT_AUTH : EXIT_OK;
out:
    json_decref(problems);
    return ex;
}

/* ===================================================================================================== */
/* The clean room: consent, events, documents, key release                                                */
/* ===================================================================================================== */

/* Makes the ephemeral key and the virtual evidence for --deployment-spec, then connects as the clean room. */
static int cleanroom_connect(struct gov *g)
{
    const char *spec = OPT(g, O_DEPLOYMENT_SPEC);
    if (!spec)
        return tool_usage(g->cmd, "missing --deployment-spec FILE");
    uint8_t m[32];
    int ex = measure_file(g, spec, m);
    if (ex)
        return ex;
    int rc = ccr_gov_ephkey_generate(&g->eph);
    if (rc == 0)
        rc = ccr_gov_evidence_virtual(m, g->eph, &g->evidence, &g->evidence_len);
    if (rc) {
        tool_err(g->cmd, NULL, "cannot make the clean room's key and evidence: %s", strerror(-rc));
        return EXIT_IO;
    }
    return gov_connect(g, false);
}

static int cleanroom_consent(struct gov *g)
{
    const char *id = g->pos[0], *action = OPT(g, O_ACTION);
    if (!action)
        return tool_usage(g->cmd, "missing --action A (execution, logging or telemetry)");
    if (strcmp(action, "execution") && strcmp(action, "logging") && strcmp(action, "telemetry"))
        return tool_usage(g->cmd, "invalid --action '%s' (execution, logging or telemetry)", action);
    int ex = cleanroom_connect(g);
    if (ex)
        return ex;
    json_t *body = json_pack("{s:s,s:s}", "contract_id", id, "action", action);
    json_t *ans = NULL;
    if ((ex = gov_send(g, id, "POST", "/cleanroom/consent", body, "cleanroom", NULL, &ans)))
        return ex;
    bool allowed = json_is_true(json_object_get(ans, "allowed"));
    if (g->json)
        print_json(ans);
    else if (allowed)
        printf("allowed\n");
    else
        printf("refused: %s\n", *jstr(ans, "reason") ? jstr(ans, "reason") : "(no reason given)");
    json_decref(ans);
    return allowed ? EXIT_OK : EXIT_AUTH;
}

static void print_event_recorded(struct gov *g, const json_t *ans)
{
    printf("event %lld recorded (%s)\n", (long long)jint(ans, "seq"), OPT(g, O_TYPE));
}

static int cleanroom_event(struct gov *g)
{
    const char *id = g->pos[0], *type = OPT(g, O_TYPE), *data = OPT(g, O_DATA);
    if (!type)
        return tool_usage(g->cmd, "missing --type T");
    json_t *d = NULL;
    if (data) {
        json_error_t je;
        d = json_loads(data, 0, &je);
        if (!json_is_object(d)) {
            json_decref(d);
            return tool_usage(g->cmd, "invalid --data: a JSON object is expected (%s)",
                              d ? "not an object" : je.text);
        }
    } else {
        d = json_object();
    }
    int ex = cleanroom_connect(g);
    if (ex) {
        json_decref(d);
        return ex;
    }
    json_t *body = json_pack("{s:s,s:s,s:o}", "contract_id", id, "type", type, "data", d);
    json_t *ans = NULL;
    if ((ex = gov_send(g, id, "POST", "/cleanroom/events", body, "cleanroom", NULL, &ans)))
        return ex;
    return show(g, ans, print_event_recorded);
}

static void print_text(struct gov *g, const json_t *ans)
{
    (void)g;
    const char *text = jstr(ans, "data");
    size_t n = strlen(text);
    fputs(text, stdout);
    if (n && text[n - 1] != '\n')
        fputc('\n', stdout);
}

static int cleanroom_document(struct gov *g)
{
    const char *doc = g->pos[1];
    int ex = cleanroom_connect(g);
    if (ex)
        return ex;
    char path[GOV_PATH_MAX];
    if ((ex = path_fmt(g, path, sizeof(path), "/cleanroom/documents/%s", doc)))
        return ex;
    json_t *ans = NULL;
    if ((ex = gov_call(g, doc, "GET", path, NULL, "cleanroom", NULL, &ans)))
        return ex;
    return show(g, ans, print_text);
}

/* Decodes base64 (standard, padded) or base64url into a buffer freed with ccr_free. */
static int b64_any(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    uint8_t *buf = ccr_malloc(n / 4 * 3 + 3);
    if (!buf)
        return -ENOMEM;
    int len = ccr_base64_decode(s, n, buf, n / 4 * 3 + 3);
    if (len >= 0) {
        *out = buf;
        *out_len = (size_t)len;
        return 0;
    }
    ccr_free(buf);
    return ccr_gov_b64url_decode(s, n, out, out_len);
}

/* Opens the release answer {"epk","iv","ciphertext"} with the ephemeral key. *out: wipe, then free. */
static int open_release(struct gov *g, const json_t *ans, const char *aad, uint8_t **out, size_t *out_len)
{
    struct ccr_gov_sealed s;
    memset(&s, 0, sizeof(s));
    uint8_t *iv = NULL;
    size_t iv_len = 0;
    int rc = b64_any(jstr(ans, "epk"), &s.epk, &s.epk_len);
    if (rc == 0)
        rc = b64_any(jstr(ans, "iv"), &iv, &iv_len);
    if (rc == 0 && iv_len != sizeof(s.iv))
        rc = -EBADMSG;
    if (rc == 0) {
        memcpy(s.iv, iv, sizeof(s.iv));
        rc = b64_any(jstr(ans, "ciphertext"), &s.ct, &s.ct_len);
    }
    if (rc) {
        tool_err(g->cmd, NULL, "malformed release answer (epk, iv, ciphertext)");
        rc = EXIT_IO;
        goto out;
    }
    rc = ccr_gov_open_sealed(g->eph, (const uint8_t *)aad, strlen(aad), &s, out, out_len);
    if (rc) {
        tool_err(g->cmd, NULL, "the released secret does not decrypt with this clean room's key: %s",
                 rc == -EBADMSG ? "not authentic" : strerror(-rc));
        rc = rc == -EBADMSG ? EXIT_AUTH : EXIT_IO;
    }
out:
    ccr_free(iv);
    ccr_free(s.epk);
    ccr_free(s.ct);
    return rc;
}

static int key_release(struct gov *g)
{
    const char *id = g->pos[0], *secret = OPT(g, O_SECRET), *out = OPT(g, O_OUT);
    const char *wrapped = OPT(g, O_WRAPPED_DEK), *dek_out = OPT(g, O_DEK_OUT);
    bool force = OPT(g, O_FORCE) != NULL;
    if (!secret)
        return tool_usage(g->cmd, "missing --secret NAME");
    if (!id_ok(secret))
        return tool_usage(g->cmd, "invalid --secret '%s'", secret);
    if (!out == !wrapped)
        return tool_usage(g->cmd, "give either --out FILE or --wrapped-dek B64|@FILE with --dek-out FILE");
    if (wrapped && !dek_out)
        return tool_usage(g->cmd, "--wrapped-dek needs --dek-out FILE");
    if (dek_out && !wrapped)
        return tool_usage(g->cmd, "--dek-out goes with --wrapped-dek");
    const char *dest = out ? out : dek_out;
    struct stat st;
    if (!force && lstat(dest, &st) == 0) {
        tool_err(g->cmd, dest, "already exists (use --force to replace it)");
        return EXIT_IO;
    }
    char *wtext = NULL;
    size_t wlen = 0;
    if (wrapped && wrapped[0] == '@') {
        int ex = read_file(g, wrapped + 1, GOV_SECRET_MAX, &wtext, &wlen);
        if (ex)
            return ex;
    }
    int ex = cleanroom_connect(g);
    json_t *body = NULL, *ans = NULL;
    uint8_t *plain = NULL;
    size_t plen = 0;
    struct ccr_kek *kek = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    if (ex)
        goto out;
    body = json_pack("{s:s,s:s}", "contract_id", id, "secret", secret);
    if (!body) {
        ex = EXIT_IO;
        goto out;
    }
    if ((ex = gov_call(g, id, "POST", "/cleanroom/keys/release", body, "cleanroom", NULL, &ans)))
        goto out;
    char aad[2 * GOV_ID_MAX + 2];
    snprintf(aad, sizeof(aad), "%s/%s", id, secret);
    if ((ex = open_release(g, ans, aad, &plain, &plen)))
        goto out;
    bool virt = json_is_true(json_object_get(ans, "virtual"));
    if (out) {
        int rc = ccr_file_write_atomic(out, plain, plen, 0600, force, &e);
        if (rc) {
            tool_err_print(g->cmd, &e, out);
            ex = EXIT_IO;
            goto out;
        }
    } else {
        int rc = ccr_kek_from_pem((const char *)plain, plen, &kek, &e);
        if (rc || !ccr_kek_is_private(kek)) {
            tool_err(g->cmd, secret, "the released secret is not an RSA KEK private key%s%s",
                     e.msg[0] ? ": " : "", e.msg);
            ex = EXIT_IO;
            goto out;
        }
        struct ccr_key k;
        const char *src = wtext ? wtext : wrapped;
        rc = ccr_key_unwrap(kek, src, wtext ? wlen : strlen(wrapped), &k, &e);
        if (rc) {
            tool_err(g->cmd, wtext ? wrapped + 1 : "--wrapped-dek", "cannot unwrap the DEK with KEK %s: %s",
                     secret, e.msg[0] ? e.msg : strerror(-rc));
            ex = EXIT_IO;
            goto out;
        }
        ccr_err_clear(&e);
        rc = ccr_key_file_store(dek_out, &k, force, &e);
        ccr_key_wipe(&k);
        if (rc) {
            tool_err_print(g->cmd, &e, dek_out);
            ex = EXIT_IO;
            goto out;
        }
    }
    if (virt)
        fprintf(stderr, "ccr %s: warning: released to a virtual clean room (no hardware attestation)\n",
                g->cmd);
    if (g->json) {
        /* the answer holds only ciphertext; add where the result went */
        json_object_set_new(ans, "path", json_string(dest));
        print_json(ans);
    } else if (out) {
        printf("secret %s of contract %s released (%zu bytes) to %s\n", secret, id, plen, out);
    } else {
        printf("DEK unwrapped with released KEK %s of contract %s into %s\n", secret, id, dek_out);
    }
out:
    if (plain) {
        ccr_wipe(plain, plen);
        ccr_free(plain);
    }
    ccr_kek_destroy(kek);
    json_decref(ans);
    json_decref(body);
    ccr_free(wtext);
    return ex;
}

/* ===================================================================================================== */
/* Dispatch                                                                                               */
/* ===================================================================================================== */

struct verb {
    const char *noun, *verb;
    int (*fn)(struct gov *g);
    const char *help;
    uint64_t allowed; /* F(O_...) bits */
    int min_pos, max_pos;
    const char *pos_usage; /* what the positional arguments are, for messages */
};

static const struct verb verbs[] = {
    {"member", "keygen", member_keygen, h_member_keygen, F(O_NAME) | F(O_OUT_DIR) | F(O_JSON), 0, 0, ""},
    {"member", "id", member_id, h_member_id, F(O_CERT) | F(O_JSON), 0, 0, ""},
    {"member", "add", member_add, h_member_add, NET | F(O_CERT) | F(O_NAME), 0, 0, ""},
    {"member", "activate", member_activate, h_member_activate, NET, 0, 0, ""},
    {"member", "list", member_list, h_member_list, NET, 0, 0, ""},
    {"proposal", "create", proposal_create, h_proposal_create, NET | F(O_ACTIONS), 0, 0, ""},
    {"proposal", "list", proposal_list, h_proposal_list, NET | F(O_STATE), 0, 0, ""},
    {"proposal", "show", proposal_show, h_proposal_show, NET, 1, 1, "ID"},
    {"proposal", "vote", proposal_vote, h_proposal_vote, NET, 2, 2, "ID accept|reject"},
    {"proposal", "withdraw", proposal_withdraw, h_proposal_withdraw, NET, 1, 1, "ID"},
    {"contract", "create", contract_put, h_contract_create, NET | F(O_SPEC), 1, 1, "ID"},
    {"contract", "update", contract_put, h_contract_update, NET | F(O_SPEC) | F(O_VERSION), 1, 1, "ID"},
    {"contract", "show", contract_show, h_contract_show, NET, 1, 1, "ID"},
    {"contract", "list", contract_list, h_contract_list, NET | F(O_STATE), 0, 0, ""},
    {"contract", "propose", object_propose, h_contract_propose, NET | F(O_VERSION), 1, 1, "ID"},
    {"contract", "vote", object_vote, h_contract_vote, NET, 2, 2, "ID accept|reject"},
    {"deployment", "generate", deployment_generate, h_deployment_generate, NET | F(O_OUT), 1, 1, "ID"},
    {"deployment", "propose", deployment_propose, h_deployment_propose, NET | F(O_SPEC), 1, 1, "ID"},
    {"deployment", "show", deployment_show, h_deployment_show, NET, 1, 1, "ID"},
    {"policy", "propose", policy_propose, h_policy_propose, NET | F(O_MEASUREMENT) | F(O_FROM_SPEC), 1, 1,
     "ID"},
    {"policy", "show", policy_show, h_policy_show, NET, 1, 1, "ID"},
    {"execution", "enable", execution_do, h_execution, NET, 1, 1, "ID"},
    {"execution", "disable", execution_do, h_execution, NET, 1, 1, "ID"},
    {"execution", "status", execution_do, h_execution, NET, 1, 1, "ID"},
    {"logging", "enable", option_propose, h_logging, NET, 1, 1, "ID"},
    {"logging", "disable", option_propose, h_logging, NET, 1, 1, "ID"},
    {"telemetry", "enable", option_propose, h_logging, NET, 1, 1, "ID"},
    {"telemetry", "disable", option_propose, h_logging, NET, 1, 1, "ID"},
    {"secret", "deposit", secret_deposit, h_secret_deposit, NET | F(O_FILE), 2, 2, "ID NAME"},
    {"secret", "list", secret_list, h_secret_list, NET, 1, 1, "ID"},
    {"document", "create", document_put, h_document_create, NET | F(O_CONTRACT) | F(O_FILE), 1, 1, "DOC"},
    {"document", "update", document_put, h_document_update, NET | F(O_CONTRACT) | F(O_FILE) | F(O_VERSION), 1,
     1, "DOC"},
    {"document", "show", document_show, h_document_show, NET, 1, 1, "DOC"},
    {"document", "propose", object_propose, h_document_propose, NET | F(O_VERSION), 1, 1, "DOC"},
    {"document", "vote", object_vote, h_document_vote, NET, 2, 2, "DOC accept|reject"},
    {"event", "list", event_list, h_event_list, NET | F(O_FROM) | F(O_LIMIT) | F(O_ALL), 1, 1, "ID"},
    {"audit", "list", audit_list, h_audit_list, NET | F(O_FROM) | F(O_LIMIT) | F(O_ALL), 0, 0, ""},
    {"audit", "verify", audit_verify, h_audit_verify, NET, 0, 0, ""},
    {"cleanroom", "consent", cleanroom_consent, h_cleanroom_consent, CR | F(O_ACTION), 1, 1, "ID"},
    {"cleanroom", "event", cleanroom_event, h_cleanroom_event, CR | F(O_TYPE) | F(O_DATA), 1, 1, "ID"},
    {"cleanroom", "document", cleanroom_document, h_cleanroom_document, CR, 2, 2, "ID DOC"},
    {"key", "release", key_release, h_key_release,
     CR | F(O_SECRET) | F(O_OUT) | F(O_WRAPPED_DEK) | F(O_DEK_OUT) | F(O_FORCE), 1, 1, "ID"},
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char *opt_name(int c)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* Parses a verb's options into g. Returns -1 to go on, else the exit code (help shown, or a usage error). */
static int parse_verb(const struct verb *v, int argc, char **argv, struct gov *g)
{
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(v->help, stdout);
            return EXIT_OK;
        }
        if (c >= O_BASE && c < O_END) {
            if (!(v->allowed & F(c)))
                return tool_usage(g->cmd, "option '--%s' does not apply to this verb", opt_name(c));
            if (c == O_JSON)
                g->json = true;
            g->opt[c - O_BASE] = optarg ? optarg : "";
            continue;
        }
        return tool_bad_option(g->cmd, c, argv);
    }
    int n = argc - optind;
    if (n < v->min_pos)
        return tool_usage(g->cmd, "missing argument%s: %s", v->min_pos > 1 ? "s" : "", v->pos_usage);
    if (n > v->max_pos)
        return tool_usage(g->cmd, "unexpected argument '%s'", argv[optind + v->max_pos]);
    for (int i = 0; i < n; i++) {
        if (!id_ok(argv[optind + i]))
            return tool_usage(g->cmd,
                              "invalid argument '%s' (letters, digits, '-', '_', '.', '~'; at most %d)",
                              argv[optind + i], GOV_ID_MAX);
        g->pos[i] = argv[optind + i];
    }
    g->npos = n;
    return -1;
}

/* `ccr gov NOUN --help`: the verbs of one noun. */
static int noun_help(const char *noun)
{
    printf("Usage: ccr gov %s <verb> [options]\n\nVerbs:\n", noun);
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i].noun, noun) != 0)
            continue;
        /* the first line of the verb's help is its synopsis */
        const char *h = verbs[i].help + strlen("Usage: ");
        const char *nl = strchr(h, '\n');
        printf("  %.*s\n", (int)(nl ? nl - h : (ptrdiff_t)strlen(h)), h);
    }
    printf("\nRun 'ccr gov %s <verb> --help' for a verb's options and examples.\n", noun);
    return EXIT_OK;
}

int cmd_gov(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage("gov", "missing noun (member, proposal, contract, deployment, policy, execution, "
                                 "logging, telemetry, secret, document, event, audit, cleanroom, key)");
    const char *noun = argv[1];
    if (strcmp(noun, "--help") == 0 || strcmp(noun, "-h") == 0 || strcmp(noun, "help") == 0) {
        fputs(gov_help, stdout);
        return EXIT_OK;
    }
    bool known = false;
    for (size_t i = 0; i < N_VERBS; i++)
        known = known || strcmp(verbs[i].noun, noun) == 0;
    if (!known)
        return tool_usage("gov", "unknown noun '%s'", noun);
    if (argc < 3) {
        char c[64];
        snprintf(c, sizeof(c), "gov %s", noun);
        return tool_usage(c, "missing verb");
    }
    const char *verb = argv[2];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0)
        return noun_help(noun);
    for (size_t i = 0; i < N_VERBS; i++) {
        if (strcmp(verbs[i].noun, noun) != 0 || strcmp(verbs[i].verb, verb) != 0)
            continue;
        struct gov g;
        memset(&g, 0, sizeof(g));
        snprintf(g.cmd, sizeof(g.cmd), "gov %s %s", noun, verb);
        g.noun = verbs[i].noun;
        g.verb = verbs[i].verb;
        int ex = parse_verb(&verbs[i], argc - 2, argv + 2, &g);
        if (ex < 0)
            ex = verbs[i].fn(&g);
        gov_fini(&g);
        if (fflush(stdout) != 0 && ex == EXIT_OK) {
            tool_err(g.cmd, "stdout", "write failed: %s", strerror(errno));
            ex = EXIT_IO;
        }
        return ex;
    }
    char c[64];
    snprintf(c, sizeof(c), "gov %s", noun);
    return tool_usage(c, "unknown verb '%s' (see 'ccr gov %s --help')", verb, noun);
}
