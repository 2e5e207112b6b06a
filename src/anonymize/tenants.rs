//! Host names that name a customer on a SaaS or cloud platform, and the
//! names of storage buckets and containers.
//!
//! `globex.okta.com` says which customer an incident touched; `*.okta.com`
//! still says which platform, which is what peers need. So both detectors
//! generalise to the platform by default: the first labels become `*`.

use super::detectors::{continues_host_name, regex, Candidate, Check, Detector, Pattern, Span};
use regex::Regex;
use std::sync::LazyLock;

/// Platforms whose first labels name a tenant (regular-expression fragments
/// of the part kept). Platforms an attacker hosts on as often as a customer
/// does (CloudFront, github.io, web.app) are left out: free text about a
/// phishing page keeps its host.
const TENANT_PLATFORMS: &[&str] = &[
    r"sharepoint\.com",
    r"sharepoint\.us",
    r"onmicrosoft\.com",
    r"webhook\.office\.com",
    r"crm\d*\.dynamics\.com",
    r"okta\.com",
    r"oktapreview\.com",
    r"okta-emea\.com",
    r"okta-gov\.com",
    r"my\.salesforce\.com",
    r"lightning\.force\.com",
    r"my\.site\.com",
    r"my\.salesforce-sites\.com",
    r"atlassian\.net",
    r"slack\.com",
    r"enterprise\.slack\.com",
    r"zendesk\.com",
    r"service-now\.com",
    r"servicenowservices\.com",
    r"freshdesk\.com",
    r"freshservice\.com",
    r"auth0\.com",
    r"onelogin\.com",
    r"duosecurity\.com",
    r"zoom\.us",
    r"webex\.com",
    r"box\.com",
    r"egnyte\.com",
    r"looker\.com",
    r"snowflakecomputing\.com",
    r"cloud\.databricks\.com",
    r"azuredatabricks\.net",
    r"azurewebsites\.net",
    r"cloudapp\.azure\.com",
    r"vault\.azure\.net",
    r"database\.windows\.net",
    r"servicebus\.windows\.net",
    r"azurecr\.io",
    r"azure-api\.net",
    r"documents\.azure\.com",
    r"redis\.cache\.windows\.net",
    r"awsapps\.com",
    r"amazoncognito\.com",
    r"execute-api\.[a-z0-9-]+\.amazonaws\.com",
    r"[a-z0-9-]+\.rds\.amazonaws\.com",
    r"[a-z0-9-]+\.elb\.amazonaws\.com",
    r"lambda-url\.[a-z0-9-]+\.on\.aws",
    r"firebaseio\.com",
    r"firebaseapp\.com",
    r"appspot\.com",
    r"cloudfunctions\.net",
    r"myshopify\.com",
    r"splunkcloud\.com",
    r"pagerduty\.com",
    r"ghe\.com",
];

/// Storage hosts whose first labels are a bucket or storage account.
const STORAGE_PLATFORMS: &[&str] = &[
    r"s3(?:[.-](?:dualstack|website|accesspoint|fips|external-1|[a-z]{2}(?:-gov)?-[a-z]+-\d))*\.amazonaws\.com(?:\.cn)?",
    r"storage\.googleapis\.com",
    r"(?:blob|dfs|file|queue|table)\.core\.windows\.net",
    r"z\d+\.web\.core\.windows\.net",
    r"[a-z0-9-]+\.digitaloceanspaces\.com",
    r"oss-[a-z0-9-]+\.aliyuncs\.com",
    r"r2\.cloudflarestorage\.com",
    r"cos\.[a-z0-9-]+\.myqcloud\.com",
    r"[a-z0-9-]+\.linodeobjects\.com",
];

/// First labels that are the platform's own hosts, not a tenant's.
const PLATFORM_HOSTS: &[&str] = &[
    "www",
    "login",
    "signin",
    "auth",
    "id",
    "status",
    "support",
    "help",
    "docs",
    "developer",
    "developers",
    "community",
    "trust",
    "blog",
    "api",
    "app",
    "apps",
    "admin",
    "portal",
    "hooks",
    "files",
    "cdn",
    "static",
    "mail",
    "ask",
    "marketplace",
    "slack-files",
    "slack-imgs",
    "downloads",
    "partners",
    "account",
    "accounts",
];

