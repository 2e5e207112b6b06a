#!/usr/bin/env python3
"""Extends tests/data/pii_corpus.jsonl with the classes of issue 8.

Every value is invented here: random digits and letters (seeded, so a rerun
writes the same lines), with check digits computed where the format has one.
Fictional ranges are used where numbering plans reserve them (NANP 555-01xx,
Ofcom's drama numbers, ACMA's 0491 570 range). The format sources are in
pii_corpus.SOURCES.md. Run from the repository root:

    python3 tests/data/gen_pii_corpus.py > /tmp/new.jsonl   # lines c136-c586
"""
import json
import random
import string
import sys

rng = random.Random(20240314)
START = int(sys.argv[1]) if len(sys.argv) > 1 else 136
lines = []


def case(kind, text, planted):
    for p in planted:
        assert p["value"] in text, (p, text)
    lines.append({"kind": kind, "text": text, "planted": planted})


def p(detector, value, fmt=None):
    d = {"detector": detector, "value": value}
    if fmt:
        d["format"] = fmt
    return d


def rand(chars, n):
    return "".join(rng.choice(chars) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
LOWER = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
UP = string.ascii_uppercase + string.digits


def token(n, chars=ALNUM):
    while True:
        t = rand(chars, n)
        if any(c.isdigit() for c in t) and any(c.isalpha() for c in t):
            return t


# ---------------------------------------------------------------- webhooks
def slack():
    return f"https://hooks.slack.com/services/T{rand(UP, 8)}/B{rand(UP, 10)}/{token(24)}"


def teams(tenant):
    g = lambda: f"{rand(HEX,8)}-{rand(HEX,4)}-4{rand(HEX,3)}-a{rand(HEX,3)}-{rand(HEX,12)}"
    return f"https://{tenant}.webhook.office.com/webhookb2/{g()}@{g()}/IncomingWebhook/{rand(HEX,32)}/{g()}"


def discord():
    host = rng.choice(["discord.com", "discordapp.com", "canary.discord.com"])
    return f"https://{host}/api/webhooks/{rand(string.digits, 18)}/{token(68, ALNUM + '-_')}"


webhook_lines = [
    ("CI notifications were posted to {u} from the public GitHub Actions log, so anyone could post into the channel.", slack),
    ("The leaked .env file held SLACK_WEBHOOK={u} and a stale DATABASE_URL; the webhook was rotated at 11:20 UTC.", slack),
    ("Infostealer config exfiltrates browser cookies to {u} every 10 minutes (sample sha256 {h}).", discord),
    ("Malicious npm package posts environment variables to {u}; 312 downloads before takedown.", discord),
    ("Alertmanager receiver pointed at {u}; the URL appeared in a screenshot attached to the ticket.", None),
    ("Power Automate flow calls {u} on every new SharePoint file; the flow was created by the attacker.", None),
]


def teams_tenant():
    return rng.choice(["globexbank", "initech", "contosoretail", "acmeholdings", "umbrella-corp"])


def generic_hooks():
    return rng.choice([
        f"https://chat.{rng.choice(['ops-team','eng','infra'])}.example.org/hooks/{rand(LOWER, 26)}",
        f"https://hooks.zapier.com/hooks/catch/{rand(string.digits,7)}/{token(7, LOWER)}/",
        f"https://hook.eu1.make.com/{rand(LOWER, 32)}",
        f"https://n8n.example.net/webhook/{rand(HEX,8)}-{rand(HEX,4)}-4{rand(HEX,3)}-9{rand(HEX,3)}-{rand(HEX,12)}",
        f"https://maker.ifttt.com/trigger/door_open/with/key/{token(22, ALNUM + '_-')}",
        f"https://chat.googleapis.com/v1/spaces/AAAA{rand(ALNUM,7)}/messages?key=AIzaSy{rand(ALNUM,33)}&token={token(43, ALNUM + '-_')}%3D",
        f"https://rocket.example.com/hooks/{token(17)}/{token(48)}",
        f"https://jenkins.example.net/generic-webhook-trigger/invoke?token={token(20)}",
        f"https://outlook.office.com/webhook/{rand(HEX,8)}-{rand(HEX,4)}-4{rand(HEX,3)}-8{rand(HEX,3)}-{rand(HEX,12)}@{rand(HEX,8)}-{rand(HEX,4)}-4{rand(HEX,3)}-8{rand(HEX,3)}-{rand(HEX,12)}/IncomingWebhook/{rand(HEX,32)}/{rand(HEX,8)}",
        f"https://prod-{rng.randint(10,99)}.westeurope.logic.azure.com:443/workflows/{rand(HEX,32)}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={token(43, ALNUM + '-_')}",
    ])


webhook_templates = [
    "CI notifications were posted to {u} from the public GitHub Actions log, so anyone could post into the channel.",
    "The leaked .env file held SLACK_WEBHOOK={u} and a stale DATABASE_URL; the webhook was rotated at 11:20 UTC.",
    "Infostealer config exfiltrates browser cookies to {u} every 10 minutes.",
    "Malicious npm package posts environment variables to {u}; 312 downloads before takedown.",
    "Alertmanager receiver pointed at {u}; the URL appeared in a screenshot attached to the ticket.",
    "An automation flow calls {u} on every new file; the flow was created by the attacker.",
    "Build logs printed the deploy hook ({u}) in clear; rotated after the report.",
    "Terraform output exposed webhook_url = \"{u}\" in the state file.",
]

for n in range(10):
    case("description", webhook_templates[n % 8].format(u=(u := slack())), [p("webhook_url", u, "webhook/slack")])
for n in range(6):
    case("description", webhook_templates[(n + 3) % 8].format(u=(u := teams(teams_tenant()))), [p("webhook_url", u, "webhook/teams")])
for n in range(8):
    case("description", webhook_templates[(n + 2) % 8].format(u=(u := discord())), [p("webhook_url", u, "webhook/discord")])
for n in range(14):
    case("description", webhook_templates[(n + 5) % 8].format(u=(u := generic_hooks())), [p("webhook_url", u, "webhook/generic")])

# ---------------------------------------------------------------- presigned
def amz_date():
    return f"2024{rng.randint(1,12):02d}{rng.randint(1,28):02d}T{rng.randint(0,23):02d}{rng.randint(0,59):02d}00Z"


def s3_presigned():
    bucket = rng.choice(["globex-payroll-exports", "initech-db-dumps", "cr-invoices-eu", "acme-ml-artifacts"])
    region = rng.choice(["eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1"])
    key = rng.choice(["exports/2024-03/customers.csv", "backup/pg_dump_0314.sql.gz", "invoices/INV-88213.pdf"])
    host = rng.choice([f"{bucket}.s3.{region}.amazonaws.com", f"{bucket}.s3.amazonaws.com", f"s3.{region}.amazonaws.com/{bucket}"])
    return (f"https://{host}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA{rand(UP,16)}%2F{amz_date()[:8]}%2F{region}%2Fs3%2Faws4_request"
            f"&X-Amz-Date={amz_date()}&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature={rand(HEX,64)}")


def gcs_presigned():
    bucket = rng.choice(["globex-reports", "initech-exports-prod", "contoso-ml-data"])
    return (f"https://storage.googleapis.com/{bucket}/q1/report.xlsx?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=exporter%40{bucket}-prj.iam.gserviceaccount.com%2F20240311%2Fauto%2Fstorage%2Fgoog4_request"
            f"&X-Goog-Date={amz_date()}&X-Goog-Expires=86400&X-Goog-SignedHeaders=host&X-Goog-Signature={rand(HEX,128)}")


def azure_sas():
    account = rng.choice(["globexbackup01", "initechlogs", "crinvoices", "acmeshare"])
    return (f"https://{account}.blob.core.windows.net/{rng.choice(['backups','exports','vhds'])}/{rng.choice(['db.bak','disk0.vhd','users.csv'])}"
            f"?sv=2022-11-02&ss=b&srt=co&sp=rl&se=2024-05-01T00:00:00Z&st=2024-03-01T00:00:00Z&spr=https&sig={rand(ALNUM,43)}%3D")


def legacy_signed():
    return rng.choice([
        f"https://d{rand(LOWER,13)}.cloudfront.net/private/report.pdf?Expires=1712000000&Signature={token(40, ALNUM + '~-')}&Key-Pair-Id=K{rand(UP,13)}",
        f"https://initech-legacy.s3.amazonaws.com/a.zip?AWSAccessKeyId=AKIA{rand(UP,16)}&Expires=1712000000&Signature={rand(ALNUM,27)}%3D",
    ])


presigned_templates = [
    "A support engineer pasted a pre-signed link into the public status thread: {u} (valid 7 days).",
    "The phishing mail linked to a real document via {u}, which exposed the customer file to anyone.",
    "Exported dataset shared with an external vendor as {u}; revoked by rotating the signing key.",
    "Browser history on the compromised laptop contained {u}",
    "The SAS/signed URL {u} was found in a public Postman collection.",
]
for n, gen in enumerate([s3_presigned] * 8 + [gcs_presigned] * 5 + [azure_sas] * 6 + [legacy_signed] * 3):
    u = gen()
    fmt = {s3_presigned: "presigned/aws", gcs_presigned: "presigned/gcs", azure_sas: "presigned/azure-sas", legacy_signed: "presigned/legacy"}[gen]
    case("description", presigned_templates[n % 5].format(u=u), [p("presigned_url", u, fmt)])

# ---------------------------------------------------------------- url tokens
url_token_cases = [
    ("The redirect after login carried the session in the URL: https://portal.example-saas.com/cb#access_token={v}&token_type=Bearer&expires_in=3599", lambda: "ya29." + token(40, ALNUM + "-_"), "access_token"),
    ("Proxy logs show GET /api/export?format=csv&api_key={v} from 185.220.101.4 for six hours.", lambda: token(32), "api_key"),
    ("Maps JS loaded with https://maps.googleapis.com/maps/api/js?key={v}&callback=init in the public page.", lambda: "AIzaSy" + rand(ALNUM, 33), "key"),
    ("Reset links were logged in full: https://id.example-saas.com/reset?user=8812&code={v}", lambda: token(24), "code"),
    ("Grafana snapshot URL https://grafana.example.io/dashboard/snapshot/x?orgId=1&auth={v} was shared in a public issue.", lambda: token(28), "auth"),
    ("The webinar recording link ...play?sig={v}&expires=1712000000 leaked in the newsletter.", lambda: token(32, ALNUM + "%"), "sig"),
    ("Access log: \"GET /download?file=report.pdf&token={v} HTTP/1.1\" 200 from 45.142.120.9", lambda: token(36), "token"),
    ("The mobile app calls https://api.example-app.com/v2/me?access_token={v} over plain HTTP.", lambda: "EAAB" + token(60), "access_token"),
    ("GitLab clone URL with https://gitlab.example.com/api/v4/projects/42/repository/archive?private_token={v} was in the CI log.", lambda: "glpat-" + token(20, ALNUM + "-_"), "private_token"),
    ("WordPress plugin leaked the admin link https://shop.example-store.com/wp-admin/?sessionid={v}", lambda: token(32, LOWER), "sessionid"),
    ("Jupyter was exposed at http://203.0.113.50:8888/?token={v} with no password.", lambda: rand(HEX, 48), "token"),
    ("SSO callback https://sso.example-idp.com/saml/acs?ticket={v}&RelayState=%2Fhome was replayed twice.", lambda: "ST-" + token(30, ALNUM + "-"), "ticket"),
    ("The CDN URL ...video.mp4?signature={v}&exp=1712000000 was embedded in a public forum post.", lambda: token(40, ALNUM + "-_"), "signature"),
    ("Phishing kit forwards to https://docs-share-portal.example/view?id=2231&key={v} after login.", lambda: token(26), "key"),
    ("Zoom-style meeting link https://meet.example-conf.com/j/8812345?pwd={v} was posted on a public calendar.", lambda: token(32), "pwd"),
]
for n in range(30):
    text, gen, key = url_token_cases[n % len(url_token_cases)]
    v = gen()
    case("description", text.format(v=v), [p("url_token", v, f"url_token/{key}")])

# ---------------------------------------------------------------- phones
phones = {
    "us": ["+1 (212) 555-0147", "(646) 555-0182", "212.555.0199", "1-800-555-0134", "+1 415 555 0101", "+1-312-555-0170"],
    "ca": ["+1 604 555 0123", "(416) 555-0170", "514-555-0142"],
    "cn": ["+86 10 6552 9988", "+86 138 0013 8000", "010-6552 9981", "+86 21 5081 2345"],
    "jp": ["+81 3-6271-5555", "03-6271-5551", "090-1234-5678", "+81 90 1234 5679"],
    "de": ["+49 30 901820", "+49 (0)89 1234567", "030 12345678", "0151 23456789", "(030) 2345 6789", "+49 151 23456780"],
    "gb": ["+44 20 7946 0321", "020 7946 0555", "07700 900123", "+44 (0)161 496 0123", "0161 496 0789", "+44 7700 900456"],
    "fr": ["+33 1 70 36 42 11", "01 70 36 42 12", "06 12 34 56 78", "01.70.36.42.13", "+33 6 12 34 56 79"],
    "in": ["+91 98765 43210", "+91 22 2345 6789", "098765 43211", "022 2345 6780"],
    "kr": ["+82 2 312 3456", "02-312-3457", "010-2345-6789", "+82 10 2345 6780"],
    "au": ["+61 2 5550 1234", "(02) 5550 1235", "0491 570 156", "+61 491 570 157"],
    "br": ["+55 11 91234-5678", "(11) 91234-5679", "(21) 2345-6789", "+55 21 2345 6788"],
    "nl": ["+31 20 123 4567", "020-123 4568", "06-12345678", "+31 6 1234 5679"],
    "it": ["+39 02 1234 5678", "02 1234 5679", "+39 312 345 6789", "06 6988 1234"],
    "es": ["+34 912 345 678", "+34 612 34 56 78", "+34 93 123 45 67"],
    "se": ["+46 8 123 456 78", "08-123 456 79", "070-123 45 67", "+46 70 123 45 68"],
    "ch": ["+41 44 668 18 00", "044 668 18 01", "079 123 45 67", "+41 79 123 45 68"],
    "sg": ["+65 6123 4567", "+65 9123 4567", "+65 8123 4568"],
    "ie": ["+353 1 234 5678", "(01) 234 5679", "087 123 4567", "+353 87 123 4568"],
    "il": ["+972 3-123-4567", "03-1234568", "050-123-4567", "+972 50 123 4568"],
    "mx": ["+52 55 1234 5678", "(55) 1234 5679", "(33) 1234-5678", "+52 81 1234 5678"],
    "pl": ["+48 22 123 45 67", "+48 512 345 678"],
    "za": ["+27 21 123 4567"],
    "ae": ["+971 4 123 4567"],
}
# bare national forms that only count after a word that says "phone"
announced = {
    "es": ["912 345 679", "612 34 56 79"],
    "it": ["312 345 6780"],
    "sg": ["6123 4568", "9123 4569"],
    "cn": ["139 1234 5678"],
    "in": ["98765 43213"],
    "mx": ["55 1234 5670"],
}
phone_templates = [
    "Vishing: the caller used {v} and claimed to be from the bank's fraud team.",
    "Customer escalation: call back the on-call lead at {v} before 18:00 CET.",
    "The attacker asked the helpdesk to move MFA to the new number {v}.",
    "Support ticket 88213 lists contact phone {v}; the SIM swap happened two hours later.",
    "SMS phishing wave sent from {v} to 1,200 customers between 09:00 and 09:40 UTC.",
    "Bridge line for the incident: {v} (PIN shared separately).",
    "Tel: {v} - reported by the customer SOC as the number used in the callback scam.",
    "Scam mail asked recipients to ring {v} to 'cancel' a fake invoice of EUR 1,499.",
]
announcing = ["call", "phone:", "mobile", "tel.", "WhatsApp", "móvil", "Handy:", "cell"]
for n, (country, numbers) in enumerate(sorted(phones.items())):
    for m, v in enumerate(numbers):
        t = phone_templates[(n + m) % len(phone_templates)]
        case("description", t.format(v=v), [p("phone", v, f"phone/{country}")])
for n, (country, numbers) in enumerate(sorted(announced.items())):
    for m, v in enumerate(numbers):
        word = announcing[(n + m) % len(announcing)]
        case("description", f"Fraud note: the mule account holder gave {word} {v} when opening the account.", [p("phone", v, f"phone/{country}-announced")])

# ---------------------------------------------------------------- tenant hosts
tenants = [
    "globexbank.okta.com", "initech.oktapreview.com", "initech.sharepoint.com", "initech-my.sharepoint.com",
    "contosoretail.onmicrosoft.com", "globexbank.my.salesforce.com", "globex--uat.sandbox.my.salesforce.com",
    "initech.atlassian.net", "contoso-retail.zendesk.com", "globexbank.service-now.com", "initech-eng.slack.com",
    "contoso-prod.eu.auth0.com", "globex.onelogin.com", "api-7f3a9c1e.duosecurity.com", "initech.zoom.us",
    "globexbank.webex.com", "initech.app.box.com", "xy12345.eu-west-1.snowflakecomputing.com",
    "adb-4412789012345678.8.azuredatabricks.net", "globex-payments.azurewebsites.net", "kv-globex-prod.vault.azure.net",
    "sql-initech-prd.database.windows.net", "initechacr.azurecr.io", "d-9067a1b2c3.awsapps.com",
    "k7x2m9q4ab.execute-api.eu-west-1.amazonaws.com", "globex-auth.auth.eu-west-1.amazoncognito.com",
    "initech-prod-db.c9akciq32lmn.eu-west-1.rds.amazonaws.com", "internal-app-lb-1234567890.eu-west-1.elb.amazonaws.com",
    "contoso-shop.myshopify.com", "initech.splunkcloud.com", "globexbank.pagerduty.com", "contoso-crm.firebaseio.com",
    "initech-reports.appspot.com", "acme-portal.lightning.force.com", "contoso.crm4.dynamics.com", "globexbank.freshservice.com",
]
tenant_templates = [
    "Password spraying hit {v} from 46 residential proxies; 3 accounts locked.",
    "The attacker registered a new MFA factor on {v} after the help-desk reset.",
    "Impossible-travel alerts for admins of {v} between 02:10 and 02:40 UTC.",
    "OAuth app consent granted on {v} by 12 users; the app requested offline_access.",
    "Data was synced out of {v} with a stolen API token over the weekend.",
    "Logs from {v} show 18,000 requests with a replayed session cookie.",
]
for n, v in enumerate(tenants):
    case("description", tenant_templates[n % len(tenant_templates)].format(v=v), [p("tenant_host", v, "tenant/platform")])

# ---------------------------------------------------------------- storage
buckets = [
    ("s3://globex-payroll-exports", "/2024/03/"), ("s3a://initech-datalake-raw", "/events/dt=2024-03-14/"),
    ("gs://contoso-ml-training-data", "/v3/"), ("gs://globex-backups-eu", "/db/"), ("az://initech-logs", "/app/"),
    ("abfss://raw@globexlake01.dfs.core.windows.net", "/finance/"), ("wasbs://backups@initechstore.blob.core.windows.net", "/sql/"),
    ("oss://initech-cn-backup", "/2024/"), ("s3://cr-exports-prod", "/orders.csv"), ("gs://initech-terraform-state", "/prod/default.tfstate"),
    ("s3n://globex-legacy-emr", "/logs/"), ("cos://contoso-cos-archive", "/"),
]
bucket_templates = [
    "The job copied customer exports from {v}{rest} to an attacker-controlled account.",
    "Public read was enabled on {v}{rest} for 9 days before the CSPM alert fired.",
    "Stolen keys listed {v}{rest} and downloaded 41 GB.",
    "Ransom note left in {v}{rest} after the objects were deleted.",
]
for n, (v, rest) in enumerate(buckets):
    case("description", bucket_templates[n % 4].format(v=v, rest=rest), [p("storage_bucket", v, "bucket/" + v.split(":")[0])])
vhosts = [
    "globex-exports-7.s3.eu-west-1.amazonaws.com", "initech-public-assets.s3.amazonaws.com", "cr-invoices.s3-us-west-2.amazonaws.com",
    "globexstorage01.blob.core.windows.net", "initechfiles.file.core.windows.net", "initech-assets.nyc3.digitaloceanspaces.com",
    "globex-oss.oss-cn-hangzhou.aliyuncs.com", "a1b2c3d4e5f6.r2.cloudflarestorage.com", "initechweb.z13.web.core.windows.net",
    "contoso-media.storage.googleapis.com", "globex-logs.s3.dualstack.us-east-1.amazonaws.com", "crdatalake.dfs.core.windows.net",
]
for n, v in enumerate(vhosts):
    case("description", f"Exfiltration went to {v} over HTTPS; the object listing was public." if n % 2 else f"Requests to https://{v}/backup.tar.gz returned 200 to anonymous clients.", [p("storage_bucket", v, "bucket/virtual-host")])
paths = [
    ("https://storage.googleapis.com/", "globex-reports-2024", "/q1.pdf"), ("https://s3.eu-central-1.amazonaws.com/", "initech-dumps", "/db.sql"),
    ("https://s3.amazonaws.com/", "contoso-shared-files", "/contract.docx"), ("https://storage.cloud.google.com/", "initech-ml-exports", "/model.bin"),
]
for n, (pre, b, rest) in enumerate(paths):
    case("description", f"The link {pre}{b}{rest} was indexed by a search engine.", [p("storage_bucket", b, "bucket/path-style")])
for n, b in enumerate(["globex-cloudtrail-logs", "initech-tfstate-prod", "cr-payroll-2024", "contoso-backup-eu-1"]):
    case("description", f'CloudTrail: {{"eventName": "PutBucketPolicy", "requestParameters": {{"bucketName": "{b}", "policy": "..."}}}} from 45.142.120.9.', [p("storage_bucket", b, "bucket/cloudtrail-json")])
for n, b in enumerate(["cr-exports-staging", "globex-ml-2024", "initech-audit-logs-eu"]):
    case("description", f"The bucket {b} had versioning disabled, so the deleted objects could not be restored.", [p("storage_bucket", b, "bucket/prose")])

# ---------------------------------------------------------------- IBANs
def iban_digits(country, bban):
    s = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in s))
    return f"{98 - n % 97:02d}"


