//! Write a file so that readers see either the old file or the whole new one, never a prefix:
//! write a temporary file beside it, sync it, then rename over the destination.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Write `path` with `fill`, atomically. On any error the temporary file is removed.
pub fn write_atomically(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let temp = temp_path(path);
    let result = (|| {
        let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        let mut writer = BufWriter::new(file);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| Error::io(&temp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// `dir/.name.partial-PID`: hidden, in the same directory (so the rename stays on one file
/// system), and distinct per process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// `write_atomically` for a JSON value, pretty-printed like Hugging Face's own files.
pub fn write_json_atomically(path: &Path, value: &serde_json::Value) -> Result<()> {
    write_atomically(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(|e| Error::format(path, format!("writing JSON: {e}")))?;
        w.write_all(b"\n").map_err(|e| Error::io(path, e))
    })
}
