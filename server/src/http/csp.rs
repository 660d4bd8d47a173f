//! The Content-Security-Policy of the production path (`--static`): scripts only from this
//! origin, WebAssembly allowed to compile, and trunk's one inline loader admitted by its hash —
//! never `'unsafe-inline'`.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The policy for an `index.html`: every inline `<script>` in it is admitted by its SHA-256.
pub fn policy_for(index_html: &str) -> String {
    let hashes: Vec<String> = inline_scripts(index_html)
        .map(|body| {
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        hashes.join(" ")
    )
}

/// The bodies of the `<script>` elements without a `src`, exactly as the browser hashes them.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find("<script")?;
            let after_tag = &rest[start..];
            let tag_end = after_tag.find('>')?;
            let tag = &after_tag[..tag_end];
            let body_start = start + tag_end + 1;
            let body_len = rest[body_start..].find("</script>")?;
            let body = &rest[body_start..body_start + body_len];
            rest = &rest[body_start + body_len + "</script>".len()..];
            if !tag.contains(" src=") {
                return Some(body);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_inline_scripts_only() {
        let html =
            r#"<script src="/a.js"></script><script type="module">go()</script><script>x</script>"#;
        let bodies: Vec<_> = inline_scripts(html).collect();
        assert_eq!(bodies, vec!["go()", "x"]);
        let policy = policy_for(html);
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"));
        assert!(!policy.contains("unsafe-inline"));
        assert_eq!(policy.matches("'sha256-").count(), 2);
    }
}
