//! How much of a source line a finding is about: the token that starts at its column. Used for the
//! human format's carets and SARIF's `endColumn`.
//!
//! Positions point at the start of a node, never at its end, so the end is read off the text: a
//! key runs to its `:`, a quoted string to its closing quote, a template to its `}}`, a flow
//! collection to its closing bracket, a plain scalar to the end of the scalar.

/// The number of characters of the token at `column` (1-based, in characters) of `line`; at least
/// 1, so a position past the end of the line still gets a caret.
#[cfg(test)]
pub fn token_chars(line: &str, column: u32) -> usize {
    token_chars_in(line, column, false)
}

/// As [`token_chars`] on a window of a longer line: `flow_line` says the whole line is a flow
/// collection (JSON), which the window's own start may no longer show.
pub fn token_chars_in(text: &str, column: u32, flow_line: bool) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let start = (column.max(1) as usize - 1).min(chars.len());
    token_len(&chars, start, flow_line).max(1)
}

fn token_len(chars: &[char], start: usize, flow_line: bool) -> usize {
    let rest = &chars[start..];
    let Some(&first) = rest.first() else {
        return 1;
    };
    if rest.starts_with(&['{', '{']) {
        return match find_pair(rest, '}', '}') {
            Some(i) => i + 2,
            None => trimmed_len(rest),
        };
    }
    match first {
        '"' => quoted_len(rest, '"'),
        '\'' => quoted_len(rest, '\''),
        '[' | '{' => bracket_len(rest).unwrap_or(1),
        // Block indicators (`- item`, `? key`, `: value`) and comments: one character is honest.
        '-' | '?' | ':' if rest.get(1).is_none_or(|c| c.is_whitespace()) => 1,
        '#' | '|' | '>' | '&' | '*' | '!' | ',' | ']' | '}' => {
            rest.iter().take_while(|c| !c.is_whitespace()).count()
        }
        c if c.is_whitespace() => 1,
        _ => plain_len(rest, flow_line || in_flow(&chars[..start])),
    }
}

/// A quoted scalar up to and including its closing quote (`\"` escapes in double quotes, `''` in
/// single quotes); an unterminated one runs to the end of the line.
fn quoted_len(rest: &[char], quote: char) -> usize {
    let mut i = 1;
    while i < rest.len() {
        let c = rest[i];
        if quote == '"' && c == '\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if quote == '\'' && rest.get(i + 1) == Some(&'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    trimmed_len(rest)
}

/// A flow collection to its matching bracket, when that is on the same line.
fn bracket_len(rest: &[char]) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, &c) in rest.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A plain scalar: up to `: ` (a key), ` #` (a comment), a flow indicator inside a flow
/// collection, or the end of the line. A trailing comma at the end of a line is JSON's, not the
/// value's.
fn plain_len(rest: &[char], flow: bool) -> usize {
    let mut end = rest.len();
    for i in 0..rest.len() {
        let c = rest[i];
        let next = rest.get(i + 1);
        if c == ':'
            && next.is_none_or(|n| n.is_whitespace() || (flow && matches!(n, ',' | ']' | '}')))
        {
            end = i;
            break;
        }
        if c == '#' && i > 0 && rest[i - 1].is_whitespace() {
            end = i;
            break;
        }
        if flow && matches!(c, ',' | ']' | '}') {
            end = i;
            break;
        }
    }
    let mut len = trimmed_len(&rest[..end]);
    if end == rest.len() && len > 1 && rest[len - 1] == ',' {
        len -= 1;
    }
    len
}

/// Whether `prefix` leaves a flow collection open (brackets outside quotes, roughly).
fn in_flow(prefix: &[char]) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for &c in prefix {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

fn find_pair(rest: &[char], a: char, b: char) -> Option<usize> {
    rest.windows(2).position(|w| w[0] == a && w[1] == b)
}

fn trimmed_len(chars: &[char]) -> usize {
    chars.len() - chars.iter().rev().take_while(|c| c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(line: &str, column: u32) -> String {
        let start = column as usize - 1;
        line.chars()
            .skip(start)
            .take(token_chars(line, column))
            .collect()
    }

    #[test]
    fn keys_run_to_their_colon() {
        assert_eq!(token("  replica: 3", 3), "replica");
        assert_eq!(token("image: nginx:1.27", 1), "image");
        assert_eq!(token("- name: web", 3), "name");
    }

    #[test]
    fn values() {
        assert_eq!(token("image: nginx:1.27 # pinned", 8), "nginx:1.27");
        assert_eq!(token("  replicas: 3", 13), "3");
        assert_eq!(token("msg: hello world  ", 6), "hello world");
        assert_eq!(token(r#"x: "a \" b", y"#, 4), r#""a \" b""#);
        assert_eq!(token("x: 'it''s' # c", 4), "'it''s'");
        assert_eq!(token("x: \"open", 4), "\"open");
        assert_eq!(token("  \"replicas\": 3,", 3), "\"replicas\"");
        assert_eq!(token("  \"replicas\": 3,", 15), "3");
    }

    #[test]
    fn flow_collections_and_templates() {
        assert_eq!(
            token("metadata: {name: a, x: [1, 2]}", 11),
            "{name: a, x: [1, 2]}"
        );
        assert_eq!(token("metadata: {name: a, x: [1, 2]}", 18), "a");
        assert_eq!(token("ports: [80, 443]", 13), "443");
        assert_eq!(
            token("replicas: {{ .Values.replicas }} # n", 11),
            "{{ .Values.replicas }}"
        );
    }

    #[test]
    fn always_at_least_one_character() {
        assert_eq!(token_chars("", 1), 1);
        assert_eq!(token_chars("a: 1", 40), 1);
        assert_eq!(token_chars("a: 1", 0), 1);
        assert_eq!(token("- x", 1), "-");
        assert_eq!(token("a:   ", 3), " ");
    }

    #[test]
    fn characters_not_bytes() {
        assert_eq!(token("名前: 値", 1), "名前");
        assert_eq!(token("名前: 値", 5), "値");
    }
}
