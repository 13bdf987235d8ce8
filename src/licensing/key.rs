//! License keys: `[PREFIX-]XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`, 125 random bits from the
//! OS-seeded CSPRNG, written in Crockford base32 (no I, L, O or U).

use std::fmt;

use rand::Rng;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUPS: usize = 5;
const GROUP_LEN: usize = 5;
/// Longest key imported from another service; matches the `licenses_key_check`.
pub const MAX_IMPORTED_LEN: usize = 255;
/// Longest accepted prefix; matches the `key_prefix` check in the schema.
pub const MAX_PREFIX_LEN: usize = 16;

/// A license key in its canonical (stored) form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LicenseKey(String);

impl LicenseKey {
    /// Mints a new key, optionally behind a product prefix (already validated).
    pub fn generate(prefix: Option<&str>) -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let mut bits = u128::from_le_bytes(bytes);
        let mut out = String::with_capacity(MAX_PREFIX_LEN + 1 + GROUPS * (GROUP_LEN + 1));
        if let Some(prefix) = prefix {
            out.push_str(prefix);
            out.push('-');
        }
        for group in 0..GROUPS {
            if group > 0 {
                out.push('-');
            }
            for _ in 0..GROUP_LEN {
                out.push(ALPHABET[(bits & 31) as usize] as char);
                bits >>= 5;
            }
        }
        LicenseKey(out)
    }

    /// Reads a key as a person might type it: surrounding white space, any case, and
    /// Crockford's look-alikes (`O`→`0`, `I`/`L`→`1`) in the random part are accepted.
    /// `None` means it cannot be a licensd key, so no lookup is needed.
    pub fn parse(input: &str) -> Option<Self> {
        let upper = input.trim().to_ascii_uppercase();
        let parts: Vec<&str> = upper.split('-').collect();
        let (prefix, groups) = match parts.len() {
            n if n == GROUPS => (None, &parts[..]),
            n if n == GROUPS + 1 => (Some(parts[0]), &parts[1..]),
            _ => return None,
        };
        if let Some(p) = prefix {
            if !is_valid_prefix(p) {
                return None;
            }
        }
        let mut out = String::with_capacity(upper.len());
        if let Some(p) = prefix {
            out.push_str(p);
            out.push('-');
        }
        for (i, group) in groups.iter().enumerate() {
            if group.len() != GROUP_LEN {
                return None;
            }
            if i > 0 {
                out.push('-');
            }
            for c in group.chars() {
                out.push(canonical_char(c)?);
            }
        }
        Some(LicenseKey(out))
    }

    /// The form a look-up compares with `upper(key)`: a licensd key as [`LicenseKey::parse`]
    /// reads it, else (a key imported from another service) the trimmed input in upper
    /// case, if it is 1 to 255 printable ASCII characters. `None`: no license can have it.
    pub fn lookup(input: &str) -> Option<Self> {
        Self::parse(input).or_else(|| {
            {
                let trimmed = input.trim();
                (1..=MAX_IMPORTED_LEN).contains(&trimmed.len())
                    && trimmed.bytes().all(|b| b.is_ascii_graphic())
            }
            .then(|| LicenseKey(input.trim().to_ascii_uppercase()))
        })
    }

    /// A key imported as it was issued elsewhere: printable ASCII, 1 to 255 characters,
    /// stored as given (look-ups ignore its case). A key in licensd's own format is stored
    /// in its canonical form.
    pub fn imported(input: &str) -> Option<String> {
        if let Some(native) = Self::parse(input) {
            return Some(native.0);
        }
        let trimmed = input.trim();
        ((1..=MAX_IMPORTED_LEN).contains(&trimmed.len())
            && trimmed.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| trimmed.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// How a path or request names a license: by id (a UUID) or by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseRef {
    Id(uuid::Uuid),
    Key(LicenseKey),
}

impl LicenseRef {
    /// A UUID is an id; anything else is read leniently as a key. `None`: neither.
    pub fn parse(input: &str) -> Option<Self> {
        match uuid::Uuid::parse_str(input.trim()) {
            Ok(id) => Some(LicenseRef::Id(id)),
            Err(_) => LicenseKey::lookup(input).map(LicenseRef::Key),
        }
    }

    /// The string `db::licenses::find` looks up.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            LicenseRef::Id(id) => id.to_string().into(),
            LicenseRef::Key(key) => key.as_str().into(),
        }
    }
}

