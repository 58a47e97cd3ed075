//! Scrubbing echoed secrets out of text that travels into logs and errors.
//!
//! A server may echo a secret in any spelling: raw, form-encoded (`+` or `%20`
//! for spaces, upper- or lower-case hex), percent-encoded byte for byte, or
//! JSON-escaped (`\"`, `\\`, `\/`, `\n`, `\u00e9`, surrogate pairs). Instead of
//! listing every combination, the matcher decodes as it compares: each
//! character of a secret matches any spelling of that character, so mixed
//! spellings (a JavaScript `encodeURIComponent` keeps `~!'()*`, a form encoder
//! does not) are caught too.

/// What replaces each echoed secret.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this (in bytes) are not scrubbed: they would blank
/// ordinary words, and no Linear secret is that short.
pub const MIN_REDACTED_LEN: usize = 4;

/// Replaces every spelling of each of `secrets` in `text` with `[redacted]`.
/// Overlapping matches (of one or several secrets) become one marker.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let secrets: Vec<Vec<char>> =
        secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN).map(|s| s.chars().collect()).collect();
    if secrets.is_empty() {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for start in 0..bytes.len() {
        if !text.is_char_boundary(start) {
            continue;
        }
        let end = secrets.iter().filter_map(|s| longest_match(bytes, start, s)).max();
        if let Some(end) = end {
            match spans.last_mut() {
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => spans.push((start, end)),
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// The end of the longest spelling of `secret` starting at `start`, if any.
/// Tracks every reachable offset, because one character can have spellings of
/// different lengths (`\` or `\\`; `%` or `%25`).
fn longest_match(text: &[u8], start: usize, secret: &[char]) -> Option<usize> {
    let mut offsets = vec![start];
    let mut next = Vec::new();
    for &c in secret {
        next.clear();
        for &at in &offsets {
            for len in spellings_at(text, at, c) {
                let end = at + len;
                if !next.contains(&end) {
                    next.push(end);
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        std::mem::swap(&mut offsets, &mut next);
    }
    offsets.into_iter().max()
}

/// The lengths of every spelling of `c` found at `text[at..]` (at most four).
fn spellings_at(text: &[u8], at: usize, c: char) -> impl Iterator<Item = usize> {
    let rest = &text[at.min(text.len())..];
    let mut utf8 = [0u8; 4];
    let raw = c.encode_utf8(&mut utf8).as_bytes();
    [
        rest.starts_with(raw).then_some(raw.len()),
        percent_encoded(rest, raw),
        (c == ' ' && rest.first() == Some(&b'+')).then_some(1),
        json_escaped(rest, c),
    ]
    .into_iter()
    .flatten()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `%XX` (either case) for each byte of `raw`; for a multi-byte character
/// each byte may be encoded or left raw.
fn percent_encoded(rest: &[u8], raw: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut any_encoded = false;
    for &b in raw {
        match rest.get(i..i + 3) {
            Some([b'%', h, l]) if hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l) == Some(b) => {
                i += 3;
                any_encoded = true;
            }
            _ if rest.get(i) == Some(&b) => i += 1,
            _ => return None,
        }
    }
    any_encoded.then_some(i)
}

/// `\uXXXX` (either case; a surrogate pair outside the BMP) or a short escape.
fn json_escaped(rest: &[u8], c: char) -> Option<usize> {
    if rest.first() != Some(&b'\\') {
        return None;
    }
    let short = match c {
        '"' => Some(b'"'),
        '\\' => Some(b'\\'),
        '/' => Some(b'/'),
        '\u{8}' => Some(b'b'),
        '\u{c}' => Some(b'f'),
        '\n' => Some(b'n'),
        '\r' => Some(b'r'),
        '\t' => Some(b't'),
        _ => None,
    };
    if short.is_some() && rest.get(1).copied() == short {
        return Some(2);
    }
    let mut units = [0u16; 2];
    let units = c.encode_utf16(&mut units);
    let mut i = 0;
    for &unit in units.iter() {
        let esc = rest.get(i..i + 6)?;
        if &esc[..2] != b"\\u" {
            return None;
        }
        let mut v: u16 = 0;
        for &d in &esc[2..] {
            v = v << 4 | u16::from(hex(d)?);
        }
        if v != unit {
            return None;
        }
        i += 6;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_issue_secret() {
        let s = "S3cr3t+With/Special=Chars&x";
        for spelled in [
            "S3cr3t+With/Special=Chars&x",
            "S3cr3t%2BWith%2FSpecial%3DChars%26x",
            "S3cr3t%2bWith%2fSpecial%3dChars%26x",
            "%53%33%63%72%33%74%2B%57%69%74%68%2F%53%70%65%63%69%61%6C%3D%43%68%61%72%73%26%78",
            "S3cr3t+With\\/Special=Chars&x",
            "S3cr3t\\u002bWith\\u002FSpecial\\u003dChars\\u0026x",
        ] {
            assert_eq!(redact(&format!("a={spelled}&b=1"), &[s]), "a=[redacted]&b=1", "{spelled}");
        }
    }

    #[test]
    fn spaces_quotes_and_non_ascii() {
        let s = "p\u{e9} \"q\\ \u{1F600}";
        for spelled in [
            "p\u{e9} \"q\\ \u{1F600}",
            "p%C3%A9+%22q%5C+%F0%9F%98%80",
            "p%c3%a9%20%22q%5c%20%f0%9f%98%80",
            "p\\u00e9 \\\"q\\\\ \\ud83d\\ude00",
        ] {
            assert_eq!(redact(&format!("<{spelled}>"), &[s]), "<[redacted]>", "{spelled}");
        }
    }

    #[test]
    fn short_secrets_and_clean_text_are_left_alone() {
        assert_eq!(redact("abc abc", &["abc", ""]), "abc abc");
        assert_eq!(redact("nothing to see", &["lin_oauth_X"]), "nothing to see");
        assert_eq!(redact("100% sure %zz %", &["lin_oauth_X"]), "100% sure %zz %");
    }

    #[test]
    fn overlapping_secrets_become_one_marker() {
        assert_eq!(redact("xx abcdefgh yy", &["abcdef", "defgh"]), "xx [redacted] yy");
        assert_eq!(redact("abcdabcd", &["abcd"]), "[redacted][redacted]");
    }
}