BBAN = {
    "DE": lambda: rand(string.digits, 18), "GB": lambda: rand(string.ascii_uppercase, 4) + rand(string.digits, 14),
    "FR": lambda: rand(string.digits, 10) + rand(UP, 11) + rand(string.digits, 2), "NL": lambda: rand(string.ascii_uppercase, 4) + rand(string.digits, 10),
    "ES": lambda: rand(string.digits, 20), "IT": lambda: rand(string.ascii_uppercase, 1) + rand(string.digits, 10) + rand(UP, 12),
    "CH": lambda: rand(string.digits, 5) + rand(UP, 12), "IE": lambda: rand(string.ascii_uppercase, 4) + rand(string.digits, 14),
    "BE": lambda: rand(string.digits, 12), "AT": lambda: rand(string.digits, 16), "SE": lambda: rand(string.digits, 20),
    "PL": lambda: rand(string.digits, 24), "PT": lambda: rand(string.digits, 21), "LU": lambda: rand(string.digits, 3) + rand(UP, 13),
    "NO": lambda: rand(string.digits, 11), "DK": lambda: rand(string.digits, 14), "AE": lambda: rand(string.digits, 19),
    "SA": lambda: rand(string.digits, 2) + rand(UP, 18), "BR": lambda: rand(string.digits, 23) + rand(string.ascii_uppercase, 1) + rand(UP, 1),
}
iban_templates = [
    "BEC fraud: the spoofed supplier asked finance to pay invoice 2024-118 to {v} instead of the usual account.",
    "Payroll diversion: the attacker changed the employee's bank details to {v} via the HR portal.",
    "Money-mule account {v} received EUR 48,200 in 6 transfers; flagged to the bank.",
    "The phishing kit's config held the attacker's payout IBAN {v}.",
]
countries = sorted(BBAN)
for n in range(28):
    c = countries[n % len(countries)]
    bban = BBAN[c]()
    compact = c + iban_digits(c, bban) + bban
    grouped = " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    v = grouped if n % 3 else compact
    case("description", iban_templates[n % 4].format(v=v), [p("iban", v, f"iban/{c.lower()}")])

