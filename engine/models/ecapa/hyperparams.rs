//! A reader for SpeechBrain's `hyperparams.yaml` (HyperPyYAML): plain YAML whose objects are
//! tagged `!new:module.Class` and whose values may be `!ref <name>` references to top-level
//! keys. Nothing is instantiated: the blocks Scribe needs are read as mappings, their class
//! checked against the tag, and whole-value references resolved (`!ref <n_mels>`). References
//! with arithmetic or string interpolation (`!ref <a> * 2`, `!ref <folder>/x`) are refused where
//! they are read; the rest of the file (pretrainer, classifier, paths) is never looked at.
//!
//! Every error names the file and the field (`embedding_model.channels`).

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

use crate::error::{Error, Result};

/// How deep `!ref` chains may go before the file is called circular.
const MAX_REF_DEPTH: usize = 16;

/// A parsed `hyperparams.yaml`.
pub struct Hyperparams {
    path: PathBuf,
    doc: Yaml,
}

/// One `!new:` block (`embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`).
pub struct Block<'a> {
    file: &'a Hyperparams,
    name: String,
    map: serde_yaml_ng::Mapping,
}

impl Hyperparams {
    /// Read and parse `path`; a missing or unparsable file is an error naming it.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parse `text`, `path` naming it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let doc: Yaml = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::format(path, format!("not a SpeechBrain hyperparams.yaml: {e}")))?;
        if !matches!(doc, Yaml::Mapping(_)) {
            return Err(Error::format(path, "not a SpeechBrain hyperparams.yaml: the document is not a mapping"));
        }
        Ok(Hyperparams { path: path.to_path_buf(), doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, field: &str, what: impl Into<String>) -> Error {
        Error::config(&self.path, field, what)
    }

    /// `value` with whole-value `!ref <key>` references to top-level keys replaced by what they
    /// name (recursively); other tags are kept.
    fn resolve(&self, field: &str, value: &Yaml, depth: usize) -> Result<Yaml> {
        if depth > MAX_REF_DEPTH {
            return Err(self.err(field, "`!ref` references nest too deep (circular?)"));
        }
        match value {
            Yaml::Tagged(t) if t.tag == "ref" => {
                let target = t.value.as_str().and_then(|s| s.trim().strip_prefix('<')?.strip_suffix('>'));
                let Some(key) = target.filter(|k| !k.contains(['<', '>'])) else {
                    return Err(self.err(
                        field,
                        format!("`!ref {}`: only a whole-value reference `!ref <key>` is supported", show(&t.value)),
                    ));
                };
                let referent = self
                    .doc
                    .get(key)
                    .ok_or_else(|| self.err(field, format!("`!ref <{key}>` names no top-level key of the file")))?;
                self.resolve(field, referent, depth + 1)
            }
            Yaml::Sequence(items) => {
                items.iter().map(|v| self.resolve(field, v, depth)).collect::<Result<Vec<_>>>().map(Yaml::Sequence)
            }
            other => Ok(other.clone()),
        }
    }

    /// The block `name`, which must be tagged `!new:{class}`; None when the file has no `name`.
    pub fn block(&self, name: &str, class: &str) -> Result<Option<Block<'_>>> {
        let Some(value) = self.doc.get(name) else { return Ok(None) };
        let value = self.resolve(name, value, 0)?;
        let Yaml::Tagged(tagged) = &value else {
            return Err(self.err(name, format!("expected a `!new:{class}` object, found {}", show(&value))));
        };
        let tag = tagged.tag.to_string();
        if tag.strip_prefix("!new:") != Some(class) {
            return Err(self.err(name, format!("is `{tag}`, expected `!new:{class}`")));
        }
        let map = match &tagged.value {
            Yaml::Mapping(m) => m.clone(),
            // `!new:Class` with no arguments.
            Yaml::Null => serde_yaml_ng::Mapping::new(),
            other => {
                return Err(self.err(name, format!("`{tag}` takes keyword arguments, found {}", show(other))));
            }
        };
        Ok(Some(Block { file: self, name: name.to_string(), map }))
    }

    /// Like [`Self::block`], but a missing block is an error.
    pub fn required_block(&self, name: &str, class: &str) -> Result<Block<'_>> {
        self.block(name, class)?.ok_or_else(|| self.err(name, format!("missing (expected `!new:{class}`)")))
    }
}

