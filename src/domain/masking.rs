/// Keeps the first `keep_start` and last `keep_end` characters and stars the
/// rest, so operators can tell people apart without seeing who they are.
pub fn mask_middle(value: &str, keep_start: usize, keep_end: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= keep_start + keep_end {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - keep_start - keep_end;
    let mut masked: String = chars[..keep_start].iter().collect();
    masked.push_str(&"*".repeat(hidden));
    masked.extend(&chars[chars.len() - keep_end..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_middle() {
        assert_eq!(mask_middle("6281234567789", 4, 3), "6281******789");
    }

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(mask_middle("12345", 4, 3), "*****");
    }
}
