//! What a page says about itself: Open Graph `<meta property="og:…">` first, then `<meta
//! name="description">` and `<title>`. A small scanner over the start of the page (the part that
//! was read), not a full HTML parser: tags are found case-insensitively, attributes quoted with
//! `"` or `'` or not at all, and the common character references decoded.

/// A page's own description of itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub image: Option<String>,
    pub site_name: Option<String>,
}

impl Meta {
    /// Whether there is anything to show.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none()
    }
}

/// Longest title, description and site name kept, in characters.
const TITLE_MAX: usize = 300;
const DESCRIPTION_MAX: usize = 1000;
const SITE_MAX: usize = 200;

/// Reads the page's description of itself from `html`.
pub fn meta(html: &str) -> Meta {
    let lower = html.to_ascii_lowercase();
    let mut og = Meta::default();
    let mut plain_description = None;
    let mut at = 0;
    while let Some(found) = lower[at..].find("<meta") {
        let start = at + found + 5;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let attributes = attributes(&html[start..end]);
        let get = |name: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let key = get("property")
            .or_else(|| get("name"))
            .map(str::to_ascii_lowercase);
        if let (Some(key), Some(content)) = (key, get("content")) {
            let content = clean(content);
            if !content.is_empty() {
                let slot = match key.as_str() {
                    "og:title" => Some(&mut og.title),
                    "og:description" => Some(&mut og.description),
                    "og:image" | "og:image:url" => Some(&mut og.image),
                    "og:site_name" => Some(&mut og.site_name),
                    "description" => Some(&mut plain_description),
                    _ => None,
                };
                if let Some(slot) = slot
                    && slot.is_none()
                {
                    *slot = Some(content);
                }
            }
        }
        at = end;
    }
    if og.title.is_none()
        && let Some(open) = lower.find("<title")
        && let Some(gt) = lower[open..].find('>')
    {
        let from = open + gt + 1;
        let to = lower[from..]
            .find("</title")
            .map_or(lower.len(), |e| from + e);
        let title = clean(&html[from..to]);
        if !title.is_empty() {
            og.title = Some(title);
        }
    }
    if og.description.is_none() {
        og.description = plain_description;
    }
    og.title = og.title.map(|t| cut(t, TITLE_MAX));
    og.description = og.description.map(|d| cut(d, DESCRIPTION_MAX));
    og.site_name = og.site_name.map(|s| cut(s, SITE_MAX));
    og
}

/// The attributes of a tag (the text after its name), names lower-cased.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = tag.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == '/') {
            *i += 1;
        }
    };
    loop {
        skip_space(&mut i);
        let name_start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '=' | '/') {
            i += 1;
        }
        if i == name_start {
            break;
        }
        let name: String = chars[name_start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], '"' | '\'') {
                let quote = chars[i];
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && !chars[i].is_whitespace() {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        out.push((name, value));
    }
    out
}

/// Text with its character references decoded and its white space collapsed.
fn clean(text: &str) -> String {
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_graph_comes_first_then_title_and_description() {
        let page = r#"<html><head><TITLE>Plain  title</TITLE>
            <meta name="description" content="Plain description">
            <META property='og:title' content='Goftgu &amp; friends'>
            <meta content="The chat" property="og:description" />
            <meta property=og:image content=/logo.png>
            <meta property="og:site_name" content="goftgu.example"></head>"#;
        assert_eq!(
            meta(page),
            Meta {
                title: Some("Goftgu & friends".into()),
                description: Some("The chat".into()),
                image: Some("/logo.png".into()),
                site_name: Some("goftgu.example".into()),
            }
        );
        let plain = "<title>\n  Only   a title </title><meta name=description content='d'>";
        let found = meta(plain);
        assert_eq!(found.title.as_deref(), Some("Only a title"));
        assert_eq!(found.description.as_deref(), Some("d"));
        assert!(meta("<p>nothing</p>").is_empty());
    }

    #[test]
    fn long_texts_are_cut() {
        let page = format!("<title>{}</title>", "a".repeat(400));
        assert_eq!(meta(&page).title.unwrap().chars().count(), TITLE_MAX);
    }
}