# ---------------------------------------------------------------- MACs
def mac(style):
    octets = [rand(HEX, 2) for _ in range(6)]
    octets[0] = f"{int(octets[0], 16) & 0xfe:02x}"
    if style == "colon":
        return ":".join(octets)
    if style == "COLON":
        return ":".join(octets).upper()
    if style == "dash":
        return "-".join(octets).upper()
    return ".".join("".join(octets[i:i + 2]) for i in (0, 2, 4))


mac_templates = [
    "DHCP logs tie the rogue device {v} to the lobby access point at 02:14 UTC.",
    "EDR saw the implant beacon from the laptop with MAC {v} (asset tag unknown).",
    "NAC quarantined {v} after it spoofed the printer's address.",
    "The switch CAM table shows {v} on port Gi1/0/24 during the incident window.",
]
for n, style in enumerate(["colon", "COLON", "dash", "cisco"] * 4):
    v = mac(style)
    case("description", mac_templates[n % 4].format(v=v), [p("mac_address", v, f"mac/{style.lower()}")])

# ---------------------------------------------------------------- national ids
def luhn_ok(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = int(d)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def luhn_complete(prefix):
    for c in "0123456789":
        if luhn_ok(prefix + c):
            return prefix + c


def ssn():
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            return f"{a:03d}-{rng.randint(1,99):02d}-{rng.randint(1,9999):04d}"


def nino():
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        pre = rng.choice(first) + rng.choice(second)
        if pre not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            d = rand(string.digits, 6)
            return f"{pre} {d[:2]} {d[2:4]} {d[4:]} {rng.choice('ABCD')}" if rng.random() < 0.5 else f"{pre}{d}{rng.choice('ABCD')}"


def nir():
    sex = rng.choice("12")
    yy, mm = f"{rng.randint(40,99):02d}", f"{rng.randint(1,12):02d}"
    dept = rng.choice(["75", "69", "13", "2A", "33", "59"])
    commune, order = f"{rng.randint(1,990):03d}", f"{rng.randint(1,999):03d}"
    body = sex + yy + mm + dept + commune + order
    key = 97 - int(body.replace("2A", "19").replace("2B", "18")) % 97
    return f"{sex} {yy} {mm} {dept} {commune} {order} {key:02d}"


def dni():
    if rng.random() < 0.3:
        p_, n = rng.choice("XYZ"), rng.randint(0, 9999999)
        num = int(str("XYZ".index(p_)) + f"{n:07d}")
        return f"{p_}{n:07d}{'TRWAGMYFPDXBNJZSQVHLCKE'[num % 23]}"
    n = rng.randint(10000000, 99999999)
    return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"


def personnummer():
    yy, mm, dd = f"{rng.randint(40,99):02d}", f"{rng.randint(1,12):02d}", f"{rng.randint(1,28):02d}"
    full = luhn_complete(yy + mm + dd + rand(string.digits, 3))
    return rng.choice([f"{full[:6]}-{full[6:]}", f"19{full[:6]}-{full[6:]}"])


def bsn():
    while True:
        d = [rng.randint(0, 9) for _ in range(8)]
        s = sum(x * (9 - i) for i, x in enumerate(d))
        last = s % 11
        if last < 10:
            return "".join(map(str, d)) + str(last)


D5 = [[0,1,2,3,4,5,6,7,8,9],[1,2,3,4,0,6,7,8,9,5],[2,3,4,0,1,7,8,9,5,6],[3,4,0,1,2,8,9,5,6,7],[4,0,1,2,3,9,5,6,7,8],
      [5,9,8,7,6,0,4,3,2,1],[6,5,9,8,7,1,0,4,3,2],[7,6,5,9,8,2,1,0,4,3],[8,7,6,5,9,3,2,1,0,4],[9,8,7,6,5,4,3,2,1,0]]
P8 = [[0,1,2,3,4,5,6,7,8,9],[1,5,7,6,2,8,3,0,9,4],[5,8,0,3,7,9,6,1,4,2],[8,9,1,6,0,4,3,5,2,7],[9,4,5,3,1,2,6,8,7,0],
      [4,2,8,6,5,7,3,9,0,1],[2,7,9,3,8,0,6,4,1,5],[7,0,4,6,9,1,3,2,5,8]]


def verhoeff_ok(s):
    c = 0
    for i, d in enumerate(reversed(s)):
        c = D5[c][P8[i % 8][int(d)]]
    return c == 0


def aadhaar():
    while True:
        base = str(rng.randint(2, 9)) + rand(string.digits, 10)
        if base[:2] in ("19", "20"):
            continue
        for c in "0123456789":
            if verhoeff_ok(base + c):
                full = base + c
                return f"{full[:4]} {full[4:8]} {full[8:]}"


def cpf():
    while True:
        d = [rng.randint(0, 9) for _ in range(9)]
        for length in (9, 10):
            s = sum(x * (length + 1 - i) for i, x in enumerate(d))
            d.append(s * 10 % 11 % 10)
        s = "".join(map(str, d))
        return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"


def china_id():
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    body = rng.choice(["110105", "310104", "440305"]) + f"{rng.randint(1950,2002)}{rng.randint(1,12):02d}{rng.randint(1,28):02d}" + rand(string.digits, 3)
    return body + "10X98765432"[sum(int(a) * b for a, b in zip(body, w)) % 11]


def korea_rrn():
    w = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]
    body = f"{rng.randint(50,99):02d}{rng.randint(1,12):02d}{rng.randint(1,28):02d}" + rng.choice("12") + rand(string.digits, 5)
    check = (11 - sum(int(a) * b for a, b in zip(body, w)) % 11) % 10
    return f"{body[:6]}-{body[6:]}{check}"


