//! Input rules shared by registration and profile updates; each error names the offending field.
use crate::error::{AppError, AppResult};

/// Usernames: 3–32 characters, letters, digits and `_`, starting with a letter.
pub const USERNAME_MIN: usize = 3;
/// See [`USERNAME_MIN`].
pub const USERNAME_MAX: usize = 32;
/// Passwords: 8–128 characters.
pub const PASSWORD_MIN: usize = 8;
/// See [`PASSWORD_MIN`].
pub const PASSWORD_MAX: usize = 128;
/// Full names: at most 100 characters.
pub const FULL_NAME_MAX: usize = 100;
/// Bios: at most 500 characters.
pub const BIO_MAX: usize = 500;
/// RFC 5321 limit on a forward path.
pub const EMAIL_MAX: usize = 254;

/// Checks a username and returns it unchanged.
pub fn username(field: &str, value: &str) -> AppResult<String> {
    let len = value.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(AppError::bad_input(
            field,
            format!("username must be {USERNAME_MIN}–{USERNAME_MAX} characters long"),
        ));
    }
    let mut chars = value.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(AppError::bad_input(
            field,
            "username may contain only letters, digits and `_`, and must start with a letter",
        ));
    }
    Ok(value.to_string())
}

/// The key usernames are unique by and looked up with.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Checks an email address and returns its canonical (trimmed, lower-case) form.
pub fn email(field: &str, value: &str) -> AppResult<String> {
    let normalized = value.trim().to_lowercase();
    let domain_has_dot = normalized
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.contains('.') && !domain.ends_with('.'));
    if normalized.len() > EMAIL_MAX
        || !domain_has_dot
        || !email_address::EmailAddress::is_valid(&normalized)
    {
        return Err(AppError::bad_input(field, "email is not a valid address"));
    }
    Ok(normalized)
}

/// Checks a new password's length.
pub fn password(field: &str, value: &str) -> AppResult<()> {
    let len = value.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(AppError::bad_input(
            field,
            format!("password must be {PASSWORD_MIN}–{PASSWORD_MAX} characters long"),
        ));
    }
    Ok(())
}

/// Optional free text: trimmed; empty means "none"; too long or control characters are refused.
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> AppResult<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be at most {max} characters long"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::bad_input(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(Some(value.to_string()))
}

/// Refuses a page size outside `1..=max`, naming the argument; returns it as `u64`.
pub fn page_size(field: &str, first: i64, max: u64) -> AppResult<u64> {
    u64::try_from(first)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| AppError::bad_input(field, format!("{field} must be between 1 and {max}")))
}

/// Escapes `%`, `_` and `\` so user text is matched literally inside a `LIKE … ESCAPE '\'`.
pub fn like_pattern_contains(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_3_to_32_letters_digits_or_underscores_starting_with_a_letter() {
        for ok in ["ana", "Sara_99", &"a".repeat(32)] {
            assert_eq!(username("username", ok).unwrap(), ok);
        }
        for bad in ["ab", &"a".repeat(33), "9lives", "_x_", "سارا", "a b", "a-b"] {
            let err = username("username", bad).unwrap_err();
            assert_eq!(
                (err.code(), err.field()),
                ("BAD_USER_INPUT", Some("username")),
                "{bad}"
            );
        }
        assert_eq!(username_key("Sara_99"), "sara_99");
    }

    #[test]
    fn emails_are_trimmed_lower_cased_and_need_a_dotted_domain() {
        assert_eq!(
            email("email", "  Sara@Example.COM ").unwrap(),
            "sara@example.com"
        );
        for bad in [
            "sara",
            "sara@localhost",
            "sara@example.",
            "@example.com",
            "a@@b.c",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(email("email", &long).is_err());
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(password("password", "1234567").is_err());
        assert!(password("password", "12345678").is_ok());
        assert!(password("password", &"ж".repeat(128)).is_ok());
        assert!(password("password", &"ж".repeat(129)).is_err());
    }

    #[test]
    fn optional_text_trims_treats_empty_as_none_and_refuses_control_characters() {
        assert_eq!(
            optional_text("bio", Some("  hi  "), 10).unwrap().as_deref(),
            Some("hi")
        );
        assert_eq!(optional_text("bio", Some("   "), 10).unwrap(), None);
        assert_eq!(optional_text("bio", None, 10).unwrap(), None);
        assert!(optional_text("bio", Some("line\nnext"), 20).is_ok());
        assert!(optional_text("bio", Some("bell\u{7}"), 20).is_err());
        assert!(optional_text("bio", Some("abcdef"), 5).is_err());
    }

    #[test]
    fn page_sizes_outside_the_range_name_the_argument() {
        assert_eq!(page_size("first", 1, 100).unwrap(), 1);
        assert_eq!(page_size("first", 100, 100).unwrap(), 100);
        for bad in [0, -1, 101] {
            let err = page_size("first", bad, 100).unwrap_err();
            assert_eq!(err.field(), Some("first"));
        }
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern_contains("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