/// A product key prefix: 1 to 16 upper-case ASCII letters or digits.
pub fn is_valid_prefix(p: &str) -> bool {
    (1..=MAX_PREFIX_LEN).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn canonical_char(c: char) -> Option<char> {
    match c {
        'O' => Some('0'),
        'I' | 'L' => Some('1'),
        'U' => None,
        c if c.is_ascii_digit() || c.is_ascii_uppercase() => Some(c),
        _ => None,
    }
}

impl fmt::Display for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keys are credentials: Debug shows only the first group.
impl fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(5).collect();
        write!(f, "LicenseKey({shown}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_parse_back() {
        let key = LicenseKey::generate(None);
        assert_eq!(key.as_str().len(), 29);
        assert_eq!(LicenseKey::parse(key.as_str()), Some(key.clone()));
        let prefixed = LicenseKey::generate(Some("MYAPP"));
        assert!(prefixed.as_str().starts_with("MYAPP-"));
        assert_eq!(LicenseKey::parse(prefixed.as_str()), Some(prefixed));
    }

    #[test]
    fn keys_do_not_repeat() {
        let keys: std::collections::HashSet<_> =
            (0..10_000).map(|_| LicenseKey::generate(None)).collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn parsing_is_lenient_about_case_space_and_lookalikes() {
        let parsed = LicenseKey::parse("  app-abcde-fghjk-mnpqr-stvwx-yz0o1 \n").unwrap();
        assert_eq!(parsed.as_str(), "APP-ABCDE-FGHJK-MNPQR-STVWX-YZ001");
        assert_eq!(
            LicenseKey::parse("ilIL0-00000-00000-00000-00000")
                .unwrap()
                .as_str(),
            "11110-00000-00000-00000-00000"
        );
    }

    #[test]
    fn parsing_rejects_what_cannot_be_a_key() {
        for bad in [
            "",
            "hello",
            "ABCDE-ABCDE-ABCDE-ABCDE",
            "ABCDE-ABCDE-ABCDE-ABCDE-ABCD",
            "ABCDE-ABCDE-ABCDE-ABCDE-ABCDU",
            "A B-ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
            "X-Y-ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
            "ÄBCDE-ABCDE-ABCDE-ABCDE-ABCDE",
        ] {
            assert_eq!(LicenseKey::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let key = LicenseKey::generate(None);
        assert!(!format!("{key:?}").contains(&key.as_str()[6..]));
    }

    mod hostile_input {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics_and_only_yields_canonical_keys(s in "\\PC{0,80}") {
                if let Some(key) = LicenseKey::parse(&s) {
                    // A parsed key is canonical: it parses to itself.
                    prop_assert_eq!(LicenseKey::parse(key.as_str()), Some(key.clone()));
                    prop_assert!(key.as_str().is_ascii());
                    // The random part is Crockford base32: no I, L, O or U.
                    let random = &key.as_str()[key.as_str().len() - 29..];
                    prop_assert!(!random.contains(['I', 'L', 'O', 'U']));
                }
            }

            #[test]
            fn key_shaped_input_parses_whatever_its_case_and_spacing(
                groups in proptest::collection::vec("[0-9A-HJKMNP-TV-Z]{5}", 5),
                lower in any::<bool>(), pad in "[ \t\n]{0,3}",
            ) {
                let key = groups.join("-");
                let typed = if lower { key.to_lowercase() } else { key.clone() };
                let parsed = LicenseKey::parse(&format!("{pad}{typed}{pad}"));
                prop_assert_eq!(parsed.map(LicenseKey::into_string), Some(key));
            }

            #[test]
            fn near_misses_are_rejected(
                groups in proptest::collection::vec("[0-9A-HJKMNP-TV-Z]{5}", 5),
                at in 0usize..29, junk in "[^0-9A-Za-z\\-]",
            ) {
                let key = groups.join("-");
                let mut chars: Vec<char> = key.chars().collect();
                if chars[at] != '-' {
                    chars[at] = junk.chars().next().unwrap();
                    let broken: String = chars.into_iter().collect();
                    if broken.trim() == broken {
                        prop_assert_eq!(LicenseKey::parse(&broken), None);
                    }
                }
            }
        }
    }
}