ODD = [1,0,5,7,9,13,15,17,19,21,1,0,5,7,9,13,15,17,19,21,2,4,18,20,11,3,6,8,12,14,16,10,22,25,24,23]


def codice_fiscale():
    body = rand(string.ascii_uppercase, 6) + f"{rng.randint(40,99):02d}" + rng.choice("ABCDEHLMPRST") + f"{rng.randint(1,71):02d}" + rng.choice("ABCDEFGHILM") + rand(string.digits, 3)
    total = 0
    for i, ch in enumerate(body):
        v = int(ch, 36)
        total += ODD[v] if i % 2 == 0 else (v if ch.isdigit() else v - 10)
    return body + chr(ord("A") + total % 26)


def sin():
    return luhn_complete(str(rng.choice([1, 2, 3, 4, 5, 6, 7, 9])) + rand(string.digits, 7))


ids = [
    ("us-ssn", ssn, "HR export in the leaked archive lists {v} next to each employee's name."),
    ("gb-nino", nino, "The payroll spreadsheet on the open share held National Insurance numbers such as {v}."),
    ("fr-nir", nir, "Health-insurance claim forms in the bucket carried numéros de sécurité sociale like {v}."),
    ("es-dni", dni, "KYC uploads exposed DNI/NIE numbers, e.g. {v}, with selfie photos."),
    ("se-personnummer", personnummer, "The CRM dump includes personnummer {v} for each customer record."),
    ("in-aadhaar", aadhaar, "Scanned KYC documents include Aadhaar {v} in the OCR text."),
    ("br-cpf", cpf, "Fraud ring used stolen CPF {v} to open accounts at the fintech."),
    ("cn-resident-id", china_id, "Loyalty database row: name redacted, ID card {v}, phone redacted."),
    ("kr-rrn", korea_rrn, "The attacker's sample proves access: resident registration number {v} and address."),
    ("it-codice-fiscale", codice_fiscale, "Tax documents in the mailbox carried codice fiscale {v}."),
]
for n in range(4):
    for fmt, gen, template in ids:
        v = gen()
        case("description", template.format(v=v), [p("national_id", v, f"national_id/{fmt}")])