/// Storage URI schemes: S3 (and Hadoop's s3a/s3n), Cloud Storage, Azure
/// (az, wasb, abfs, adl), Alibaba OSS, Tencent COS.
const STORAGE_SCHEMES: &str = r"s3a?|s3n|gs|az|wasbs?|abfss?|adl|oss|cos";

/// A bucket name: S3 and Cloud Storage rules (dots allowed, up to 222 in GCS).
const BUCKET: &str = r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]";

/// Host patterns: the tenant labels (group 1), then the platform.
fn host_pattern(platforms: &[&str]) -> String {
    format!(r"(?i)\b((?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+?)(?:{})\b", platforms.join("|"))
}

static TENANT_HOST: LazyLock<Regex> = LazyLock::new(|| regex(&format!("^{}$", host_pattern(TENANT_PLATFORMS))));
static STORAGE_HOST: LazyLock<Regex> = LazyLock::new(|| regex(&format!("^{}$", host_pattern(STORAGE_PLATFORMS))));

pub(super) fn patterns() -> Vec<Pattern> {
    vec![
        (Detector::TenantHost, regex(&host_pattern(TENANT_PLATFORMS)), Check::Custom(platform_host)),
        (Detector::StorageBucket, regex(&host_pattern(STORAGE_PLATFORMS)), Check::Custom(platform_host)),
        // s3://bucket, gs://bucket, abfss://container@account.dfs.core.windows.net
        (
            Detector::StorageBucket,
            regex(&format!(
                r"(?i)\b(?:{STORAGE_SCHEMES})://{BUCKET}(?:@[a-z0-9-]+\.(?:blob|dfs)\.core\.(?:windows\.net|chinacloudapi\.cn))?"
            )),
            Check::Pattern,
        ),
        // Path-style: https://s3.eu-west-1.amazonaws.com/bucket/key, storage.googleapis.com/bucket
        (
            Detector::StorageBucket,
            regex(&format!(
                r"(?i)\bhttps?://(?:s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?|storage\.(?:googleapis|cloud\.google)\.com)/(?:(?:upload/)?storage/v1/b/)?({BUCKET})"
            )),
            Check::Pattern,
        ),
        // CloudTrail and SDK JSON: "bucketName": "x", "Bucket": "x"
        (
            Detector::StorageBucket,
            regex(&format!(r#"(?i)"(?:bucket|bucketname|bucket_name)"\s*:\s*"({BUCKET})""#)),
            Check::Pattern,
        ),
        // Prose: "bucket cr-exports-prod", "bucket name: logs-2024"
        (
            Detector::StorageBucket,
            regex(&format!(r#"(?i)\bbucket(?:[ _-]?name)?\s*[:=]?\s*["'`]?({BUCKET})"#)),
            Check::Custom(named_bucket),
        ),
    ]
}

/// True when `label` (a host's first labels) is one a platform keeps for
/// itself (`www`, `login`, `status`, ...).
pub(super) fn is_platform_host(label: &str) -> bool {
    PLATFORM_HOSTS.contains(&label.to_ascii_lowercase().as_str())
}

/// A tenant or bucket host: not the platform's own, and not the start of a
/// longer name (`acme.okta.com.evil.example` is the attacker's).
fn platform_host(candidate: &Candidate) -> Option<Span> {
    if is_platform_host(candidate.item_str().trim_end_matches('.'))
        || continues_host_name(&candidate.text[candidate.whole.1..])
    {
        return None;
    }
    Some(Span { start: candidate.whole.0, end: candidate.whole.1, ..candidate.span() })
}

/// After a bare "bucket" only generated-looking names count, as for GCP
/// project ids: `cr-exports-prod` or `logs-2024`, not "bucket policy".
fn named_bucket(candidate: &Candidate) -> Option<Span> {
    let name = candidate.item_str();
    let hyphens = name.matches(['-', '.']).count();
    let generated = hyphens >= 2 || (hyphens == 1 && name.bytes().any(|b| b.is_ascii_digit()));
    (generated && name.bytes().all(|b| !b.is_ascii_uppercase())).then(|| candidate.span())
}

/// `globex.okta.com` as `*.okta.com`, when `host` is a tenant or bucket host.
pub(super) fn generalise_host(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    [&*TENANT_HOST, &*STORAGE_HOST].iter().find_map(|pattern| {
        let tenant = pattern.captures(&host)?.get(1)?;
        let platform_own = is_platform_host(tenant.as_str().trim_end_matches('.'));
        (!platform_own).then(|| format!("*.{}", &host[tenant.end()..]))
    })
}

/// A storage finding generalised: a host to its platform, a URI to its
/// scheme (and Azure endpoint), a bare bucket name to `*`.
pub(super) fn generalise_storage(found: &str) -> String {
    if let Some(host) = generalise_host(found) {
        return host;
    }
    match found.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, account)) => format!(
                "{}://*@{}",
                scheme.to_ascii_lowercase(),
                generalise_host(account).unwrap_or_else(|| "*".into())
            ),
            None => format!("{}://*", scheme.to_ascii_lowercase()),
        },
        None => "*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::detectors::Detectors;

    fn found(text: &str) -> Vec<(Detector, &str)> {
        Detectors::new(&[], &[]).find(text).into_iter().map(|f| (f.detector, &text[f.start..f.end])).collect()
    }

    #[test]
    fn tenant_hosts_are_found_and_platform_hosts_are_not() {
        assert_eq!(
            found("sign-ins to globex.okta.com and initech-my.sharepoint.com"),
            [(Detector::TenantHost, "globex.okta.com"), (Detector::TenantHost, "initech-my.sharepoint.com")]
        );
        assert_eq!(found("portal acme.eu.auth0.com"), [(Detector::TenantHost, "acme.eu.auth0.com")]);
        assert!(found("see www.okta.com, status.atlassian.net and login.okta.com.evil-sso.example").is_empty());
        assert!(found("lookalike acme-okta.com").is_empty());
    }

    #[test]
    fn buckets_are_found_in_every_form() {
        assert_eq!(found("copied to s3://cr-exports/2024/"), [(Detector::StorageBucket, "s3://cr-exports")]);
        assert_eq!(
            found("abfss://raw@lakeprod01.dfs.core.windows.net/x"),
            [(Detector::StorageBucket, "abfss://raw@lakeprod01.dfs.core.windows.net")]
        );
        assert_eq!(
            found("GET exports-7.s3.eu-west-1.amazonaws.com/a"),
            [(Detector::StorageBucket, "exports-7.s3.eu-west-1.amazonaws.com")]
        );
        assert_eq!(found("https://storage.googleapis.com/ml-data-22/x"), [(Detector::StorageBucket, "ml-data-22")]);
        assert_eq!(found(r#"{"bucketName": "payroll"}"#), [(Detector::StorageBucket, "payroll")]);
        assert_eq!(found("the bucket cr-exports-prod was public"), [(Detector::StorageBucket, "cr-exports-prod")]);
        assert!(found("the bucket policy and s3.amazonaws.com").is_empty());
    }

    #[test]
    fn generalised_forms_keep_the_platform() {
        assert_eq!(generalise_host("Globex.okta.com").unwrap(), "*.okta.com");
        assert_eq!(generalise_host("a.b.s3.us-east-1.amazonaws.com").unwrap(), "*.s3.us-east-1.amazonaws.com");
        assert_eq!(generalise_storage("abfss://raw@lake1.dfs.core.windows.net"), "abfss://*@*.dfs.core.windows.net");
        assert_eq!(generalise_storage("gs://ml-data"), "gs://*");
        assert_eq!(generalise_host("evil.example"), None);
    }
}
