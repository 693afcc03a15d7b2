//! Finding `@username` and `@all` in a message's text. A mention starts at an `@` that does not
//! follow a letter, digit, `_` or `@` (so `ali@example.com` mentions nobody) and is a whole
//! username: a letter, then letters, digits and `_`, 3–32 of them, not followed by another word
//! character (so `@sara's` names `sara`, `@saraجان` names nobody). Text in code spans
//! (`` `…` `` and fenced blocks, any number of backticks) mentions nobody.
use crate::domain::validate::{USERNAME_MAX, USERNAME_MIN, username_key};

/// Most distinct names one message mentions; later ones are plain text.
pub const NAMES_MAX: usize = 50;

/// What a text mentions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mentioned {
    /// Username keys (lower-case), distinct, in order of first appearance.
    pub names: Vec<String>,
    /// `@all` appears.
    pub all: bool,
}

impl Mentioned {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && !self.all
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The mentions in `text`.
pub fn mentions(text: &str) -> Mentioned {
    let mut found = Mentioned::default();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '`' => i = past_code_span(&chars, i),
            '@' if i == 0 || !(is_word(chars[i - 1]) || chars[i - 1] == '@') => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && is_word(chars[end]) {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                if let Some(key) = as_username(&name) {
                    if key == "all" {
                        found.all = true;
                    } else if !found.names.contains(&key) && found.names.len() < NAMES_MAX {
                        found.names.push(key);
                    }
                }
                i = end.max(start);
            }
            _ => i += 1,
        }
    }
    found
}

/// The username key `word` is, when it is a whole username.
fn as_username(word: &str) -> Option<String> {
    let len = word.chars().count();
    let well_formed = (USERNAME_MIN..=USERNAME_MAX).contains(&len)
        && word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    well_formed.then(|| username_key(word))
}

/// The index after the code span opened by the backtick run at `open`: after the next run of
/// the same length, or after the opening run itself when none closes it (then it is text).
fn past_code_span(chars: &[char], open: usize) -> usize {
    let run = |at: usize| chars[at..].iter().take_while(|&&c| c == '`').count();
    let width = run(open);
    let mut i = open + width;
    while i < chars.len() {
        if chars[i] == '`' {
            let closing = run(i);
            if closing == width {
                return i + closing;
            }
            i += closing;
        } else {
            i += 1;
        }
    }
    open + width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        mentions(text).names
    }

    #[test]
    fn names_end_at_punctuation_and_are_case_folded() {
        assert_eq!(names("hi @Sara, and @bob_99!"), ["sara", "bob_99"]);
        assert_eq!(
            names("(@sara) @bob. @carol? @dave:"),
            ["sara", "bob", "carol", "dave"]
        );
        assert_eq!(names("@sara's idea"), ["sara"]);
        assert_eq!(names("@sara @SARA @sara"), ["sara"]);
    }

    #[test]
    fn not_a_mention_inside_words_addresses_or_unicode_names() {
        assert!(names("mail ali@example.com or x@@bob").is_empty());
        assert!(names("@سارا and @saraجان and @ab and @9lives").is_empty());
        assert_eq!(names("سلام @sara، خوبی؟"), ["sara"]);
        assert!(names("@ alone @").is_empty());
        let too_long = format!("@{}", "a".repeat(33));
        assert!(names(&too_long).is_empty());
    }

    #[test]
    fn code_spans_and_fenced_blocks_mention_nobody() {
        assert_eq!(names("`@sara` @bob"), ["bob"]);
        assert_eq!(names("```\nlet x = @sara;\n``` @carol"), ["carol"]);
        assert_eq!(names("`` a ` @sara `` @dave"), ["dave"]);
        // An unclosed backtick is plain text.
        assert_eq!(names("it`s @sara"), ["sara"]);
    }

    #[test]
    fn all_is_its_own_mention() {
        let found = mentions("@all look, @ALL and @sara");
        assert!(found.all);
        assert_eq!(found.names, ["sara"]);
        assert!(!mentions("@allison").all);
        assert!(mentions("nothing here").is_empty());
    }

    #[test]
    fn at_most_names_max_names() {
        let text: String = (0..NAMES_MAX + 10).map(|i| format!("@user{i} ")).collect();
        assert_eq!(names(&text).len(), NAMES_MAX);
    }
}