for n in range(4):
    v = bsn()
    case("description", f"The patient portal log printed BSN {v} in a debug line.", [p("national_id", v, "national_id/nl-bsn")])
    v = sin()
    v = f"{v[:3]} {v[3:6]} {v[6:]}"
    case("description", f"Onboarding form leaked SIN {v} for a Canadian contractor.", [p("national_id", v, "national_id/ca-sin")])
    v = ssn().replace("-", " ")
    case("description", f"Call-center notes: caller verified with SSN {v} before the reset.", [p("national_id", v, "national_id/us-ssn-announced")])

# ---------------------------------------------------------------- negatives
negatives = [
    "Timeline: 2024-03-14 10:22:33 UTC first alert, 2024-03-14T10:41:07Z containment, 14/03/2024 11:05 CET all clear.",
    "Upgraded nginx 1.24.0 -> 1.25.3, OpenSSL 3.0.13, kernel 6.1.0-18-amd64, Windows build 10.0.19045.3803.",
    "Scanner sources 45.33.32.156, 185.220.101.4 and 198.51.100.23 probed ports 22, 443, 3389, 5985 and 8443.",
    "The WAF blocked 1,204,330 requests (99.7%) in 38 minutes; p99 latency rose from 120 ms to 1 850 ms.",
    "Ticket INC-20240314-0042 links CHG-0098123 and PRB-88213; see KB5034441 and CVE-2024-3094.",
    "The C2 panel at hxxps://login-microsoftonline[.]cc/common/oauth2 and okta-sso-verify.com served the kit.",
    "Phishing domains globex-okta.com, sharepoint-docs-share.com and okta.com-session-verify.info were sinkholed.",
    "SSH host key fingerprint MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48 changed after the rebuild.",
    "The ARP storm came from the broadcast address ff:ff:ff:ff:ff:ff; no device was identified.",
    "See https://www.okta.com/security-advisories/ and https://status.slack.com/ for the vendor timeline.",
    "The outage affected login.salesforce.com and www.atlassian.com for 20 minutes; status.atlassian.net confirmed it.",
    "Hashes: md5 44d88612fea8a8f36de82e1278abb02f, sha256 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f.",
    "The bucket policy allowed s3:GetObject for everyone; S3 bucket versioning was off on every bucket.",
    "Docs: https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html explains pre-signed URLs.",
    "Event IDs 4624, 4625 and 4672 on 12 hosts; 3 389 failed logons; pid 31337 spawned cmd.exe.",
    "Epoch 1710411720 in the token matches 2024-03-14 10:22 UTC; TTL 3600 s.",
    "Order 100234567 and order 100234568 were refunded; tracking 1Z999AA10123456784 was delivered.",
    "Geo: 48.8566, 2.3522 (Paris) and 52.5200, 13.4050 (Berlin) in the sign-in logs.",
    "The GitHub webhook docs at https://docs.github.com/webhooks/ and https://api.github.com/repos/org/repo/hooks/123456 were used.",
    "Released versions 2.14.3, 2.14.4 and 3.0.0-rc.1; the fix landed in 2.14.5.",
    "AS13335 and AS64511 announced 104.16.0.0/13; RPKI status valid.",
    "Build 20240314.1022 rolled back to 20240312.0931 at 11:40.",
    "Disk usage went from 1 200 000 to 2 400 000 inodes in 12 hours; 512 MB free.",
    "YARA rule ID 942100 and Sigma rule 0f06a3a5-6a09-413f-8743-e6cf35561297 matched.",
    "IPv6 scan from 2a01:4f8:c17:b8f::2 and 2606:4700:4700::1111; time 10:22:33.",
    "The malicious site hxxps://evil-login[.]com/o365?session=expired redirected to a fake consent page.",
    "Public resolvers 8.8.8.8 and 1.1.1.1 answered in 12 ms; 9.9.9.9 in 18 ms.",
    "Sample size 2 048 events; 97.3% precision; latency 1.2 s at p50 and 4.8 s at p99.",
    "Windows registry key HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run held the loader.",
    "CVSS 9.8 (AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H) for CVE-2023-4966.",
    "Rate limit raised from 600 to 1200 requests per minute for 3 tenants.",
    "The IOC list includes 203.0.113.77, 198.51.100.12, update-cdn.net and cdn-update-check.com.",
    "We saw 14 200 attempts between 02:00 and 02:40 UTC; 2147483647 is the int32 max that overflowed.",
    "The phishing page was hosted at hxxps://secure-docs-view[.]net/share/4f2a9c1e; kit hash 3395856ce81f2b7382dee72602f798b642f14140.",
    "Kubernetes 1.28.4, containerd 1.7.11, runc 1.1.12 (CVE-2024-21626 fixed in 1.1.12).",
    "Memory: 16 384 MiB, 8 vCPU, 500 GiB gp3 at 3 000 IOPS.",
    "The attacker used the Tor exit 185.220.101.4 and a VPS at 45.142.120.9:8443.",
    "Invoice total EUR 1 250 000 was split into 5 payments of EUR 250 000 on 2024-03-01.",
    "Firmware 7.2.5 build 1517 on the FortiGate; upgrade to 7.4.3 build 2573.",
    "Alert count per hour: 120, 340, 1 020, 2 210, 880; ratio 0.42.",
    "The Slack workspace was slack.com itself? No: the lure used slack-login-verify.com and hooks-slack.net.",
    "The loader pulled https://raw.githubusercontent.com/evil-user/tools/main/x.ps1 and https://pastebin.com/raw/8xT4kQ2m.",
    "SQL error code 1205 and HTTP 429 appeared 8 812 times; retry after 30 s.",
    "Maintenance window 2024-04-06 22:00 to 2024-04-07 04:00 UTC; change CHG0034567.",
    "Benign MAC-like string 12:34 and time 10:22:33.456 are in every log line.",
    "Port list: 80, 443, 8080, 8443, 9000 and 9090; range 1024-65535.",
    "The attacker's Discord was discord.gg/abc123 (invite, not a webhook); the server is public.",
    "Serial numbers C02XG2JHJGH5 and FVFXC2JHQ6LR were re-imaged.",
    "DNS TTL dropped from 86400 to 300 s; SOA serial 2024031401.",
    "Samples: 0.12 0.15 0.22 0.31 ms median per request at 10 000 rps.",
    "Account numbers in the report are masked, e.g. ****4821 and ****0097.",
    "Signature IDs 2034567 and 2034568 (ET OPEN) fired on 203.0.113.0/24.",
    "Indicator URL hxxps://cdn-static-files[.]top/gate.php?id=77 and hxxp://91.219.236.18:8080/panel/.",
    "Line 1 of the script ran at 01:02:03; line 2 at 01:02:04 on 2024-01-02.",
    "Our SOC number of tickets this week: 1 024 opened, 998 closed.",
    "The versioned API /v1/hooks/list and /v2/webhooks/config returned 403.",
    "ISO 27001:2022 and SOC 2 Type II reports were shared with the customer under NDA.",
    "The kit's fake login copied https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=4765445b-32c6-49b0-83e6-1d93765276ca&response_type=code.",
    "GUID 0f06a3a5-6a09-413f-8743-e6cf35561297 is the Sigma rule, not a tenant.",
    "Transfer of 48.2 GB took 1 h 12 min at 11.1 MB/s from 10 workers.",
]
for text in negatives:
    case("description", text, [])

