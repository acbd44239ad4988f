//! Environment overrides: `TESSERA_` + the key's path in upper case, with
//! `__` between sections. `TESSERA_REGISTRATION__ENABLE=true` sets
//! `[registration] enable`; `TESSERA_SERVER_NAME=example.org` sets the
//! top-level `server_name`.
//!
//! A value is read as a TOML value when it parses as one (`true`, `8008`,
//! `["0.0.0.0:8008"]`, `"quoted"`), and as a plain string otherwise, so
//! `TESSERA_SERVER_NAME=example.org` needs no quotes. An override for a key
//! the schema does not know fails like an unknown key in the file.

use super::ConfigError;

const PREFIX: &str = "TESSERA_";

/// Applies every `TESSERA_*` variable in `vars` to `table`.
pub fn apply_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = vars.into_iter().filter(|(name, _)| name.starts_with(PREFIX)).collect();
    // Deterministic order: a section set as a whole, then its keys.
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<String> = name[PREFIX.len()..].split("__").map(str::to_lowercase).collect();
        let dotted = path.join(".");
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::key(&dotted, format!("malformed environment variable name {name}")));
        }
        let (last, sections) = path.split_last().expect("split yields at least one part");
        let mut node = &mut *table;
        for section in sections {
            let entry = node.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry
                .as_table_mut()
                .ok_or_else(|| ConfigError::key(&dotted, format!("{name}: `{section}` is a value, not a section")))?;
        }
        node.insert(last.clone(), parse_value(&raw));
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(vars: &[(&str, &str)]) -> toml::Table {
        let mut t: toml::Table = "server_name = \"a.org\"\n[registration]\nenable = false\n".parse().unwrap();
        apply_overrides(&mut t, vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        t
    }

    #[test]
    fn section_key_is_overridden_with_typed_value() {
        let t = apply(&[("TESSERA_REGISTRATION__ENABLE", "true")]);
        assert_eq!(t["registration"]["enable"], toml::Value::Boolean(true));
    }

    #[test]
    fn top_level_key_with_underscore_is_one_key() {
        let t = apply(&[("TESSERA_SERVER_NAME", "b.org")]);
        assert_eq!(t["server_name"].as_str(), Some("b.org"));
    }

    #[test]
    fn missing_sections_are_created() {
        let t = apply(&[("TESSERA_LISTENERS__CLIENT__BIND", "[\"0.0.0.0:9000\"]")]);
        assert_eq!(t["listeners"]["client"]["bind"][0].as_str(), Some("0.0.0.0:9000"));
    }

    #[test]
    fn unrelated_variables_are_ignored() {
        let t = apply(&[("PATH", "/bin"), ("TESSERACT", "x")]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn value_cannot_be_treated_as_section() {
        let mut t: toml::Table = "server_name = \"a.org\"".parse().unwrap();
        let vars = [("TESSERA_SERVER_NAME__X".to_string(), "1".to_string())];
        let err = apply_overrides(&mut t, vars).unwrap_err().to_string();
        assert!(err.contains("server_name.x"), "{err}");
    }
}
