//! URLs whose path or query is the secret: chat and automation webhooks,
//! pre-signed object URLs, and tokens carried in a query string.
//!
//! Whoever holds a webhook or a pre-signed URL can post to the channel or
//! read the object, so the URL is a credential. Its host is not: the host
//! says which service was involved, which is what peers need to know. So a
//! webhook or pre-signed URL is generalised to its scheme and host (a tenant
//! host generalised in turn) with the rest redacted; a token in a query is
//! redacted and the URL around it kept.

use super::detectors::{regex, Candidate, Check, Detector, Pattern, Span};
use super::tenants;

/// Query keys whose value is a credential whatever it looks like.
const CREDENTIAL_KEYS: &str = "token|access_token|id_token|refresh_token|auth_token|oauth_token|private_token|\
    access-token|api_key|apikey|api-key|x-api-key|secret|client_secret|password|passwd|pwd|jwt|sas_token";

/// Query keys that carry a credential only when the value looks like one
/// (`?code=404` or `?key=homepage` is no secret; `?key=AIza...` is).
const SECRET_SHAPED_KEYS: &str =
    "key|sig|signature|code|auth|pass|session|sessionid|session_id|sid|ticket|otp|hash|apitoken|accesskey";

/// The shortest value taken for a credential key.
const MIN_CREDENTIAL_LEN: usize = 6;
/// The shortest value taken for a secret-shaped key, when it mixes letters and digits.
const MIN_SECRET_SHAPED_LEN: usize = 8;
/// The length from which a secret-shaped key's value counts whatever its characters.
const LONG_SECRET_LEN: usize = 20;
/// The shortest path segment after a `/hooks/` or `/webhook/` that is taken for a token.
const MIN_HOOK_TOKEN_LEN: usize = 8;

/// Characters that may end a URL in text but are punctuation around it.
const TRAILING_PUNCTUATION: &[char] = &['.', ',', ';', ':', '!', '?', '\'', '"', ')', ']', '}', '>', '*'];