/// A short rendering of a YAML value for error messages.
fn show(v: &Yaml) -> String {
    let s = serde_yaml_ng::to_string(v).unwrap_or_else(|_| format!("{v:?}"));
    let s = s.trim().replace('\n', " ");
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

impl Block<'_> {
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn err(&self, key: &str, what: impl Into<String>) -> Error {
        self.file.err(&self.field(key), what)
    }

    /// The resolved value of `key`, if present.
    fn get(&self, key: &str) -> Result<Option<Yaml>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => self.file.resolve(&self.field(key), v, 0).map(Some),
        }
    }

    /// Every key is one of `known`: an argument Scribe does not read is an error rather than
    /// silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<()> {
        for key in self.map.keys() {
            let name = key.as_str().unwrap_or("");
            if !known.contains(&name) {
                return Err(self.err(name, format!("unsupported argument (Scribe reads only {})", known.join(", "))));
            }
        }
        Ok(())
    }

    pub fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.get(key)? {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| self.err(key, format!("expected a non-negative integer, found {}", show(&v)))),
        }
    }

    pub fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key)? {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.err(key, format!("expected a number, found {}", show(&v)))),
        }
    }

    /// A number that may be `null` (SpeechBrain's `None`): `Ok(None)` for absent or null.
    pub fn f64_or_none(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key)? {
            None | Some(Yaml::Null) => Ok(None),
            Some(v) => {
                v.as_f64().map(Some).ok_or_else(|| self.err(key, format!("expected a number, found {}", show(&v))))
            }
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key)? {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(key, format!("expected True or False, found {}", show(&v)))),
        }
    }

    pub fn str(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key)? {
            None => Ok(default.to_string()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| self.err(key, format!("expected a string, found {}", show(&v)))),
        }
    }

    pub fn usize_list(&self, key: &str, default: &[usize]) -> Result<Vec<usize>> {
        match self.get(key)? {
            None => Ok(default.to_vec()),
            Some(Yaml::Sequence(items)) => items
                .iter()
                .map(|v| v.as_u64().map(|n| n as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.err(key, "expected a list of non-negative integers")),
            Some(v) => Err(self.err(key, format!("expected a list of integers, found {}", show(&v)))),
        }
    }

    /// The tag of `key`'s value (`!name:torch.nn.ReLU`), if it has one.
    pub fn tag(&self, key: &str) -> Result<Option<String>> {
        Ok(match self.get(key)? {
            Some(Yaml::Tagged(t)) => Some(t.tag.to_string()),
            _ => None,
        })
    }

    /// A configuration error about `key` of this block.
    pub fn invalid(&self, key: &str, what: impl Into<String>) -> Error {
        self.err(key, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
n_mels: 80
width: !ref <n_mels>
__set_seed: !apply:torch.manual_seed [1234]
data_folder: !PLACEHOLDER
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <width>
    deltas: False
model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    channels: [8, !ref <n_mels>]
    bad: !ref <n_mels> * 2
    nowhere: !ref <missing>
    activation: !name:torch.nn.ReLU
empty: !new:speechbrain.dataio.encoder.CategoricalEncoder
";

    fn parse() -> Hyperparams {
        Hyperparams::parse(TEXT, Path::new("hp.yaml")).unwrap()
    }

    #[test]
    fn blocks_are_read_with_their_references_resolved() {
        let hp = parse();
        let fbank = hp.required_block("compute_features", "speechbrain.lobes.features.Fbank").unwrap();
        assert_eq!(fbank.usize("n_mels", 40).unwrap(), 80);
        assert!(!fbank.bool("deltas", true).unwrap());
        assert_eq!(fbank.usize("n_fft", 400).unwrap(), 400);
        fbank.only(&["n_mels", "deltas"]).unwrap();
        let model = hp.required_block("model", "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN").unwrap();
        assert_eq!(model.usize_list("channels", &[]).unwrap(), [8, 80]);
        assert_eq!(model.tag("activation").unwrap().as_deref(), Some("!name:torch.nn.ReLU"));
        assert!(hp.block("empty", "speechbrain.dataio.encoder.CategoricalEncoder").unwrap().is_some());
        assert!(hp.block("absent", "x").unwrap().is_none());
    }

    #[test]
    fn unsupported_references_classes_and_arguments_are_named_errors() {
        let hp = parse();
        let model = hp.required_block("model", "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN").unwrap();
        let err = model.usize("bad", 0).unwrap_err().to_string();
        assert!(err.contains("hp.yaml") && err.contains("model.bad") && err.contains("whole-value"), "{err}");
        let err = model.usize("nowhere", 0).unwrap_err().to_string();
        assert!(err.contains("model.nowhere") && err.contains("<missing>"), "{err}");
        let err = model.only(&["channels"]).unwrap_err().to_string();
        assert!(err.contains("model.bad") && err.contains("unsupported"), "{err}");
        let err = hp.required_block("compute_features", "speechbrain.lobes.features.MFCC").err().unwrap().to_string();
        assert!(err.contains("compute_features") && err.contains("Fbank"), "{err}");
        let err = hp.required_block("absent", "speechbrain.lobes.features.Fbank").err().unwrap().to_string();
        assert!(err.contains("`absent`") && err.contains("missing"), "{err}");
        let fbank = hp.required_block("compute_features", "speechbrain.lobes.features.Fbank").unwrap();
        assert!(fbank.usize("deltas", 0).unwrap_err().to_string().contains("compute_features.deltas"));
        assert!(Hyperparams::parse("a: [1,", Path::new("x.yaml")).err().unwrap().to_string().contains("x.yaml"));
        assert!(Hyperparams::parse("- 1", Path::new("x.yaml")).is_err());
    }

    #[test]
    fn circular_references_are_refused() {
        let hp =
            Hyperparams::parse("a: !ref <b>\nb: !ref <a>\nm: !new:X\n    k: !ref <a>\n", Path::new("c.yaml")).unwrap();
        let block = hp.required_block("m", "X").unwrap();
        assert!(block.usize("k", 0).unwrap_err().to_string().contains("circular"));
    }
}
