//! SQL fingerprints: the statement with its literals and parameters stripped, so every
//! execution of the same query shape counts together.

/// Normalises `sql`: string and numeric literals, blobs and bound parameters (`?`, `?1`,
/// `:name`, `@name`, `$1`) become `?`; comments go; whitespace collapses; words outside
/// quoted identifiers are lower-cased; a list of placeholders (`IN (?, ?, ?)`) becomes one.
///
/// ```
/// use perf_rt::monitor::normalize_sql;
///
/// assert_eq!(
///     normalize_sql("SELECT * FROM t WHERE id = 42 AND name = 'O''Brien' -- why\n"),
///     "select * from t where id = ? and name = ?",
/// );
/// assert_eq!(normalize_sql("select 1 where x in (1, 2,3)"), "select ? where x in (?)");
/// ```
pub fn normalize_sql(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut pending_space = false;
    let push = |out: &mut String, pending_space: &mut bool, s: &str| {
        if *pending_space && !out.is_empty() {
            out.push(' ');
        }
        *pending_space = false;
        out.push_str(s);
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                pending_space = true;
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                pending_space = true;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                pending_space = true;
            }
            b'\'' => {
                i = skip_quoted(bytes, i, b'\'');
                push(&mut out, &mut pending_space, "?");
            }
            b'x' | b'X'
                if bytes.get(i + 1) == Some(&b'\'') && !word_before(&out, pending_space) =>
            {
                i = skip_quoted(bytes, i + 1, b'\'');
                push(&mut out, &mut pending_space, "?");
            }
            b'"' | b'`' | b'[' => {
                // Quoted identifiers stay as written.
                let close = if c == b'[' { b']' } else { c };
                let end = skip_quoted(bytes, i, close);
                push(&mut out, &mut pending_space, &sql[i..end]);
                i = end;
            }
            b'?' | b':' | b'@' | b'$'
                if bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    || c == b'?' =>
            {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                push(&mut out, &mut pending_space, "?");
            }
            b'0'..=b'9' if !word_before(&out, pending_space) => {
                i = skip_number(bytes, i);
                push(&mut out, &mut pending_space, "?");
            }
            b'.' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !word_before(&out, pending_space) =>
            {
                i = skip_number(bytes, i);
                push(&mut out, &mut pending_space, "?");
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                let word = sql[start..i].to_ascii_lowercase();
                push(&mut out, &mut pending_space, &word);
            }
            _ => {
                // Punctuation: no space before `,` `)` `;` or after `(`.
                let glue_left = matches!(c, b',' | b')' | b';' | b'.');
                if glue_left || out.ends_with('(') || out.ends_with('.') {
                    pending_space = false;
                }
                let end = i + 1;
                push(&mut out, &mut pending_space, &sql[i..end]);
                // One form for `a,b` and `a, b`.
                pending_space = c == b',';
                i = end;
            }
        }
    }
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    collapse_lists(out)
}

/// Whether the output so far ends in a word character with no space after it (so a digit
/// continues an identifier such as `t1`).
fn word_before(out: &str, pending_space: bool) -> bool {
    !pending_space
        && out
            .as_bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn skip_quoted(bytes: &[u8], start: usize, close: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == close {
            if close != b']' && bytes.get(i + 1) == Some(&close) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn skip_number(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    if bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < bytes.len() && matches!(bytes[j], b'+' | b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// `(?, ?, ?)` → `(?)`, and `(?), (?)` rows → `(?)`.
fn collapse_lists(mut s: String) -> String {
    loop {
        let next = s.replace("?, ?", "?").replace("(?), (?)", "(?)");
        if next == s {
            return s;
        }
        s = next;
    }
}

/// A stable 64-bit fingerprint of a normalised statement (FNV-1a: the same on every
/// instance and every run, so fingerprints can be compared across processes).
pub fn fingerprint(normalized: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in normalized.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_parameters_become_placeholders() {
        let cases = [
            (
                "SELECT id, title FROM reflections WHERE id = ?1",
                "select id, title from reflections where id = ?",
            ),
            (
                "select * from t where a = :name and b = @b and c = $1 and d = ?",
                "select * from t where a = ? and b = ? and c = ? and d = ?",
            ),
            (
                "INSERT INTO t (a, b) VALUES (1.5e3, 'it''s'), (0x1F, X'00ff')",
                "insert into t (a, b) values (?)",
            ),
            ("select t1.c2 from t1", "select t1.c2 from t1"),
            (
                "SELECT \"Mixed Case\" FROM [My Table] /* c */ WHERE x IN (1,2,3);",
                "select \"Mixed Case\" from [My Table] where x in (?)",
            ),
            ("  select\n\t-1  ", "select -?"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_sql(input), expected, "{input}");
        }
    }

    #[test]
    fn same_shape_same_fingerprint() {
        let a = normalize_sql("SELECT * FROM t WHERE id = 1");
        let b = normalize_sql("select *   from t where id = 99");
        let c = normalize_sql("select * from u where id = 1");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