# ---------------------------------------------------------------- mixed lines
for n in range(12):
    ph = rng.choice(phones["gb"] + phones["de"] + phones["fr"])
    t = rng.choice(tenants)
    b = rng.choice(buckets)[0]
    text = f"At 2024-03-1{n % 9} 0{n % 9}:1{n % 6}:00 UTC the actor (from 185.220.101.{n + 2}, tool v{n}.4.1) used {t}, then copied {b}/dump/ and called {ph} twice."
    case("description", text, [p("tenant_host", t, "tenant/mixed"), p("storage_bucket", b, "bucket/mixed"), p("phone", ph, "phone/mixed")])

# ---------------------------------------------------------------- indicators
indicator_cases = [
    (slack(), "webhook_url"), (discord(), "webhook_url"), (discord(), "webhook_url"), (teams("globexbank"), "webhook_url"),
    (s3_presigned(), "presigned_url"), (azure_sas(), "presigned_url"),
    ("globexbank.okta.com", "tenant_host"), ("initech.sharepoint.com", "tenant_host"), ("https://initech-my.sharepoint.com/personal/x/Documents/inv.html", "tenant_host"),
    ("initech-dumps.s3.amazonaws.com", "storage_bucket"), ("https://globexstorage01.blob.core.windows.net/web/index.html", "storage_bucket"),
    ("https://storage.googleapis.com/initech-ml-exports/payload.js", "storage_bucket"),
    ("00:1a:2b:3c:4d:5e", "mac_address"), ("DE44 5001 0517 5407 3249 31", "iban"), ("+33 1 70 36 42 14", "phone"),
    ("evil-login.com", None), ("okta-sso-verify.com", None), ("hxxps://login-microsoftonline[.]cc/common/oauth2", None),
    ("203.0.113.77", None), ("https://hooks-slack.net/services/update", None), ("https://update-cdn.net/payload/stage2.bin", None),
    ("44d88612fea8a8f36de82e1278abb02f", None), ("www.okta.com", None), ("globex-okta.com", None),
    ("http://91.219.236.18:8080/gate.php?id=1024", None), ("AS13335", None),
]
for value, det in indicator_cases:
    case("indicator", value, [p(det, value, "indicator")] if det else [])

for n, line in enumerate(lines):
    line = {"id": f"c{START + n:03d}", **line}
    print(json.dumps(line, ensure_ascii=False))
print(f"{len(lines)} cases", file=sys.stderr)
