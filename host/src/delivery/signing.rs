//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! with each secret's key (the base64 after `whsec_`), space-separated when
//! a rotation leaves two secrets signing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The `webhook-signature` header for a message, signed with every secret
/// (the current one first).
pub fn signature(secrets: &[String], message_id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .map(|secret| {
            let key = key(secret);
            // HMAC takes a key of any length; this cannot fail.
            let mut mac = Hmac::<Sha256>::new_from_slice(&key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            mac.update(message_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The key bytes of a `whsec_` secret. Secrets this server made are always
/// base64; anything else is used as it is rather than not signed at all.
fn key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::signature;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn the_specifications_example() {
        let secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()];
        let signed = signature(
            &secrets,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_secret_signs_in_order() {
        let secrets = ["whsec_AAAA".to_owned(), "whsec_BBBB".to_owned()];
        let both = signature(&secrets, "msg_1", 1, "{}");
        let parts: Vec<_> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&secrets[..1], "msg_1", 1, "{}"));
        assert_eq!(parts[1], signature(&secrets[1..], "msg_1", 1, "{}"));
        assert_ne!(parts[0], parts[1]);
    }
}