pub(super) fn patterns() -> Vec<Pattern> {
    vec![
        // One pattern for both URL detectors: a URL is classified once, so a
        // webhook carrying a `sig=` (Logic Apps) is not also a pre-signed URL.
        // `:\/\/` too: URLs inside JSON strings escape their slashes.
        (
            Detector::WebhookUrl,
            regex(r#"(?i)\b(?:h(?:tt|xx)ps?|wss?):(?:\\?/){2}[^\s"<>`]+"#),
            Check::Custom(secret_url),
        ),
        (
            Detector::UrlToken,
            regex(&format!(r#"(?i)[?&#;](?:{CREDENTIAL_KEYS}|{SECRET_SHAPED_KEYS})=([^&#\s"'<>`]+)"#)),
            Check::Custom(url_token),
        ),
    ]
}

/// A URL (without the punctuation around it), as its parts.
struct Url<'u> {
    scheme: &'u str,
    /// Lowercased, without user info or port, `[.]` defanging undone.
    host: String,
    /// Everything after the host and port: path, query and fragment.
    rest: &'u str,
}

impl<'u> Url<'u> {
    fn parse(url: &'u str) -> Option<Url<'u>> {
        let (scheme, after) = url.split_once("://")?;
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..authority_end];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        };
        Some(Url { scheme, host: host.replace("[.]", ".").to_ascii_lowercase(), rest: &after[authority_end..] })
    }

    fn path(&self) -> &str {
        self.rest.split(['?', '#']).next().unwrap_or("")
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.path().split('/').filter(|s| !s.is_empty())
    }

    /// The query's keys, lowercased (`&amp;` from HTML-escaped text undone).
    fn query_keys(&self) -> Vec<String> {
        let Some((_, query)) = self.rest.split_once('?') else { return Vec::new() };
        let query = query.split('#').next().unwrap_or(query);
        query
            .split('&')
            .map(|pair| pair.trim_start_matches("amp;"))
            .map(|pair| pair.split('=').next().unwrap_or(pair).to_ascii_lowercase())
            .collect()
    }

    fn host_is(&self, hosts: &[&str]) -> bool {
        hosts.contains(&self.host.as_str())
    }
}

/// The URL in `candidate` without trailing punctuation; a closing bracket
/// stays when the URL opened one (a Wikipedia-style `(...)` path).
fn trimmed_end(url: &str) -> usize {
    let mut end = url.len();
    while let Some(last) = url[..end].chars().last().filter(|c| TRAILING_PUNCTUATION.contains(c)) {
        let open = match last {
            ')' => Some('('),
            ']' => Some('['),
            _ => None,
        };
        if open.is_some_and(|open| url[..end].matches(open).count() >= url[..end].matches(last).count()) {
            break;
        }
        end -= last.len_utf8();
    }
    end
}

fn secret_url(candidate: &Candidate) -> Option<Span> {
    let whole = candidate.item_str();
    let end = candidate.item.0 + trimmed_end(whole);
    let unescaped = candidate.text[candidate.item.0..end].replace("\\/", "/");
    let url = Url::parse(&unescaped)?;
    let detector = classify(&url)?;
    Some(Span { detector, start: candidate.item.0, end })
}

/// Which secret-URL detector a URL falls under, if any.
fn classify(url: &Url) -> Option<Detector> {
    if is_webhook(url) {
        return Some(Detector::WebhookUrl);
    }
    is_presigned(url).then_some(Detector::PresignedUrl)
}

/// Webhooks of the chat and automation services incident notes name, and
/// any URL with a token after a `/hooks/` or `/webhook/` segment.
fn is_webhook(url: &Url) -> bool {
    let path = url.path();
    let host = url.host.as_str();
    let known = (url.host_is(&["hooks.slack.com", "hooks.slack-gov.com"])
        && ["/services/", "/workflows/", "/triggers/"].iter().any(|p| path.starts_with(p)))
        || (host.ends_with(".webhook.office.com") && path.starts_with("/webhookb2/"))
        || (url.host_is(&["outlook.office.com", "outlook.office365.com"]) && path.starts_with("/webhook/"))
        || ((host.ends_with(".logic.azure.com") || host.ends_with(".powerplatform.com"))
            && path.contains("/workflows/"))
        || (url.host_is(&["discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com"])
            && url.segments().any(|s| s == "webhooks"))
        || (url.host_is(&["chat.googleapis.com"]) && path.starts_with("/v1/spaces/"))
        || (url.host_is(&["maker.ifttt.com"]) && path.contains("/with/key/"))
        || (url.host_is(&["hooks.zapier.com"]) && path.starts_with("/hooks/"));
    if known {
        return url.segments().count() >= 2 || !url.query_keys().is_empty();
    }
    // A hook host (`hooks.zapier.com`, `hook.eu1.make.com`) has the token
    // anywhere in its path; elsewhere it follows the hook segment.
    let hook_host = ["hooks.", "hook.", "webhook.", "webhooks."].iter().any(|p| host.starts_with(p));
    let segments: Vec<&str> = url.segments().collect();
    let after_hook = match segments.iter().position(|s| is_hook_segment(s)) {
        _ if hook_host => &segments[..],
        Some(hook) => &segments[hook + 1..],
        None => return false,
    };
    after_hook.iter().any(|s| is_token(s)) || url.query_keys().iter().any(|k| k == "token" || k == "key")
}

fn is_hook_segment(segment: &str) -> bool {
    let segment = segment.to_ascii_lowercase();
    matches!(segment.as_str(), "hooks" | "hook" | "webhook" | "webhooks" | "webhookb2" | "generic-webhook-trigger")
}

/// A path segment that is a token: long, and letters mixed with digits (not
/// a numeric id or a word such as `/hooks/github`).
fn is_token(segment: &str) -> bool {
    let allowed = segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    allowed && segment.len() >= MIN_HOOK_TOKEN_LEN && mixes_letters_and_digits(segment)
}

fn mixes_letters_and_digits(value: &str) -> bool {
    value.bytes().any(|b| b.is_ascii_digit()) && value.bytes().any(|b| b.is_ascii_alphabetic())
}

/// A URL signed for whoever holds it: AWS SigV4 and V2, Google V4 and V2,
/// CloudFront signed URLs, Azure shared access signatures.
fn is_presigned(url: &Url) -> bool {
    let keys = url.query_keys();
    let has = |key: &str| keys.iter().any(|k| k == key);
    let azure_sas = has("sig") && ["sv", "se", "sp", "sr", "st", "spr", "srt", "ss"].iter().any(|k| has(k));
    let signed_v2 = has("signature")
        && ["expires", "key-pair-id", "awsaccesskeyid", "googleaccessid", "ossaccesskeyid", "policy"]
            .iter()
            .any(|k| has(k));
    has("x-amz-signature") || has("x-goog-signature") || azure_sas || signed_v2
}

fn url_token(candidate: &Candidate) -> Option<Span> {
    let key_and_value = &candidate.text[candidate.whole.0 + 1..candidate.whole.1];
    let key = key_and_value.split('=').next().unwrap_or("").to_ascii_lowercase();
    let value = candidate.item_str();
    let value = &value[..trimmed_end(value)];
    let credential = CREDENTIAL_KEYS.split('|').any(|k| k == key);
    let taken = if credential {
        value.len() >= MIN_CREDENTIAL_LEN
    } else {
        (value.len() >= MIN_SECRET_SHAPED_LEN && mixes_letters_and_digits(value)) || value.len() >= LONG_SECRET_LEN
    };
    taken.then(|| Span { end: candidate.item.0 + value.len(), ..candidate.span() })
}

/// A webhook or pre-signed URL generalised: its scheme and host (a tenant
/// or bucket host generalised to its platform), the rest redacted.
pub(super) fn generalise(detector: Detector, found: &str) -> Option<String> {
    let unescaped = found.replace("\\/", "/");
    let url = Url::parse(&unescaped)?;
    let host = tenants::generalise_host(&url.host).unwrap_or(url.host.clone());
    Some(format!("{}://{host}/[redacted:{detector}]", url.scheme.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::detectors::Detectors;

    fn found(text: &str) -> Vec<(Detector, &str)> {
        Detectors::new(&[], &[]).find(text).into_iter().map(|f| (f.detector, &text[f.start..f.end])).collect()
    }

    #[test]
    fn chat_webhooks_are_found_whole_and_end_before_punctuation() {
        let slack = "https://hooks.slack.com/services/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";
        assert_eq!(found(&format!("posted to {slack}.")), [(Detector::WebhookUrl, slack)]);
        let discord = "https://discord.com/api/webhooks/112233445566778899/Ab-Cd_Ef12Gh34Ij56";
        assert_eq!(found(&format!("({discord})")), [(Detector::WebhookUrl, discord)]);
        let generic = "https://chat.example.org/hooks/xcdu3hpagbgc8m5sy6rhgdn8ye";
        assert_eq!(found(generic), [(Detector::WebhookUrl, generic)]);
    }

    #[test]
    fn hook_paths_without_a_token_are_no_webhook() {
        assert!(found("see https://api.github.com/repos/o/r/hooks/12345 and https://docs.example.org/webhooks/setup")
            .is_empty());
    }

    #[test]
    fn signed_object_urls_are_presigned_and_logic_app_urls_are_webhooks() {
        let s3 =
            "https://exports-7.s3.eu-west-1.amazonaws.com/a.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=9f0e";
        assert_eq!(found(s3), [(Detector::PresignedUrl, s3)]);
        let sas = "https://acct9.blob.core.windows.net/c/f.bak?sv=2022-11-02&se=2024-05-01&sp=r&sig=Zm9v%3D";
        assert_eq!(found(sas), [(Detector::PresignedUrl, sas)]);
        let logic = "https://prod-12.westeurope.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/invoke?sp=%2Ftriggers&sv=1.0&sig=Q1w2E3r4";
        assert_eq!(found(logic), [(Detector::WebhookUrl, logic)]);
    }

    #[test]
    fn query_tokens_are_redacted_without_the_next_parameter() {
        assert_eq!(found("GET /cb?state=xyz&access_token=ya29a0Kx81&user=3"), [(Detector::UrlToken, "ya29a0Kx81")]);
        assert_eq!(
            found("https://maps.example.com/js?key=AIzaSyA1b2C3d4E5f6"),
            [(Detector::UrlToken, "AIzaSyA1b2C3d4E5f6")]
        );
        assert!(found("https://shop.example.com/p?key=homepage&code=404&sig=abc").is_empty());
    }

    #[test]
    fn generalising_keeps_the_scheme_and_the_platform() {
        let url = "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/q1w2e3r4";
        assert_eq!(generalise(Detector::WebhookUrl, url).unwrap(), "https://hooks.slack.com/[redacted:webhook_url]");
        let url = "https://Acme-Team.webhook.office.com/webhookb2/0a1b@0c2d/IncomingWebhook/9f8e/0a1b";
        assert_eq!(
            generalise(Detector::WebhookUrl, url).unwrap(),
            "https://*.webhook.office.com/[redacted:webhook_url]"
        );
    }
}
